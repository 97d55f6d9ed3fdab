//! The four choice blocks: ShuffleNetV2 blocks with a 3×3, 5×5 or 7×7 depthwise conv
//! (SNB-3/5/7) and the Shuffle-Xception block (SXB-3).
//!
//! A block is a projection branch (stride 2 only) and a main branch made of
//! [`ConvBnAct`] units, plus optional squeeze-excitation:
//!
//! - SNB main branch: 1×1 (→ mid) → BN → act → dw k×k (stride) → BN → 1×1 (→ out) → BN → act;
//! - SXB main branch: three (dw 3×3 → BN → 1×1 → BN → act) stages, widths in → mid → mid → out;
//! - projection branch: dw k×k stride 2 → BN → 1×1 → BN → act.
//!
//! Stride 1 shuffles the input and runs the main branch on half of it; stride 2 runs
//! both branches on the whole input. The outputs are concatenated.
//!
//! The same module serves the supernet (built at maximum mid width and run at any
//! narrower width, slicing its weights) and the fixed network (built at its exact width).

use burn::prelude::*;

use super::conv_bn::{ConvBnAct, ConvBnActConfig, Width};
use super::norm::SlicedBatchNorm;
use super::se::{SqueezeExcitation, SqueezeExcitationConfig};
use super::shuffle::channel_shuffle_split;
use crate::genome::BlockChoice;
use crate::space::BlockPlan;

/// Config of a [`ChoiceBlock`]: its decoded plan (the mid channels are the width the
/// weights are allocated at).
#[derive(Config, Debug)]
pub struct ChoiceBlockConfig {
    /// The decoded block.
    pub plan: BlockPlan,
    /// Batch-norm momentum (Burn convention).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// One choice block (SNB-3/5/7 or SXB-3).
#[derive(Module, Debug)]
pub struct ChoiceBlock<B: Backend> {
    /// Projection branch of stride-2 blocks.
    pub projection: Vec<ConvBnAct<B>>,
    /// Main branch.
    pub main: Vec<ConvBnAct<B>>,
    /// Squeeze-excitation on the main branch output.
    pub se: Option<SqueezeExcitation<B>>,
    /// 1 or 2.
    pub stride: usize,
    #[module(skip)]
    choice: BlockChoice,
    #[module(skip)]
    widths: Vec<Width>,
}

impl ChoiceBlockConfig {
    /// Builds the block on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ChoiceBlock<B> {
        let slot = &self.plan.slot;
        let (s, act) = (slot.stride, Some(slot.activation));
        let (cin, cout, mid) = (slot.main_in_channels(), slot.main_out_channels(), self.plan.mid_channels);
        let k = self.plan.kernel();
        let m = self.bn_momentum;
        let build = |configs: Vec<ConvBnActConfig>| -> Vec<ConvBnAct<B>> {
            configs.into_iter().map(|c| c.with_bn_momentum(m).init(device)).collect()
        };
        let projection = if s == 2 {
            build(vec![
                ConvBnActConfig::depthwise(slot.in_channels, k, 2),
                ConvBnActConfig::pointwise(slot.in_channels, slot.in_channels, act),
            ])
        } else {
            Vec::new()
        };
        let (main, widths) = if self.plan.choice.is_xception() {
            (
                build(vec![
                    ConvBnActConfig::depthwise(cin, 3, s),
                    ConvBnActConfig::pointwise(cin, mid, act),
                    ConvBnActConfig::depthwise(mid, 3, 1),
                    ConvBnActConfig::pointwise(mid, mid, act),
                    ConvBnActConfig::depthwise(mid, 3, 1),
                    ConvBnActConfig::pointwise(mid, cout, act),
                ]),
                vec![Width::Input, Width::Mid, Width::Input, Width::Mid, Width::Input, Width::Fixed],
            )
        } else {
            (
                build(vec![
                    ConvBnActConfig::pointwise(cin, mid, act),
                    ConvBnActConfig::depthwise(mid, k, s),
                    ConvBnActConfig::pointwise(mid, cout, act),
                ]),
                vec![Width::Mid, Width::Input, Width::Fixed],
            )
        };
        let se = slot.use_se.then(|| SqueezeExcitationConfig::new(cout).init(device));
        ChoiceBlock { projection, main, se, stride: s, choice: self.plan.choice, widths }
    }
}

impl<B: Backend> ChoiceBlock<B> {
    /// Which block this is.
    pub fn choice(&self) -> BlockChoice {
        self.choice
    }

    /// The mid width the weights are allocated at.
    pub fn max_mid(&self) -> usize {
        self.main.iter().zip(&self.widths).find(|(_, w)| **w == Width::Mid).map_or(0, |(u, _)| u.max_out())
    }

    /// Runs the block with `mid` active mid channels (`mid ≤ max_mid`).
    ///
    /// # Shapes
    /// `[N, C_in, H, W]` → `[N, C_out, ceil(H/s), ceil(W/s)]`
    pub fn forward(&self, x: Tensor<B, 4>, mid: usize) -> Tensor<B, 4> {
        let (passthrough, main_in) = if self.stride == 1 {
            channel_shuffle_split(x)
        } else {
            let mut proj = x.clone();
            for unit in &self.projection {
                proj = unit.forward(proj, unit.max_out());
            }
            (proj, x)
        };
        let mut y = main_in;
        for (unit, width) in self.main.iter().zip(&self.widths) {
            let out = match width {
                Width::Mid => mid,
                Width::Fixed | Width::Input => unit.max_out(),
            };
            y = unit.forward(y, out);
        }
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        Tensor::cat(vec![passthrough, y], 1)
    }

    /// A standalone block narrowed to `mid` channels, with its own parameters and
    /// statistics (what subnet extraction inherits).
    pub fn narrowed(&self, mid: usize) -> Self {
        let mut input = self.main.first().map_or(0, ConvBnAct::in_channels);
        let main = self
            .main
            .iter()
            .zip(&self.widths)
            .map(|(unit, width)| {
                let out = match width {
                    Width::Mid => mid,
                    Width::Input => input,
                    Width::Fixed => unit.max_out(),
                };
                let copy = unit.narrowed(out, input);
                input = out;
                copy
            })
            .collect();
        Self {
            projection: self.projection.iter().map(ConvBnAct::copied).collect(),
            main,
            se: self.se.as_ref().map(SqueezeExcitation::copied),
            stride: self.stride,
            choice: self.choice,
            widths: self.widths.clone(),
        }
    }

    /// Folds every inference-mode BN into its conv (the deployment form).
    pub fn fuse_bn(self) -> Self {
        Self {
            projection: self.projection.into_iter().map(ConvBnAct::fuse_bn).collect(),
            main: self.main.into_iter().map(ConvBnAct::fuse_bn).collect(),
            ..self
        }
    }

    /// Visits every batch norm of the block.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        for unit in self.projection.iter().chain(&self.main) {
            unit.for_each_bn(f);
        }
    }
}
