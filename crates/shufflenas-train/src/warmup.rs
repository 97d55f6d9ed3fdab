//! Kernel warm-up for the JIT-compiled backends (cuda, wgpu).
//!
//! CubeCL compiles and autotunes every new kernel on first use, one at a time within a
//! process: on an H100 a supernet's first training step at batch 256 spent more than
//! nine minutes compiling (docs/performance.md). A network splits into pieces (the stem,
//! one choice block at one width, the head) whose kernels depend only on the piece and
//! its input shape, so each piece can be run on its own, at the shapes a real run meets
//! it, in any process. [`shard`] splits the pieces between processes; with CubeCL's
//! on-disk caches (`cubecl.toml`) the processes fill one shared cache on all cores, and
//! the real run then finds its kernels compiled and tuned.
//!
//! On flex nothing is compiled and a warm-up is just a forward (and backward) pass.

use std::collections::HashSet;

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use shufflenas_model::nn::{ShuffleNasNet, Supernet};
use shufflenas_model::{Architecture, BlockChoice, BlockSlot, SearchSpace, SpaceError};

/// Why a warm-up could not run.
#[derive(Debug, thiserror::Error)]
pub enum WarmUpError {
    /// The space or a genome is invalid.
    #[error(transparent)]
    Space(#[from] SpaceError),
    /// A shard outside `0..count`, or zero shards.
    #[error("shard {index} of {count}: the index must be below a positive count")]
    BadShard {
        /// The shard asked for.
        index: usize,
        /// The number of shards.
        count: usize,
    },
    /// A block position the network does not have.
    #[error("the network has {blocks} choice blocks; there is no position {position}")]
    NoPosition {
        /// The position asked for.
        position: usize,
        /// The network's number of blocks.
        blocks: usize,
    },
    /// A zero batch size.
    #[error("the warm-up batch size must be positive")]
    ZeroBatch,
    /// The device failed to synchronise.
    #[error("device synchronisation failed: {0}")]
    Device(String),
}

/// One independently runnable piece of a network, at the width a path runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarmPiece {
    /// The first conv.
    Stem,
    /// The choice block `choice` at `position`, run at `mid` channels.
    Block {
        /// Position among the choice blocks.
        position: usize,
        /// Which of the four blocks.
        choice: BlockChoice,
        /// Width of the main branch's inner layers.
        mid: usize,
    },
    /// The classification head.
    Head,
}

impl WarmPiece {
    /// `[N, C, S, S]` input of the piece at batch `batch`.
    fn input_shape(&self, space: &SearchSpace, slots: &[BlockSlot], batch: usize) -> Result<[usize; 4], WarmUpError> {
        let no_position = |position| WarmUpError::NoPosition { position, blocks: slots.len() };
        Ok(match *self {
            Self::Stem => [batch, space.input_channels, space.input_size, space.input_size],
            Self::Block { position, .. } => {
                let slot = slots.get(position).ok_or_else(|| no_position(position))?;
                [batch, slot.in_channels, slot.input_size, slot.input_size]
            }
            Self::Head => {
                let last = slots.last().ok_or_else(|| no_position(0))?;
                [batch, last.out_channels, last.output_size(), last.output_size()]
            }
        })
    }
}

/// The distinct pieces that `paths` run, in first-use order: the stem, each path's
/// blocks at their widths, the head.
///
/// # Errors
/// [`WarmUpError::Space`] when a genome does not fit `space`.
pub fn path_pieces(space: &SearchSpace, paths: &[Architecture]) -> Result<Vec<WarmPiece>, WarmUpError> {
    let mut pieces = vec![WarmPiece::Stem];
    let mut seen = HashSet::new();
    for arch in paths {
        for block in space.decode(arch)?.blocks {
            let piece = WarmPiece::Block { position: block.slot.index, choice: block.choice, mid: block.mid_channels };
            if seen.insert(piece) {
                pieces.push(piece);
            }
        }
    }
    pieces.push(WarmPiece::Head);
    Ok(pieces)
}

