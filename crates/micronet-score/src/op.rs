//! Operations as the MicroNet Challenge counts them.
//!
//! Every op is described by its shape only; [`Op::counts`] turns it into parameters
//! (in bits), multiplications and additions for one input image, following the rules
//! in the challenge's counting script:
//!
//! | op | params | mults | adds |
//! |---|---|---|---|
//! | conv k×k, Cin→Cout | k·k·Cin·Cout (+Cout bias) | k·k·Cin·out | (k·k·Cin − 1)·out (+out bias) |
//! | depthwise k×k on C | k·k·C (+C bias) | k·k·out | (k·k − 1)·out (+out bias) |
//! | sparse conv, nnz non-zeros | nnz·16 bits + n mask bits | nnz·HW | (nnz − Cout)·HW |
//! | ReLU | 0 | elems | 0 |
//! | global average pool | 0 | C | (HW − 1)·C |
//! | scale / add | 0 | elems / 0 | 0 / elems |
//!
//! where `out` is the number of output elements (H·W·Cout) and HW the output spatial size.

use serde::{Deserialize, Serialize};

use crate::counts::{Convention, Counts};

/// Spatial size (height, width) of a feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spatial {
    /// Height in pixels.
    pub height: u64,
    /// Width in pixels.
    pub width: u64,
}

impl Spatial {
    /// A square `side × side` map.
    pub const fn square(side: u64) -> Self {
        Self { height: side, width: side }
    }

    /// Number of pixels, H·W.
    pub const fn area(self) -> u64 {
        self.height * self.width
    }

    /// Output size of a "same"-padded window op with this stride: `ceil(in / stride)`
    /// (stride 0 is read as 1: no op moves by zero pixels).
    pub const fn strided(self, stride: u64) -> Self {
        let stride = if stride == 0 { 1 } else { stride };
        Self { height: self.height.div_ceil(stride), width: self.width.div_ceil(stride) }
    }
}

/// An element-wise piece of an activation function. Hard-swish is
/// `AddScalar, Clip, DivScalar, Multiply`; hard-sigmoid is `AddScalar, Clip, DivScalar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ElementwiseKind {
    /// `max(x, 0)`: one multiplication per element (the challenge counts comparisons as mults).
    Relu,
    /// `x + c`: one addition per element.
    AddScalar,
    /// `min(max(x, a), b)`: one or two multiplications per element, see [`Convention::clip_mults`].
    Clip,
    /// `x / c` or `x · c`: one multiplication per element.
    DivScalar,
    /// `x · y` of two tensors of the same shape: one multiplication per element.
    Multiply,
    /// A generic activation that costs one multiplication per element (e.g. sigmoid as a lookup).
    Other,
}

/// The kind of an op and its shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OpKind {
    /// Dense convolution (groups = 1), "same" padding.
    Conv2d {
        /// Input spatial size.
        input: Spatial,
        /// Square kernel side.
        kernel: u64,
        /// Stride.
        stride: u64,
        /// Input channels.
        in_channels: u64,
        /// Output channels.
        out_channels: u64,
        /// Whether the conv has a bias.
        bias: bool,
    },
    /// Depthwise convolution (groups = channels), "same" padding.
    Depthwise {
        /// Input spatial size.
        input: Spatial,
        /// Square kernel side.
        kernel: u64,
        /// Stride.
        stride: u64,
        /// Channels.
        channels: u64,
        /// Whether the conv has a bias.
        bias: bool,
    },
    /// A fully connected layer (a 1×1 conv on a 1×1 map).
    FullyConnected {
        /// Input features.
        in_features: u64,
        /// Output features.
        out_features: u64,
        /// Whether the layer has a bias.
        bias: bool,
    },
    /// A sparse convolution with `nonzeros` non-zero weights out of k·k·Cin·Cout.
    /// Storage: 16 bits per non-zero, plus a 1-bit mask per weight when it is sparse.
    SparseConv {
        /// Input spatial size.
        input: Spatial,
        /// Square kernel side.
        kernel: u64,
        /// Stride.
        stride: u64,
        /// Input channels.
        in_channels: u64,
        /// Output channels.
        out_channels: u64,
        /// Non-zero weights (≤ k·k·Cin·Cout).
        nonzeros: u64,
    },
    /// Channel shuffle on C channels, counted as a 1×1 sparse conv C→C with one
    /// non-zero per output channel (sparsity (C−1)/C). It is a fixed permutation, so it
    /// has no trainable parameters and is not quantizable.
    ChannelShuffle {
        /// Spatial size.
        input: Spatial,
        /// Channels.
        channels: u64,
    },
    /// An element-wise activation piece on `channels` maps of size `input`.
    Elementwise {
        /// Which piece.
        kind: ElementwiseKind,
        /// Spatial size.
        input: Spatial,
        /// Channels.
        channels: u64,
    },
    /// Global average pooling of an H×W×C map to 1×1×C.
    GlobalAvgPool {
        /// Spatial size of the pooled map.
        input: Spatial,
        /// Channels.
        channels: u64,
    },
    /// Element-wise scaling of an H×W×C map by a per-channel (or per-element) factor.
    /// `attention_gate` marks the multiplication by a squeeze-excitation gate, which the
    /// seed's counter leaves out (see [`Convention::count_attention_gate`]).
    Scale {
        /// Spatial size.
        input: Spatial,
        /// Channels.
        channels: u64,
        /// Whether this is a squeeze-excitation gate multiplication.
        attention_gate: bool,
    },
    /// Element-wise addition of two H×W×C maps (a residual connection).
    Add {
        /// Spatial size.
        input: Spatial,
        /// Channels.
        channels: u64,
    },
    /// Batch normalisation. Folded into the preceding conv for MicroNet (zero cost), but
    /// its gamma and beta are trainable parameters of the real network.
    BatchNorm {
        /// Channels.
        channels: u64,
    },
}

