//! Conv → BN → activation, the unit every branch is made of.

use burn::prelude::*;

use super::activation::activate;
use super::conv::{ConvInit, SlicedConv2d, SlicedConv2dConfig};
use super::norm::{SlicedBatchNorm, SlicedBatchNormConfig};
use crate::space::Activation;

/// Which output width a unit runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Always its full width.
    Fixed,
    /// The block's active mid channels (the supernet slices these).
    Mid,
    /// The same as its input (depthwise).
    Input,
}

/// Config of [`ConvBnAct`].
#[derive(Config, Debug)]
pub struct ConvBnActConfig {
    /// The conv.
    pub conv: SlicedConv2dConfig,
    /// Batch norm after the conv.
    #[config(default = true)]
    pub batch_norm: bool,
    /// Batch-norm momentum (Burn convention, new-batch weight).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
    /// Activation after the BN, if any.
    pub activation: Option<Activation>,
}

/// Conv → optional BN → optional activation. After [`ConvBnAct::fuse_bn`] the BN is
/// folded into the conv's weight and bias.
#[derive(Module, Debug)]
pub struct ConvBnAct<B: Backend> {
    /// The conv.
    pub conv: SlicedConv2d<B>,
    /// Its batch norm (`None` once fused, or when configured without).
    pub bn: Option<SlicedBatchNorm<B>>,
    #[module(skip)]
    activation: Option<Activation>,
}

impl ConvBnActConfig {
    /// A 1×1 conv `cin → cout` + BN, with `activation`.
    pub fn pointwise(cin: usize, cout: usize, activation: Option<Activation>) -> Self {
        Self::new(SlicedConv2dConfig::new(cin, cout, 1)).with_activation(activation)
    }

    /// A k×k depthwise conv on `channels` + BN, no activation.
    pub fn depthwise(channels: usize, kernel: usize, stride: usize) -> Self {
        let conv = SlicedConv2dConfig::new(channels, channels, kernel).with_stride(stride).with_depthwise(true);
        Self::new(conv)
    }

    /// Builds the unit on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvBnAct<B> {
        let bn = self
            .batch_norm
            .then(|| SlicedBatchNormConfig::new(self.conv.out_channels).with_momentum(self.bn_momentum).init(device));
        ConvBnAct { conv: self.conv.init(device), bn, activation: self.activation }
    }
}

impl<B: Backend> ConvBnAct<B> {
    /// Runs the unit with `out` output channels (ignored for depthwise, which keeps its
    /// input width).
    ///
    /// # Shapes
    /// `[N, C_in, H, W]` → `[N, out, ceil(H/s), ceil(W/s)]`
    pub fn forward(&self, x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
        let x = self.conv.forward(x, out);
        let x = match &self.bn {
            Some(bn) => bn.forward(x),
            None => x,
        };
        match self.activation {
            Some(act) => activate(x, act),
            None => x,
        }
    }

    /// The activation after the BN.
    pub fn activation(&self) -> Option<Activation> {
        self.activation
    }

    /// Full output width.
    pub fn max_out(&self) -> usize {
        self.conv.max_out()
    }

    /// Full input width (for depthwise: its channels).
    pub fn in_channels(&self) -> usize {
        if self.conv.depthwise { self.max_out() } else { self.conv.weight.dims()[1] }
    }

    /// A standalone full-width copy with fresh ids and its own BN statistics.
    pub fn copied(&self) -> Self {
        self.narrowed(self.max_out(), self.in_channels())
    }

    /// A standalone copy narrowed to `out` filters over `input` channels.
    pub fn narrowed(&self, out: usize, input: usize) -> Self {
        Self {
            conv: self.conv.narrowed(out, input),
            bn: self.bn.as_ref().map(|bn| bn.narrowed(out)),
            activation: self.activation,
        }
    }

    /// Folds the inference-mode BN into the conv: `w' = w · γ/σ`, `b' = (b − μ) · γ/σ + β`.
    pub fn fuse_bn(self) -> Self {
        let Some(bn) = self.bn else { return self };
        let (scale, shift) = bn.inference_affine();
        let out = scale.dims()[0];
        let weight = self.conv.weight.val().mul(scale.clone().reshape([out, 1, 1, 1]));
        let bias = match &self.conv.bias {
            Some(b) => b.val().mul(scale).add(shift),
            None => shift,
        };
        let conv = SlicedConv2d {
            weight: super::standalone_param(weight),
            bias: Some(super::standalone_param(bias)),
            stride: self.conv.stride,
            depthwise: self.conv.depthwise,
        };
        Self { conv, bn: None, activation: self.activation }
    }

    /// Visits the batch norm, if any.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        if let Some(bn) = &self.bn {
            f(bn);
        }
    }
}

/// A head or SE conv: 1×1 with bias, small init, no BN.
pub fn biased_pointwise(cin: usize, cout: usize, activation: Option<Activation>) -> ConvBnActConfig {
    let conv = SlicedConv2dConfig::new(cin, cout, 1).with_bias(true).with_init(ConvInit::Small);
    ConvBnActConfig::new(conv).with_activation(activation).with_batch_norm(false)
}
