//! Distributed data-parallel training (DDP) over Burn's `burn-collective`: one peer per
//! device, as threads of one process or as processes on several nodes.
//!
//! Every peer runs the same training loop ([`crate::trainer::Trainer::fit_distributed`])
//! on the same batches in the same order, computes forward and backward on its own
//! contiguous shard of each batch, and all-reduces (sums) the gradients, flattened into
//! one bucket, before the optimizer step. The shards' losses are weighted by their share
//! of the batch, so the summed gradient is the one of the whole batch, and every peer
//! applies the same update: the weights stay identical without being sent again. At the
//! start rank 0's weights are broadcast (as an all-reduce), so peers need not build
//! identical models.
//! Batch norm sees per-shard statistics (as PyTorch's DDP without SyncBN); rank 0 alone
//! validates and writes checkpoints, and its running statistics are the checkpoint's.
//!
//! Several nodes need Burn's global orchestrator, reachable by all of them:
//! [`run_orchestrator`] (the `ddp_orchestrator` example) runs one.
//!
//! Burn's own `collective` feature is not needed: this module calls `burn-collective`
//! directly, so it works on every backend, the CPU backend `flex` included.

use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::backend::AutodiffBackend;
pub use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId};
use burn_collective::{CollectiveError, ReduceOperation};

use crate::trainer::TrainError;

/// This peer's place in a DDP run.
#[derive(Debug, Clone)]
pub struct DdpPeer {
    /// Global rank, `0..world_size`; rank 0 validates and checkpoints.
    pub rank: usize,
    /// Number of peers over all nodes.
    pub world_size: usize,
    /// Burn's collective configuration (local devices, and the global addresses for
    /// several nodes).
    pub config: CollectiveConfig,
}

/// Where the peers of a multi-node run meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddresses {
    /// Number of nodes.
    pub nodes: usize,
    /// This node's index, `0..nodes`.
    pub node_rank: usize,
    /// The orchestrator, e.g. `ws://10.0.0.1:3000`.
    pub orchestrator: String,
    /// This node as the other nodes reach it, e.g. `ws://10.0.0.2:3001`; its port is the
    /// tensor data service's.
    pub node: String,
}

impl DdpPeer {
    /// Peer `local` of `devices` threads on a single node.
    ///
    /// # Errors
    /// [`TrainError::Config`] when `local >= devices`.
    pub fn single_node(local: usize, devices: usize) -> Result<Self, TrainError> {
        check_index("device", local, devices)?;
        let config = CollectiveConfig::default().with_num_devices(devices);
        Ok(Self { rank: local, world_size: devices, config })
    }

    /// Peer `local` of `devices_per_node` on node `nodes.node_rank` of `nodes.nodes`.
    ///
    /// # Errors
    /// [`TrainError::Config`] for an index out of range or a node address without a port.
    pub fn multi_node(local: usize, devices_per_node: usize, nodes: &NodeAddresses) -> Result<Self, TrainError> {
        check_index("device", local, devices_per_node)?;
        check_index("node", nodes.node_rank, nodes.nodes)?;
        let port = nodes
            .node
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
            .ok_or_else(|| TrainError::Config(format!("node address {:?} has no port", nodes.node)))?;
        let address = |s: &str| s.parse().map_err(|e: String| TrainError::Config(e));
        let config = CollectiveConfig::default()
            .with_num_devices(devices_per_node)
            .with_num_nodes(nodes.nodes as u32)
            .with_global_address(address(&nodes.orchestrator)?)
            .with_node_address(address(&nodes.node)?)
            .with_data_service_port(port);
        let rank = nodes.node_rank * devices_per_node + local;
        Ok(Self { rank, world_size: nodes.nodes * devices_per_node, config })
    }

    fn id(&self) -> PeerId {
        PeerId::from(self.rank as u32)
    }

    /// Rows of an `n`-row batch that this peer trains on.
    pub(crate) fn shard(&self, n: usize) -> std::ops::Range<usize> {
        crate::trainer::shard_ranges(n, self.world_size).get(self.rank).cloned().unwrap_or(0..0)
    }

    /// Joins the collective with `device` (of the inner backend).
    pub(crate) fn register<B: Backend>(&self, device: &B::Device) -> Result<(), TrainError> {
        burn_collective::register::<B>(self.id(), device.clone(), self.config.clone()).map_err(collective)
    }

    /// Leaves the collective.
    pub(crate) fn finish<B: Backend>(&self) -> Result<(), TrainError> {
        burn_collective::finish_collective::<B>(self.id()).map_err(collective)
    }

