//! A 2-D convolution whose weight can be used in part: the first `out` filters and the
//! first `in` input channels. The supernet slices its maximum-width weights this way;
//! a fixed network uses the whole weight, through the same code.

use burn::module::{Initializer, Param};
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use super::standalone_param;

/// How a conv's weights are initialised (as upstream).
#[derive(Config, Debug, Copy, PartialEq)]
pub enum ConvInit {
    /// Normal(0, 0.01): first conv, head, classifier and SE convs.
    Small,
    /// Normal(0, 1 / fan-in channels), where fan-in is `in / groups` (1 for depthwise).
    InverseFanIn,
}

/// Config of [`SlicedConv2d`].
#[derive(Config, Debug)]
pub struct SlicedConv2dConfig {
    /// Maximum input channels.
    pub in_channels: usize,
    /// Maximum output channels (must equal `in_channels` when depthwise).
    pub out_channels: usize,
    /// Square kernel side (odd).
    pub kernel: usize,
    /// Stride.
    #[config(default = 1)]
    pub stride: usize,
    /// Depthwise (groups = channels).
    #[config(default = false)]
    pub depthwise: bool,
    /// Whether the conv has a bias.
    #[config(default = false)]
    pub bias: bool,
    /// Weight initialisation.
    #[config(default = "ConvInit::InverseFanIn")]
    pub init: ConvInit,
}

/// 2-D convolution with "same" padding (`kernel / 2`) whose weight `[out, in/groups, k, k]`
/// may be used in part.
#[derive(Module, Debug)]
pub struct SlicedConv2d<B: Backend> {
    /// `[out_max, in_max, k, k]`, or `[C_max, 1, k, k]` when depthwise.
    pub weight: Param<Tensor<B, 4>>,
    /// `[out_max]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Stride.
    pub stride: usize,
    /// Depthwise (groups = active channels).
    pub depthwise: bool,
}

impl SlicedConv2dConfig {
    /// Builds the conv on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SlicedConv2d<B> {
        let fan_in = if self.depthwise { 1 } else { self.in_channels };
        let std = match self.init {
            ConvInit::Small => 0.01,
            ConvInit::InverseFanIn => 1.0 / fan_in as f64,
        };
        let shape = [self.out_channels, fan_in, self.kernel, self.kernel];
        let weight = Initializer::Normal { mean: 0.0, std }.init(shape, device);
        let bias = self.bias.then(|| Initializer::Zeros.init([self.out_channels], device));
        SlicedConv2d { weight, bias, stride: self.stride, depthwise: self.depthwise }
    }
}

impl<B: Backend> SlicedConv2d<B> {
    /// Maximum output channels.
    pub fn max_out(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Kernel side.
    pub fn kernel(&self) -> usize {
        self.weight.dims()[2]
    }

    /// Convolves with the first `out` filters over the input's channels (for depthwise,
    /// `out` must equal the input channels).
    ///
    /// # Shapes
    /// `[N, C_in, H, W]` → `[N, out, ceil(H/s), ceil(W/s)]`, with `C_in ≤ in_max`.
    pub fn forward(&self, x: Tensor<B, 4>, out: usize) -> Tensor<B, 4> {
        let [_, c_in, _, _] = x.dims();
        let [out_max, in_max, k, _] = self.weight.dims();
        let (rows, cols, groups) = if self.depthwise { (c_in, 1, c_in) } else { (out, c_in, 1) };
        let weight = if rows == out_max && cols == in_max {
            self.weight.val()
        } else {
            self.weight.val().slice([0..rows, 0..cols])
        };
        let bias = self.bias.as_ref().map(|b| if rows == out_max { b.val() } else { b.val().slice([0..rows]) });
        let padding = k / 2;
        conv2d(x, weight, bias, ConvOptions::new([self.stride; 2], [padding; 2], [1, 1], groups))
    }

    /// A standalone copy of the first `out` filters over the first `in` channels (for
    /// depthwise: the first `out` channels), with fresh parameter ids.
    pub fn narrowed(&self, out: usize, input: usize) -> Self {
        let cols = if self.depthwise { 1 } else { input };
        let weight = standalone_param(self.weight.val().slice([0..out, 0..cols]));
        let bias = self.bias.as_ref().map(|b| standalone_param(b.val().slice([0..out])));
        Self { weight, bias, stride: self.stride, depthwise: self.depthwise }
    }
}