/// Every piece a supernet of `space` can run: each position's four blocks at each
/// searchable width (distinct widths only), with the stem and the head.
///
/// # Errors
/// [`WarmUpError::Space`] for an invalid space.
pub fn all_pieces(space: &SearchSpace) -> Result<Vec<WarmPiece>, WarmUpError> {
    let slots = space.slots()?;
    let mut pieces = vec![WarmPiece::Stem];
    let scales = &space.candidate_scales[space.searchable_min_id..=space.searchable_max_id];
    for slot in slots {
        for choice in BlockChoice::ALL {
            let mut mids: Vec<usize> = scales.iter().map(|&s| space.mid_channels(slot.out_channels, s)).collect();
            mids.dedup();
            pieces.extend(mids.into_iter().map(|mid| WarmPiece::Block { position: slot.index, choice, mid }));
        }
    }
    pieces.push(WarmPiece::Head);
    Ok(pieces)
}

/// Shard `index` of `count`: every `count`-th piece from `index`, so that the shards
/// together hold each piece once.
///
/// # Errors
/// [`WarmUpError::BadShard`] unless `index < count`.
pub fn shard(pieces: &[WarmPiece], index: usize, count: usize) -> Result<Vec<WarmPiece>, WarmUpError> {
    if index >= count {
        return Err(WarmUpError::BadShard { index, count });
    }
    Ok(pieces.iter().skip(index).step_by(count).copied().collect())
}

/// A network whose pieces can run on their own.
pub trait Pieces<B: Backend> {
    /// Mean of the piece's output for input `x` (`[N, C, S, S]`, see [`WarmPiece`]).
    ///
    /// # Errors
    /// [`WarmUpError::NoPosition`] for a block position the network does not have.
    fn piece_mean(&self, piece: &WarmPiece, x: Tensor<B, 4>) -> Result<Tensor<B, 1>, WarmUpError>;
}

impl<B: Backend> Pieces<B> for Supernet<B> {
    fn piece_mean(&self, piece: &WarmPiece, x: Tensor<B, 4>) -> Result<Tensor<B, 1>, WarmUpError> {
        Ok(match *piece {
            WarmPiece::Stem => self.stem.forward(x, self.stem.max_out()).mean(),
            WarmPiece::Block { position, choice, mid } => {
                let blocks = self.positions.len();
                let block = self.positions.get(position).ok_or(WarmUpError::NoPosition { position, blocks })?;
                block.blocks[choice.id() as usize].forward(x, mid).mean()
            }
            WarmPiece::Head => self.head.forward(x).mean(),
        })
    }
}

/// A fixed network runs each of its blocks at its own choice and width: a piece's
/// `choice` and `mid` are ignored (pieces from [`path_pieces`] of its genome match them).
impl<B: Backend> Pieces<B> for ShuffleNasNet<B> {
    fn piece_mean(&self, piece: &WarmPiece, x: Tensor<B, 4>) -> Result<Tensor<B, 1>, WarmUpError> {
        Ok(match *piece {
            WarmPiece::Stem => self.stem.forward(x, self.stem.max_out()).mean(),
            WarmPiece::Block { position, .. } => {
                let blocks = self.blocks.len();
                let block = self.blocks.get(position).ok_or(WarmUpError::NoPosition { position, blocks })?;
                block.forward(x, block.max_mid()).mean()
            }
            WarmPiece::Head => self.head.forward(x).mean(),
        })
    }
}

/// Runs each of `pieces` of `net` forward once at batch `batch` on random input,
/// synchronising the device after each. Pass an inference-mode network (`valid()`) to
/// warm inference kernels (batch norm with running statistics).
///
/// # Errors
/// A bad piece or batch, or a device that fails to synchronise.
pub fn warm_up<B: Backend>(
    net: &impl Pieces<B>,
    space: &SearchSpace,
    pieces: &[WarmPiece],
    batch: usize,
    device: &B::Device,
) -> Result<(), WarmUpError> {
    run_pieces::<B, _>(space, pieces, batch, device, |piece, x| net.piece_mean(piece, x))
}