    /// Sums `values` over all peers.
    pub(crate) fn sum<B: Backend>(&self, values: &[f64], device: &B::Device) -> Result<Vec<f64>, TrainError> {
        let local = Tensor::<B, 1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device);
        let summed = self.all_reduce(local)?;
        summed.into_data().convert::<f64>().into_vec::<f64>().map_err(|e| TrainError::Distributed(format!("{e:?}")))
    }

    /// Agrees with the other peers on the start of a run: `epochs_done` is the epoch this
    /// peer resumes after, `None` when it could not start (its own error then stands, and
    /// this returns `Ok`). Every peer takes part, so that none waits forever for one that
    /// stopped.
    ///
    /// # Errors
    /// [`TrainError::Distributed`] on a peer that is ready when another is not, or when
    /// the peers would resume from different epochs (a peer without rank 0's checkpoint).
    pub(crate) fn agree_to_start<B: Backend>(
        &self,
        epochs_done: Option<usize>,
        device: &B::Device,
    ) -> Result<(), TrainError> {
        // First how many failed and rank 0's epoch (the others add zeros), then how many
        // differ from it: sums of small integers, exact in any float type.
        let mine = epochs_done.map_or(0.0, |e| e as f64);
        let root = if self.rank == 0 { mine } else { 0.0 };
        let sums = self.sum::<B>(&[f64::from(epochs_done.is_none()), root], device)?;
        let (failed, root_epochs) = (sums[0].round() as usize, sums[1]);
        let Some(epochs_done) = epochs_done else {
            return Ok(());
        };
        if failed > 0 {
            return Err(TrainError::Distributed(format!(
                "{failed} of {} DDP peers could not start (their own errors say why); rank {} was ready",
                self.world_size, self.rank
            )));
        }
        let differ = self.sum::<B>(&[f64::from(mine != root_epochs)], device)?[0].round() as usize;
        if differ > 0 {
            return Err(TrainError::Distributed(format!(
                "{differ} of {} DDP peers would resume from another epoch than rank 0's {root_epochs} \
                 (rank {} from {epochs_done}); to resume, every peer needs rank 0's run directory \
                 (shared storage, or a copy on each node)",
                self.world_size, self.rank
            )));
        }
        Ok(())
    }

    fn all_reduce<B: Backend>(&self, tensor: Tensor<B, 1>) -> Result<Tensor<B, 1>, TrainError> {
        // Burn's ring all-reduce between nodes cuts the tensor into one slice per node and
        // refuses one with fewer values than nodes: short tensors go padded with zeros.
        let n = tensor.dims()[0];
        let missing = self.world_size.saturating_sub(n);
        let padded = match missing {
            0 => tensor,
            _ => {
                let zeros = Tensor::zeros([missing], &tensor.device());
                Tensor::cat(vec![tensor, zeros], 0)
            }
        };
        let primitive = padded.into_primitive().tensor();
        let reduced =
            burn_collective::all_reduce::<B>(self.id(), primitive, ReduceOperation::Sum).map_err(collective)?;
        let reduced = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(reduced));
        Ok(match missing {
            0 => reduced,
            _ => reduced.slice([0..n]),
        })
    }

    /// Sums the gradients of `model`'s parameters over all peers, as one flat bucket.
    /// Every peer must hold gradients for the same parameters (the same sampled path).
    pub(crate) fn all_reduce_gradients<B, M>(
        &self,
        model: &M,
        mut grads: GradientsParams,
    ) -> Result<GradientsParams, TrainError>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
    {
        let mut gather = Bucket::<B::InnerBackend> { grads: &mut grads, parts: Vec::new(), shapes: Vec::new() };
        model.visit(&mut gather);
        let Bucket { parts, shapes, .. } = gather;
        if parts.is_empty() {
            return Ok(grads);
        }
        let flat = self.all_reduce(Tensor::cat(parts, 0))?;
        let mut scatter = Unbucket { grads: &mut grads, flat, shapes: shapes.into_iter().peekable(), offset: 0 };
        model.visit(&mut scatter);
        Ok(grads)
    }

    /// `model` with rank 0's weights on every peer.
    pub(crate) fn broadcast_module<B, M>(&self, model: M) -> Result<M, TrainError>
    where
        B: AutodiffBackend,
        M: Module<B>,
    {
        let mut mapper = Broadcast { peer: self.id(), root: self.rank == 0, error: None };
        let model = model.map(&mut mapper);
        match mapper.error {
            Some(e) => Err(e),
            None => Ok(model),
        }
    }
}

fn check_index(what: &str, index: usize, count: usize) -> Result<(), TrainError> {
    if index < count {
        Ok(())
    } else {
        Err(TrainError::Config(format!("{what} index {index} is out of range: there are {count}")))
    }
}

fn collective(e: CollectiveError) -> TrainError {
    TrainError::Distributed(format!("{e:?}"))
}

/// Takes each parameter's gradient out of `grads`, flattened, in visiting order.
struct Bucket<'g, B: Backend> {
    grads: &'g mut GradientsParams,
    parts: Vec<Tensor<B, 1>>,
    /// Parameter and gradient shape of each part; parameters without a gradient are absent.
    shapes: Vec<(ParamId, Shape)>,
}

