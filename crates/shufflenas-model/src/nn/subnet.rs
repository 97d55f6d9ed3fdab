//! A fixed network of the search space, built from a decoded plan.

use burn::prelude::*;

use super::block::{ChoiceBlock, ChoiceBlockConfig};
use super::conv_bn::ConvBnAct;
use super::head::{Head, HeadConfig, StemConfig};
use super::norm::SlicedBatchNorm;
use crate::error::SpaceError;
use crate::genome::Architecture;
use crate::space::{NetworkPlan, SearchSpace};

/// Config of [`ShuffleNasNet`]: the space and the genome.
#[derive(Config, Debug)]
pub struct ShuffleNasNetConfig {
    /// The search space (input, classes, SE, head, channels).
    pub space: SearchSpace,
    /// The genome.
    pub arch: Architecture,
    /// Batch-norm momentum (Burn convention, new-batch weight). The default 0.1 is
    /// PyTorch's; the original MXNet code's `momentum=0.1` is 0.9 here (see
    /// docs/seed-fidelity.md).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// A fixed (searched) network: stem, 20 choice blocks at their exact widths, head.
#[derive(Module, Debug)]
pub struct ShuffleNasNet<B: Backend> {
    /// First conv.
    pub stem: ConvBnAct<B>,
    /// The choice blocks.
    pub blocks: Vec<ChoiceBlock<B>>,
    /// Classification head.
    pub head: Head<B>,
}

impl ShuffleNasNetConfig {
    /// Builds the network on `device`.
    ///
    /// # Errors
    /// [`SpaceError`] for an invalid space or a genome that does not fit it.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<ShuffleNasNet<B>, SpaceError> {
        let plan = self.space.decode(&self.arch)?;
        Ok(ShuffleNasNet::from_plan(&plan, self.bn_momentum, device))
    }
}

impl<B: Backend> ShuffleNasNet<B> {
    /// Builds the network of a decoded plan.
    pub fn from_plan(plan: &NetworkPlan, bn_momentum: f64, device: &B::Device) -> Self {
        Self {
            stem: StemConfig::new(plan.stem.clone()).with_bn_momentum(bn_momentum).init(device),
            blocks: plan
                .blocks
                .iter()
                .map(|b| ChoiceBlockConfig::new(b.clone()).with_bn_momentum(bn_momentum).init(device))
                .collect(),
            head: HeadConfig::new(plan.head.clone()).with_bn_momentum(bn_momentum).init(device),
        }
    }

    /// Logits.
    ///
    /// # Shapes
    /// `[N, C_img, S, S]` → `[N, classes]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = self.stem.forward(x, self.stem.max_out());
        for block in &self.blocks {
            x = block.forward(x, block.max_mid());
        }
        self.head.forward(x)
    }

    /// The deployment form: every BN folded into the preceding conv. Inference only.
    pub fn fuse_bn(self) -> Self {
        Self {
            stem: self.stem.fuse_bn(),
            blocks: self.blocks.into_iter().map(ChoiceBlock::fuse_bn).collect(),
            head: self.head.fuse_bn(),
        }
    }

    /// Trainable parameters: conv weights and biases, BN gamma and beta. Burn's
    /// `num_params` also counts the BN running statistics; this does not.
    pub fn trainable_params(&self) -> usize {
        super::norm::trainable_params(self.num_params(), |count| self.for_each_bn(&mut |bn| count(bn.channels())))
    }

    /// Visits every batch norm.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.stem.for_each_bn(f);
        for block in &self.blocks {
            block.for_each_bn(f);
        }
        self.head.for_each_bn(f);
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    use burn::tensor::Distribution;
    use micronet_score::Convention;

    use super::*;
    use crate::CostTable;

    fn trainable(space: &SearchSpace, arch: &Architecture) -> u64 {
        CostTable::new(space, Convention::default()).unwrap().cost(arch).unwrap().trainable_params
    }

    // The analytic counter and the real network must agree, or constraints on params
    // would be checked against the wrong number.
    #[test]
    fn parameter_count_equals_the_analytic_trainable_count() {
        let device = Default::default();
        let seed_space = SearchSpace::oneshot_plus();
        let mut cases = vec![
            (seed_space.clone(), Architecture::oneshot_s_plus()),
            (SearchSpace::oneshot_original(), Architecture::oneshot()),
            (seed_space.clone(), Architecture::supernet_max()),
        ];
        let full = SearchSpace { searchable_min_id: 0, ..SearchSpace::small_input(1, 10) };
        for seed in 0..20 {
            let space = if seed % 2 == 0 {
                full.clone()
            } else {
                SearchSpace { use_se: false, last_conv_after_pooling: false, ..full.clone() }
            };
            cases.push((space, Architecture::random_seeded(&full, seed)));
        }
        for (space, arch) in cases {
            let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<Flex>(&device).unwrap();
            assert_eq!(net.trainable_params() as u64, trainable(&space, &arch), "{arch}");
        }
    }

    #[test]
    fn weights_round_trip_through_safetensors() {
        let device = Default::default();
        let space = SearchSpace::tiny(3, 10);
        let arch = Architecture::random_seeded(&space, 4);
        Flex::seed(&device, 1);
        let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<Flex>(&device).unwrap();
        let mut store = SafetensorsStore::from_bytes(None);
        net.save_into(&mut store).unwrap();
        let bytes = store.get_bytes().unwrap();
        Flex::seed(&device, 2);
        let mut other = ShuffleNasNetConfig::new(space, arch).init::<Flex>(&device).unwrap();
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        other.load_from(&mut store).unwrap();
        let x = Tensor::<Flex, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let a: Vec<f32> = net.forward(x.clone()).into_data().into_vec().unwrap();
        let b: Vec<f32> = other.forward(x).into_data().into_vec().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn fused_network_matches_in_eval_mode() {
        let device = Default::default();
        let space = SearchSpace { use_se: false, last_conv_after_pooling: false, ..SearchSpace::tiny(3, 10) };
        let net = ShuffleNasNetConfig::new(space.clone(), Architecture::random_seeded(&space, 8))
            .init::<Flex>(&device)
            .unwrap();
        let x = Tensor::<Flex, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        let plain = net.forward(x.clone());
        let fused = net.fuse_bn();
        assert!(fused.blocks.iter().all(|b| b.main.iter().all(|u| u.bn.is_none())));
        let diff = fused.forward(x).sub(plain.clone()).abs().max().into_scalar();
        let scale = plain.abs().max().into_scalar();
        assert!(diff <= 1e-5 * scale.max(1.0), "{diff} vs {scale}");
    }
}
