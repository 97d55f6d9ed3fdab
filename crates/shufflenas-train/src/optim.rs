//! SGD with Nesterov momentum for weight-sharing training: parameters (and parts of
//! parameters) that the step did not use are left exactly as they are.
//!
//! Burn's SGD updates every entry of every parameter that has a gradient. In a
//! supernet a sliced weight gets a full-shape gradient that is zero outside the active
//! slice, so momentum and weight decay would still move the unused entries. This
//! optimizer masks the update to the entries with a non-zero gradient: the velocity
//! and the weight of the others stay untouched (upstream's `ignore_stale_grad`, at
//! entry granularity). Parameters without a gradient are not visited at all.
//!
//! Weight decay (coupled L2, `grad += wd · w`) applies to conv and linear weights
//! only — tensors of rank ≥ 2 — and never to BN gamma/beta or biases (rank 1), as the
//! seed's "no weight decay on BN and biases".
//!
//! An entry whose gradient is exactly zero although it was in use (e.g. a dead ReLU
//! channel) is also left alone for that step; in float32 training this is rare and
//! harmless.

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{LearningRate, SimpleOptimizer};
use burn::prelude::*;
use burn::record::Record;
use burn::tensor::backend::AutodiffBackend;

/// Config of [`SliceSgd`].
#[derive(Config, Debug)]
pub struct SliceSgdConfig {
    /// Momentum (0.9 in the seed).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum (PyTorch's form: `update = g + μ·v`).
    #[config(default = true)]
    pub nesterov: bool,
    /// Coupled L2 weight decay on rank ≥ 2 tensors (3e-5 subnet, 4e-5 supernet).
    #[config(default = 4e-5)]
    pub weight_decay: f64,
}

/// The per-tensor optimizer; use [`SliceSgdConfig::init`] for a Burn `Optimizer`.
#[derive(Clone, Debug)]
pub struct SliceSgd {
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
}

/// Velocity of one parameter.
#[derive(Record, Clone, Debug)]
pub struct SliceSgdState<B: Backend, const D: usize> {
    /// Momentum buffer, same shape as the parameter.
    pub velocity: Tensor<B, D>,
}

impl SliceSgdConfig {
    /// A Burn optimizer for module `M` (works with burn-train's learner too).
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(&self) -> OptimizerAdaptor<SliceSgd, M, B> {
        OptimizerAdaptor::from(SliceSgd {
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
        })
    }
}

impl<B: Backend> SimpleOptimizer<B> for SliceSgd {
    type State<const D: usize> = SliceSgdState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        // One copy into a contiguous layout first: a backend may hand out a gradient as a
        // strided view (flex's conv weight gradient is a transposed one), and each of the
        // element-wise ops below would otherwise walk it element by element.
        let dims = grad.dims();
        let grad = grad.reshape([dims.iter().product::<usize>()]).reshape(dims);
        let mask = grad.clone().not_equal_elem(0.0).float();
        let mut g = grad;
        if D >= 2 && self.weight_decay > 0.0 {
            g = g.add(tensor.clone().mul_scalar(self.weight_decay));
        }
        let old = state.map(|s| s.velocity).unwrap_or_else(|| tensor.zeros_like());
        let velocity = old.clone().mul_scalar(self.momentum).add(g.clone());
        let update = if self.nesterov { g.add(velocity.clone().mul_scalar(self.momentum)) } else { velocity.clone() };
        // Only the entries the step used move; the others keep weight and velocity.
        let velocity = old.clone().add(velocity.sub(old).mul(mask.clone()));
        let tensor = tensor.sub(update.mul(mask).mul_scalar(lr));
        (tensor, Some(SliceSgdState { velocity }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        SliceSgdState { velocity: state.velocity.to_device(device) }
    }
}

#[cfg(test)]
mod tests {
    use burn::optim::{GradientsParams, Optimizer};
    use burn::tensor::Distribution;
    use shufflenas_model::nn::SupernetConfig;
    use shufflenas_model::{Architecture, BlockChoice, ChannelChoice, SearchSpace};

    use super::*;

    type B = burn::backend::Autodiff<burn::backend::Flex>;

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
        t.into_data().into_vec().unwrap()
    }

