//! Squeeze-excitation: global pool → 1×1 conv (bias) → ReLU → 1×1 conv (bias) →
//! hard-sigmoid → channel-wise gate.

use burn::prelude::*;

use super::activation::hard_sigmoid;
use super::conv_bn::{ConvBnAct, biased_pointwise};
use crate::cost::se_channels;
use crate::space::Activation;

/// Config of [`SqueezeExcitation`].
#[derive(Config, Debug)]
pub struct SqueezeExcitationConfig {
    /// Channels of the gated map.
    pub channels: usize,
}

/// Squeeze-excitation with ratio 4 (bottleneck `make_divisible(C/4, 8)`).
#[derive(Module, Debug)]
pub struct SqueezeExcitation<B: Backend> {
    /// `C → C/4` with bias, then ReLU.
    pub squeeze: ConvBnAct<B>,
    /// `C/4 → C` with bias.
    pub excitation: ConvBnAct<B>,
}

impl SqueezeExcitationConfig {
    /// Builds the module on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SqueezeExcitation<B> {
        let mid = se_channels(self.channels);
        SqueezeExcitation {
            squeeze: biased_pointwise(self.channels, mid, Some(Activation::Relu)).init(device),
            excitation: biased_pointwise(mid, self.channels, None).init(device),
        }
    }
}

impl<B: Backend> SqueezeExcitation<B> {
    /// Gates each channel of `x`.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → same
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let pooled = x.clone().mean_dim(3).mean_dim(2);
        let hidden = self.squeeze.forward(pooled, self.squeeze.max_out());
        let gate = hard_sigmoid(self.excitation.forward(hidden, self.excitation.max_out()));
        x.mul(gate)
    }

    /// A standalone copy with fresh ids.
    pub fn copied(&self) -> Self {
        Self { squeeze: self.squeeze.copied(), excitation: self.excitation.copied() }
    }
}