/// One operation of a network, with an optional override of its quantizable flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Shape and kind.
    pub kind: OpKind,
    /// `None`: the kind's default (convs, FC layers and ReLU are quantizable; the rest not).
    pub quantizable_override: Option<bool>,
}

impl From<OpKind> for Op {
    fn from(kind: OpKind) -> Self {
        Self { kind, quantizable_override: None }
    }
}

impl Op {
    /// Whether the op's params and ops count as quantizable (8-bit in the int8 score).
    pub fn quantizable(&self) -> bool {
        self.quantizable_override.unwrap_or(match self.kind {
            OpKind::Conv2d { .. }
            | OpKind::Depthwise { .. }
            | OpKind::FullyConnected { .. }
            | OpKind::SparseConv { .. } => true,
            OpKind::Elementwise { kind, .. } => kind == ElementwiseKind::Relu,
            OpKind::ChannelShuffle { .. }
            | OpKind::GlobalAvgPool { .. }
            | OpKind::Scale { .. }
            | OpKind::Add { .. }
            | OpKind::BatchNorm { .. } => false,
        })
    }

    /// Marks the op as quantizable or not, overriding its kind's default.
    pub fn with_quantizable(mut self, quantizable: bool) -> Self {
        self.quantizable_override = Some(quantizable);
        self
    }

    /// Output spatial size and channels, when the op produces a feature map.
    pub fn output_shape(&self) -> Option<(Spatial, u64)> {
        Some(match self.kind {
            OpKind::Conv2d { input, stride, out_channels, .. }
            | OpKind::SparseConv { input, stride, out_channels, .. } => (input.strided(stride), out_channels),
            OpKind::Depthwise { input, stride, channels, .. } => (input.strided(stride), channels),
            OpKind::FullyConnected { out_features, .. } => (Spatial::square(1), out_features),
            OpKind::ChannelShuffle { input, channels }
            | OpKind::Elementwise { input, channels, .. }
            | OpKind::Scale { input, channels, .. }
            | OpKind::Add { input, channels } => (input, channels),
            OpKind::GlobalAvgPool { channels, .. } => (Spatial::square(1), channels),
            OpKind::BatchNorm { .. } => return None,
        })
    }

    /// Counts of this op for one image under `convention`.
    pub fn counts(&self, convention: &Convention) -> Counts {
        let raw = self.raw_counts(convention);
        Counts::from_op(raw, self.quantizable())
    }