/// As [`warm_up`], with a backward pass from each piece's output mean, its input
/// requiring a gradient as inside a network: the training kernels (batch statistics,
/// the convolutions' data and weight gradients).
///
/// # Errors
/// A bad piece or batch, or a device that fails to synchronise.
pub fn warm_up_training<B: AutodiffBackend>(
    net: &impl Pieces<B>,
    space: &SearchSpace,
    pieces: &[WarmPiece],
    batch: usize,
    device: &B::Device,
) -> Result<(), WarmUpError> {
    run_pieces::<B, _>(space, pieces, batch, device, |piece, x| piece_gradients(net, piece, x.require_grad()))
}

/// Gradients of the piece's output mean (`x` among them when it requires a gradient).
fn piece_gradients<B: AutodiffBackend>(
    net: &impl Pieces<B>,
    piece: &WarmPiece,
    x: Tensor<B, 4>,
) -> Result<B::Gradients, WarmUpError> {
    Ok(net.piece_mean(piece, x)?.backward())
}

/// Runs `run` on each piece with a random input of its shape, then synchronises the
/// device with the result still alive (so a lazy backend cannot skip the work).
fn run_pieces<B: Backend, T>(
    space: &SearchSpace,
    pieces: &[WarmPiece],
    batch: usize,
    device: &B::Device,
    mut run: impl FnMut(&WarmPiece, Tensor<B, 4>) -> Result<T, WarmUpError>,
) -> Result<(), WarmUpError> {
    if batch == 0 {
        return Err(WarmUpError::ZeroBatch);
    }
    let slots = space.slots()?;
    for piece in pieces {
        let shape = piece.input_shape(space, &slots, batch)?;
        let result = run(piece, Tensor::random(shape, Distribution::Normal(0.0, 1.0), device))?;
        sync::<B>(device)?;
        drop(result);
    }
    Ok(())
}

