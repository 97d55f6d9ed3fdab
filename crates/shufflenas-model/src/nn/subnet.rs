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
    /// Batch-norm momentum (Burn convention, new-batch weight; MXNet's 0.1 is 0.9 here).
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

    /// Visits every batch norm.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.stem.for_each_bn(f);
        for block in &self.blocks {
            block.for_each_bn(f);
        }
        self.head.for_each_bn(f);
    }
}