    fn raw_counts(&self, convention: &Convention) -> RawCounts {
        match self.kind {
            OpKind::Conv2d { input, kernel, stride, in_channels, out_channels, bias } => {
                let out = input.strided(stride).area() * out_channels;
                let fan_in = kernel * kernel * in_channels;
                dense(fan_in, out_channels, out, bias)
            }
            OpKind::Depthwise { input, kernel, stride, channels, bias } => {
                let out = input.strided(stride).area() * channels;
                dense(kernel * kernel, channels, out, bias)
            }
            OpKind::FullyConnected { in_features, out_features, bias } => {
                dense(in_features, out_features, out_features, bias)
            }
            OpKind::SparseConv { input, kernel, stride, in_channels, out_channels, nonzeros } => {
                let weights = kernel * kernel * in_channels * out_channels;
                let hw = input.strided(stride).area();
                let mask_bits = if nonzeros < weights { weights } else { 0 };
                RawCounts {
                    param_bits: nonzeros * 16 + mask_bits,
                    mults: nonzeros * hw,
                    adds: nonzeros.saturating_sub(out_channels) * hw,
                    macs: nonzeros * hw,
                    trainable: nonzeros,
                }
            }
            OpKind::ChannelShuffle { input, channels } => RawCounts {
                param_bits: channels * 16 + channels * channels,
                mults: input.area() * channels,
                ..RawCounts::default()
            },
            OpKind::Elementwise { kind, input, channels } => {
                let elements = input.area() * channels;
                match kind {
                    ElementwiseKind::AddScalar => RawCounts { adds: elements, ..RawCounts::default() },
                    ElementwiseKind::Clip => {
                        RawCounts { mults: elements * u64::from(convention.clip_mults), ..RawCounts::default() }
                    }
                    ElementwiseKind::Relu
                    | ElementwiseKind::DivScalar
                    | ElementwiseKind::Multiply
                    | ElementwiseKind::Other => RawCounts { mults: elements, ..RawCounts::default() },
                }
            }
            OpKind::GlobalAvgPool { input, channels } => RawCounts {
                mults: channels,
                adds: input.area().saturating_sub(1) * channels,
                macs: input.area() * channels,
                ..RawCounts::default()
            },
            OpKind::Scale { input, channels, attention_gate } => {
                if attention_gate && !convention.count_attention_gate {
                    RawCounts::default()
                } else {
                    RawCounts { mults: input.area() * channels, ..RawCounts::default() }
                }
            }
            OpKind::Add { input, channels } => RawCounts { adds: input.area() * channels, ..RawCounts::default() },
            OpKind::BatchNorm { channels } => RawCounts { trainable: 2 * channels, ..RawCounts::default() },
        }
    }
}

/// Counts of one op before the quantizable split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawCounts {
    pub param_bits: u64,
    pub mults: u64,
    pub adds: u64,
    pub macs: u64,
    pub trainable: u64,
}