    // Two steps on different paths: everything the second path did not use must keep
    // the value it had after the first step, momentum and weight decay included.
    #[test]
    fn unused_blocks_and_unused_slices_are_not_updated() {
        let device = Default::default();
        let space = SearchSpace { searchable_min_id: 0, ..SearchSpace::tiny(3, 10) };
        B::seed(&device, 1);
        let mut net = SupernetConfig::new(space.clone()).init::<B>(&device).unwrap();
        let mut optim = SliceSgdConfig::new().with_weight_decay(0.1).init::<B, _>();
        let x = Tensor::<B, 4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let n = space.num_blocks();
        let wide = Architecture::uniform(n, BlockChoice::Snb3, ChannelChoice(9));
        let narrow = Architecture::uniform(n, BlockChoice::Snb3, ChannelChoice(2));
        for arch in [&wide, &narrow] {
            let loss = net.forward(x.clone(), arch).unwrap().powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            if arch == &narrow {
                let before = net.clone();
                net = optim.step(0.1, net, grads);
                let plan = space.decode(&narrow).unwrap();
                let mid = plan.blocks[5].mid_channels;
                let (old, new) = (&before.positions[5].blocks[0], &net.positions[5].blocks[0]);
                let rows = old.main[0].conv.weight.dims()[0];
                let w_old = values(old.main[0].conv.weight.val().slice([mid..rows]));
                let w_new = values(new.main[0].conv.weight.val().slice([mid..rows]));
                assert_eq!(w_old, w_new, "unused rows moved");
                assert_ne!(
                    values(old.main[0].conv.weight.val().slice([0..mid])),
                    values(new.main[0].conv.weight.val().slice([0..mid])),
                    "used rows did not move"
                );
                // SNB-5 was never used: not a single value changed.
                assert_eq!(
                    values(before.positions[5].blocks[1].main[0].conv.weight.val()),
                    values(net.positions[5].blocks[1].main[0].conv.weight.val())
                );
            } else {
                net = optim.step(0.1, net, grads);
            }
        }
    }

    // Rank-1 parameters (BN gamma/beta, biases) get no weight decay; rank-2+ weights do.
    #[test]
    fn weight_decay_applies_to_weights_not_to_bn_or_biases() {
        let device = Default::default();
        let sgd = SliceSgd { momentum: 0.0, nesterov: false, weight_decay: 0.5 };
        type Inner = burn::backend::Flex;
        let w = Tensor::<Inner, 2>::ones([1, 2], &device);
        let g = Tensor::<Inner, 2>::ones([1, 2], &device);
        let (w2, _) = SimpleOptimizer::<Inner>::step(&sgd, 0.1, w, g, None);
        assert_eq!(w2.into_data().into_vec::<f32>().unwrap(), vec![1.0 - 0.1 * 1.5; 2]);
        let b = Tensor::<Inner, 1>::ones([2], &device);
        let gb = Tensor::<Inner, 1>::ones([2], &device);
        let (b2, _) = SimpleOptimizer::<Inner>::step(&sgd, 0.1, b, gb, None);
        assert_eq!(b2.into_data().into_vec::<f32>().unwrap(), vec![1.0 - 0.1; 2]);
    }

    // Matches PyTorch's SGD(momentum=0.9, nesterov=True, dampening=0) on a used entry.
    #[test]
    fn nesterov_matches_pytorch_on_used_entries() {
        let device = Default::default();
        type Inner = burn::backend::Flex;
        let sgd = SliceSgd { momentum: 0.9, nesterov: true, weight_decay: 0.0 };
        let mut w = Tensor::<Inner, 1>::from_floats([1.0], &device);
        let mut state = None;
        for _ in 0..2 {
            let g = Tensor::<Inner, 1>::from_floats([0.5], &device);
            let (nw, ns) = SimpleOptimizer::<Inner>::step(&sgd, 0.1, w, g, state);
            w = nw;
            state = ns;
        }
        // v1 = 0.5, w1 = 1 - 0.1(0.5 + 0.45) = 0.905; v2 = 0.95, w2 = 0.905 - 0.1(0.5 + 0.855)
        let expected = 0.905 - 0.1 * (0.5 + 0.9 * 0.95);
        assert!((w.into_scalar() - expected as f32).abs() < 1e-6);
    }
}