impl<A: AutodiffBackend> ModuleVisitor<A> for Bucket<'_, A::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
        if let Some(grad) = self.grads.remove::<A::InnerBackend, D>(param.id) {
            let shape = grad.shape();
            self.parts.push(grad.reshape([shape.num_elements()]));
            self.shapes.push((param.id, shape));
        }
    }
}

/// Puts the reduced bucket back as the parameters' gradients, in the same order.
struct Unbucket<'g, B: Backend> {
    grads: &'g mut GradientsParams,
    flat: Tensor<B, 1>,
    shapes: std::iter::Peekable<std::vec::IntoIter<(ParamId, Shape)>>,
    offset: usize,
}

impl<A: AutodiffBackend> ModuleVisitor<A> for Unbucket<'_, A::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
        if let Some((id, shape)) = self.shapes.next_if(|(id, _)| *id == param.id) {
            let numel = shape.num_elements();
            let part = self.flat.clone().slice([self.offset..self.offset + numel]).reshape(shape);
            self.grads.register::<A::InnerBackend, D>(id, part);
            self.offset += numel;
        }
    }
}

/// Replaces every trainable parameter by rank 0's value.
struct Broadcast {
    peer: PeerId,
    root: bool,
    error: Option<TrainError>,
}

impl<A: AutodiffBackend> ModuleMapper<A> for Broadcast {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<A, D>>) -> Param<Tensor<A, D>> {
        let (id, tensor, mapper) = param.consume();
        // Trainable parameters only: batch-norm running statistics are rank 0's concern,
        // and their module holds a lock while mapping them (clones share it), so a
        // collective call there could deadlock peers built as clones of one module.
        if self.error.is_some() || !tensor.is_require_grad() {
            return Param::from_mapped_value(id, tensor, mapper);
        }
        let shape = tensor.shape();
        let inner = tensor.clone().inner();
        // A sum in which every peer but rank 0 adds zeros: burn-collective 0.21 has no
        // broadcast between nodes ("Global broadcast unimplemented"), but all-reduce works
        // everywhere.
        let sent = if self.root { inner } else { inner.zeros_like() };
        let flat = sent.reshape([shape.num_elements()]).into_primitive().tensor();
        match burn_collective::all_reduce::<A::InnerBackend>(self.peer, flat, ReduceOperation::Sum) {
            Ok(received) => {
                let value = Tensor::<A::InnerBackend, 1>::from_primitive(TensorPrimitive::Float(received));
                let value = Tensor::<A, D>::from_inner(value.reshape(shape)).require_grad();
                Param::from_mapped_value(id, value, mapper)
            }
            Err(e) => {
                self.error = Some(collective(e));
                Param::from_mapped_value(id, tensor, mapper)
            }
        }
    }
}

/// Forgets every peer registered in this process on backend `B` (inner backend), e.g.
/// before starting another DDP run in the same process after one that failed.
pub fn reset<B: Backend>() {
    burn_collective::reset_collective::<B>();
}

/// Runs Burn's global collective orchestrator on `port` until the process is stopped.
/// Every node of a multi-node run connects to it.
///
/// # Errors
/// [`TrainError::Distributed`] when the async runtime cannot start.
pub fn run_orchestrator(port: u16) -> Result<(), TrainError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| TrainError::Distributed(format!("cannot start the orchestrator's runtime: {e}")))?;
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_take_their_own_shard_of_each_batch() {
        let peers: Vec<_> = (0..3).map(|i| DdpPeer::single_node(i, 3).unwrap()).collect();
        let shards: Vec<_> = peers.iter().map(|p| p.shard(10)).collect();
        assert_eq!(shards, vec![0..4, 4..7, 7..10]);
    }

    #[test]
    fn bad_indices_and_addresses_are_refused() {
        assert!(DdpPeer::single_node(2, 2).unwrap_err().to_string().contains("device index 2 is out of range"));
        let nodes = NodeAddresses {
            nodes: 2,
            node_rank: 1,
            orchestrator: "ws://127.0.0.1:3000".into(),
            node: "ws://127.0.0.1".into(),
        };
        assert!(DdpPeer::multi_node(0, 1, &nodes).unwrap_err().to_string().contains("has no port"));
        let nodes = NodeAddresses { node: "ws://127.0.0.1:3001".into(), ..nodes };
        let peer = DdpPeer::multi_node(1, 2, &nodes).unwrap();
        assert_eq!((peer.rank, peer.world_size), (3, 4));
        let far = NodeAddresses { node_rank: 2, ..nodes };
        assert!(DdpPeer::multi_node(0, 1, &far).unwrap_err().to_string().contains("node index 2"));
    }
}