fn sync<B: Backend>(device: &B::Device) -> Result<(), WarmUpError> {
    B::sync(device).map_err(|e| WarmUpError::Device(e.to_string()))
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use rand::SeedableRng;
    use shufflenas_model::nn::{ShuffleNasNetConfig, SupernetConfig};

    use super::*;

    type B = Autodiff<Flex>;

    fn space() -> SearchSpace {
        SearchSpace::tiny(3, 10)
    }

    fn paths(n: usize) -> Vec<Architecture> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        (0..n).map(|_| Architecture::random(&space(), &mut rng)).collect()
    }

    #[test]
    fn path_pieces_hold_each_block_of_each_path_once() {
        let space = space();
        let paths = paths(3);
        let pieces = path_pieces(&space, &paths).unwrap();
        assert_eq!((pieces[0], pieces[pieces.len() - 1]), (WarmPiece::Stem, WarmPiece::Head));
        let distinct: HashSet<_> = pieces.iter().collect();
        assert_eq!(distinct.len(), pieces.len());
        for arch in &paths {
            for block in space.decode(arch).unwrap().blocks {
                let piece =
                    WarmPiece::Block { position: block.slot.index, choice: block.choice, mid: block.mid_channels };
                assert!(distinct.contains(&piece), "{piece:?} missing");
            }
        }
        // Three random paths over few positions share some blocks, and never exceed 3 per position.
        let blocks = pieces.len() - 2;
        assert!(blocks > space.slots().unwrap().len() && blocks <= 3 * space.slots().unwrap().len());
    }

    #[test]
    fn all_pieces_cover_every_searchable_block_and_width() {
        let space = space();
        let pieces = all_pieces(&space).unwrap();
        let mids = |out| {
            let mut m: Vec<_> = space.candidate_scales[space.searchable_min_id..=space.searchable_max_id]
                .iter()
                .map(|&s| space.mid_channels(out, s))
                .collect();
            m.dedup();
            m.len()
        };
        let expected: usize = space.slots().unwrap().iter().map(|s| 4 * mids(s.out_channels)).sum();
        assert_eq!(pieces.len(), expected + 2);
        let every_path = paths(5);
        let from_paths: HashSet<_> = path_pieces(&space, &every_path).unwrap().into_iter().collect();
        assert!(from_paths.iter().all(|p| pieces.contains(p)));
    }

    #[test]
    fn each_piece_input_has_the_shape_the_network_feeds_it() {
        let (space, device) = (space(), Default::default());
        let supernet = SupernetConfig::new(space.clone()).init::<Flex>(&device).unwrap();
        let slots = space.slots().unwrap();
        let plan = space.decode(&paths(1)[0]).unwrap();
        let stem_shape = WarmPiece::Stem.input_shape(&space, &slots, 2).unwrap();
        let mut x = supernet.stem.forward(Tensor::zeros(stem_shape, &device), supernet.stem.max_out());
        for block in &plan.blocks {
            let piece = WarmPiece::Block { position: block.slot.index, choice: block.choice, mid: block.mid_channels };
            assert_eq!(piece.input_shape(&space, &slots, 2).unwrap(), x.dims(), "{piece:?}");
            x = supernet.positions[block.slot.index].blocks[block.choice.id() as usize].forward(x, block.mid_channels);
        }
        assert_eq!(WarmPiece::Head.input_shape(&space, &slots, 2).unwrap(), x.dims());
    }

    #[test]
    fn shards_partition_the_pieces() {
        let pieces = all_pieces(&space()).unwrap();
        let shards: Vec<_> = (0..3).map(|i| shard(&pieces, i, 3).unwrap()).collect();
        let mut joined: Vec<_> = shards.concat();
        assert_eq!(joined.len(), pieces.len());
        let all: HashSet<_> = pieces.iter().collect();
        joined.retain(|p| all.contains(p));
        assert_eq!(joined.len(), pieces.len());
        assert!(matches!(shard(&pieces, 3, 3), Err(WarmUpError::BadShard { index: 3, count: 3 })));
        assert!(matches!(shard(&pieces, 0, 0), Err(WarmUpError::BadShard { .. })));
    }

    #[test]
    fn supernet_and_fixed_net_pieces_run_forward_and_backward() {
        let (space, device) = (space(), Default::default());
        let paths = paths(2);
        let pieces = path_pieces(&space, &paths).unwrap();
        let supernet = SupernetConfig::new(space.clone()).init::<B>(&device).unwrap();
        warm_up_training(&supernet, &space, &pieces, 2, &device).unwrap();
        warm_up(&supernet.valid(), &space, &pieces, 2, &device).unwrap();
        let net = ShuffleNasNetConfig::new(space.clone(), paths[0].clone()).init::<B>(&device).unwrap();
        let own = path_pieces(&space, &paths[..1]).unwrap();
        warm_up_training(&net, &space, &own, 2, &device).unwrap();
        // Each piece's input has its slot's shape and gets a gradient, as inside a network.
        let slots = space.slots().unwrap();
        for piece in &pieces {
            let shape = piece.input_shape(&space, &slots, 2).unwrap();
            let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let grads = piece_gradients(&supernet, piece, x.clone()).unwrap();
            let gx = x.grad(&grads).unwrap_or_else(|| panic!("{piece:?}: no input gradient"));
            assert_eq!(gx.dims(), shape, "{piece:?}");
            assert!(gx.abs().sum().into_scalar() > 0.0, "{piece:?}: zero input gradient");
        }
        let piece = WarmPiece::Block { position: slots.len(), choice: BlockChoice::Snb3, mid: 8 };
        assert!(matches!(warm_up(&net.valid(), &space, &[piece], 2, &device), Err(WarmUpError::NoPosition { .. })));
        assert!(matches!(warm_up(&net.valid(), &space, &own, 0, &device), Err(WarmUpError::ZeroBatch)));
    }
}
