//! The weight-sharing supernet: every position holds the four choice blocks at their
//! maximum width; a forward pass runs one path, slicing each chosen block to the
//! genome's mid channels.

use burn::prelude::*;

use super::block::{ChoiceBlock, ChoiceBlockConfig};
use super::conv_bn::ConvBnAct;
use super::head::{Head, HeadConfig, StemConfig};
use super::norm::SlicedBatchNorm;
use super::subnet::ShuffleNasNet;
use crate::error::SpaceError;
use crate::genome::Architecture;
use crate::space::{NetworkPlan, SearchSpace};

/// Config of [`Supernet`].
#[derive(Config, Debug)]
pub struct SupernetConfig {
    /// The search space.
    pub space: SearchSpace,
    /// Batch-norm momentum (Burn convention, new-batch weight; MXNet's 0.1 is 0.9 here).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// The four candidate blocks of one position.
#[derive(Module, Debug)]
pub struct ChoicePosition<B: Backend> {
    /// SNB-3, SNB-5, SNB-7, SXB-3, in id order.
    pub blocks: Vec<ChoiceBlock<B>>,
}

/// The supernet.
#[derive(Module, Debug)]
pub struct Supernet<B: Backend> {
    /// First conv.
    pub stem: ConvBnAct<B>,
    /// One entry per choice position.
    pub positions: Vec<ChoicePosition<B>>,
    /// Classification head.
    pub head: Head<B>,
    #[module(skip)]
    space: SearchSpace,
}

impl SupernetConfig {
    /// Builds the supernet on `device`.
    ///
    /// # Errors
    /// [`SpaceError`] for an invalid space.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Supernet<B>, SpaceError> {
        let slots = self.space.supernet_slots()?;
        let plan = self.space.decode(&Architecture::uniform(
            self.space.num_blocks(),
            crate::BlockChoice::Snb3,
            crate::ChannelChoice(self.space.max_channel_id() as u8),
        ))?;
        let m = self.bn_momentum;
        Ok(Supernet {
            stem: StemConfig::new(plan.stem.clone()).with_bn_momentum(m).init(device),
            positions: slots
                .into_iter()
                .map(|blocks| ChoicePosition {
                    blocks: blocks
                        .into_iter()
                        .map(|b| ChoiceBlockConfig::new(b).with_bn_momentum(m).init(device))
                        .collect(),
                })
                .collect(),
            head: HeadConfig::new(plan.head.clone()).with_bn_momentum(m).init(device),
            space: self.space.clone(),
        })
    }
}

impl<B: Backend> Supernet<B> {
    /// The search space the supernet was built for.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// Runs the path of `arch`.
    ///
    /// # Errors
    /// [`SpaceError`] when the genome does not fit the space.
    ///
    /// # Shapes
    /// `[N, C_img, S, S]` → `[N, classes]`
    pub fn forward(&self, x: Tensor<B, 4>, arch: &Architecture) -> Result<Tensor<B, 2>, SpaceError> {
        Ok(self.forward_plan(x, &self.space.decode(arch)?, false))
    }

    /// Runs a decoded path. With `use_all_blocks`, each position averages the outputs
    /// of its four blocks (each at the plan's mid width), as upstream's option.
    pub fn forward_plan(&self, x: Tensor<B, 4>, plan: &NetworkPlan, use_all_blocks: bool) -> Tensor<B, 2> {
        let mut x = self.stem.forward(x, self.stem.max_out());
        for (position, block) in self.positions.iter().zip(&plan.blocks) {
            x = if use_all_blocks {
                let outputs: Vec<_> =
                    position.blocks.iter().map(|b| b.forward(x.clone(), block.mid_channels)).collect();
                let n = outputs.len() as f64;
                outputs.into_iter().reduce(|a, b| a.add(b)).map(|sum| sum.div_scalar(n)).unwrap_or(x)
            } else {
                position.blocks[block.choice.id() as usize].forward(x, block.mid_channels)
            };
        }
        self.head.forward(x)
    }

    /// A standalone fixed network for `arch` that inherits the sliced weights and BN
    /// statistics (copies: later training of either does not affect the other).
    ///
    /// # Errors
    /// [`SpaceError`] when the genome does not fit the space.
    pub fn extract(&self, arch: &Architecture) -> Result<ShuffleNasNet<B>, SpaceError> {
        let plan = self.space.decode(arch)?;
        let stem = self.stem.narrowed(self.stem.max_out(), self.stem.conv.weight.dims()[1]);
        let blocks = self
            .positions
            .iter()
            .zip(&plan.blocks)
            .map(|(position, block)| position.blocks[block.choice.id() as usize].narrowed(block.mid_channels))
            .collect();
        Ok(ShuffleNasNet { stem, blocks, head: self.head.copied() })
    }

    /// Visits the batch norms on the path of `plan` (stem, chosen blocks, head).
    pub fn for_each_bn_on_path(&self, plan: &NetworkPlan, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.stem.for_each_bn(f);
        for (position, block) in self.positions.iter().zip(&plan.blocks) {
            position.blocks[block.choice.id() as usize].for_each_bn(f);
        }
        self.head.for_each_bn(f);
    }

    /// Visits every batch norm of the supernet.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.stem.for_each_bn(f);
        for position in &self.positions {
            for block in &position.blocks {
                block.for_each_bn(f);
            }
        }
        self.head.for_each_bn(f);
    }
}