/// A dense layer with `fan_in` inputs per output, `out_channels` filters and `out`
/// output elements.
fn dense(fan_in: u64, out_channels: u64, out: u64, bias: bool) -> RawCounts {
    let bias_params = if bias { out_channels } else { 0 };
    let bias_adds = if bias { out } else { 0 };
    let params = fan_in * out_channels + bias_params;
    RawCounts {
        param_bits: params * 16,
        mults: fan_in * out,
        // Summing `fan_in` products takes `fan_in − 1` adds; none without inputs.
        adds: fan_in.saturating_sub(1) * out + bias_adds,
        macs: fan_in * out + bias_adds,
        trainable: params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(kind: OpKind) -> Counts {
        Op::from(kind).counts(&Convention::default())
    }

    // Seed row "First conv | 224 | 3 | 3 | 16": 5.419M mults, 5.218M adds.
    #[test]
    fn conv_counts_follow_the_challenge_rules() {
        let c = counts(OpKind::Conv2d {
            input: Spatial::square(224),
            kernel: 3,
            stride: 2,
            in_channels: 3,
            out_channels: 16,
            bias: false,
        });
        assert_eq!(c.mults.quantizable, 5_419_008);
        assert_eq!(c.adds.quantizable, 5_218_304);
        assert_eq!(c.param_bits.quantizable, 432 * 16);
        assert_eq!(c.trainable_params, 432);
    }

    // Seed row "Classifier | 1 | 1 | 1024 | 1000": 1.025M params, 1.024M mults and adds.
    #[test]
    fn a_biased_fully_connected_layer_adds_one_add_per_output() {
        let c = counts(OpKind::FullyConnected { in_features: 1024, out_features: 1000, bias: true });
        assert_eq!(c.params(), 1_025_000.0);
        assert_eq!(c.mults.total(), 1_024_000);
        assert_eq!(c.adds.total(), 1_024_000);
    }

    // Degenerate shapes give counts, not panics: a pool over an empty map, stride 0.
    #[test]
    fn degenerate_shapes_do_not_panic() {
        let pool = counts(OpKind::GlobalAvgPool { input: Spatial::square(0), channels: 8 });
        assert_eq!(pool.adds.total(), 0);
        assert_eq!(Spatial::square(7).strided(0), Spatial::square(7));
    }

    // A layer without inputs (a zero-width slice) has no products to sum.
    #[test]
    fn a_layer_without_inputs_counts_no_adds() {
        let c = counts(OpKind::FullyConnected { in_features: 0, out_features: 10, bias: true });
        assert_eq!(c.mults.total(), 0);
        assert_eq!(c.adds.total(), 10);
        assert_eq!(c.params(), 10.0);
    }

    #[test]
    fn depthwise_counts_one_filter_per_channel() {
        let c =
            counts(OpKind::Depthwise { input: Spatial::square(56), kernel: 5, stride: 1, channels: 10, bias: false });
        assert_eq!(c.params(), 250.0);
        assert_eq!(c.mults.total(), 25 * 56 * 56 * 10);
        assert_eq!(c.adds.total(), 24 * 56 * 56 * 10);
    }

    // A shuffle on C channels is a 1×1 sparse conv with sparsity (C−1)/C:
    // C·16 bits of values plus a C²-bit mask, i.e. C + C²/16 params.
    #[test]
    fn channel_shuffle_is_a_non_quantizable_sparse_permutation() {
        let c = counts(OpKind::ChannelShuffle { input: Spatial::square(56), channels: 64 });
        assert_eq!(c.params(), 64.0 + 64.0 * 64.0 / 16.0);
        assert_eq!(c.mults.other, 56 * 56 * 64);
        assert_eq!(c.adds.total(), 0);
        assert_eq!(c.param_bits.quantizable, 0);
        assert_eq!(c.trainable_params, 0);
    }

    #[test]
    fn a_general_sparse_conv_stores_non_zeros_and_a_mask() {
        let c = counts(OpKind::SparseConv {
            input: Spatial::square(8),
            kernel: 3,
            stride: 1,
            in_channels: 4,
            out_channels: 8,
            nonzeros: 144,
        });
        assert_eq!(c.param_bits.quantizable, 144 * 16 + 288);
        assert_eq!(c.mults.quantizable, 144 * 64);
        assert_eq!(c.adds.quantizable, (144 - 8) * 64);
        // Fully dense: no mask.
        let dense = counts(OpKind::SparseConv {
            input: Spatial::square(8),
            kernel: 3,
            stride: 1,
            in_channels: 4,
            out_channels: 8,
            nonzeros: 288,
        });
        assert_eq!(dense.param_bits.total(), 288 * 16);
    }

    // Seed row "GAP | 7 | 640": 0.001M mults (one division per channel), 0.031M adds.
    #[test]
    fn global_pool_costs_one_division_per_channel() {
        let c = counts(OpKind::GlobalAvgPool { input: Spatial::square(7), channels: 640 });
        assert_eq!(c.mults.other, 640);
        assert_eq!(c.adds.other, 48 * 640);
    }

    #[test]
    fn attention_gate_scale_is_counted_only_in_the_strict_convention() {
        let op = Op::from(OpKind::Scale { input: Spatial::square(14), channels: 160, attention_gate: true });
        assert_eq!(op.counts(&Convention::default()).flops(), 0);
        assert_eq!(op.counts(&Convention::strict()).mults.other, 14 * 14 * 160);
        let plain = Op::from(OpKind::Scale { input: Spatial::square(14), channels: 160, attention_gate: false });
        assert_eq!(plain.counts(&Convention::default()).mults.other, 14 * 14 * 160);
    }

    #[test]
    fn batch_norm_is_free_but_trainable() {
        let c = counts(OpKind::BatchNorm { channels: 64 });
        assert_eq!(c.flops(), 0);
        assert_eq!(c.params(), 0.0);
        assert_eq!(c.trainable_params, 128);
    }

    #[test]
    fn quantizable_override_moves_counts_between_the_parts() {
        let op = Op::from(OpKind::Add { input: Spatial::square(2), channels: 3 }).with_quantizable(true);
        let c = op.counts(&Convention::default());
        assert_eq!(c.adds.quantizable, 12);
        assert_eq!(c.adds.other, 0);
    }
}
