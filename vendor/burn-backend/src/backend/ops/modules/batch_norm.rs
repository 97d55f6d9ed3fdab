//! shufflenas patch: batch normalisation with batch statistics as one module op, so a
//! backend can run it as a fused kernel (forward: one pass for the statistics, one for
//! the output; backward: one for the two reductions, one for the input gradient) and
//! autodiff can record it as one node instead of about ten.
//!
//! The defaults here compose it from float ops. With half-precision input the
//! statistics and the affine terms are computed in float32, as cuDNN and PyTorch do.

use burn_std::{FloatDType, Shape, Slice};

use crate::tensor::FloatTensor;
use crate::{Backend, TensorMetadata};

/// Results of [batch_norm_train](super::ModuleOps::batch_norm_train).
#[derive(new)]
pub struct BatchNormTrainOutput<B: Backend> {
    /// The normalised tensor, the input's shape and float type.
    pub output: FloatTensor<B>,
    /// Per-channel batch mean, `[C]`, float32 for half-precision input.
    pub mean: FloatTensor<B>,
    /// Per-channel biased batch variance, `[C]`, as `mean`.
    pub var: FloatTensor<B>,
}

/// Gradients of [batch_norm_train](super::ModuleOps::batch_norm_train).
#[derive(new)]
pub struct BatchNormTrainBackward<B: Backend> {
    /// Gradient of the input, its shape and float type.
    pub x_grad: FloatTensor<B>,
    /// Gradient of the scale, `[C]`, the scale's float type.
    pub gamma_grad: FloatTensor<B>,
    /// Gradient of the shift, `[C]`, the scale's float type (the shift's, when both
    /// parameters share one).
    pub beta_grad: FloatTensor<B>,
}

/// The float type statistics are computed in: float32 for half-precision tensors, else
/// the tensor's own.
pub fn stats_dtype(dtype: burn_std::DType) -> FloatDType {
    match dtype {
        burn_std::DType::F16 | burn_std::DType::BF16 => FloatDType::F32,
        other => FloatDType::from(other),
    }
}

fn cast_to<B: Backend>(t: FloatTensor<B>, dtype: FloatDType) -> FloatTensor<B> {
    if FloatDType::from(t.dtype()) == dtype { t } else { B::float_cast(t, dtype) }
}

/// Per-channel reduction of `[N, C, ...]` to `[C]`: `reduce` over the trailing dims of
/// each item first (`[N, C, R]`, whose rows are contiguous in NCHW storage, so the
/// reshape is free and no transposed copy of the activation is made), then over the
/// batch (`[N, C, 1]`, small).
fn per_channel_reduce<B: Backend>(
    t: FloatTensor<B>,
    reduce: impl Fn(FloatTensor<B>, usize) -> FloatTensor<B>,
) -> FloatTensor<B> {
    let shape = t.shape();
    let (items, channels) = (shape[0], shape[1]);
    let rest = shape.num_elements() / (items * channels).max(1);
    let per_item = reduce(B::float_reshape(t, Shape::new([items, channels, rest])), 2);
    B::float_reshape(reduce(per_item, 0), Shape::new([channels]))
}

/// Per-channel sum of `[N, C, ...]`, `[C]`.
fn channel_sum<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    per_channel_reduce::<B>(t, B::float_sum_dim)
}

/// The first value of each channel, `x[0, c, 0, …]`, as `[C]`: the shift of the
/// forward pass's sums (values near the channel's mean keep a one-pass variance exact).
fn first_of_each_channel<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let shape = x.shape();
    let channels = shape[1];
    let slices: alloc::vec::Vec<Slice> =
        (0..shape.num_dims()).map(|d| if d == 1 { Slice::from(..) } else { Slice::from(0..1) }).collect();
    B::float_reshape(B::float_slice(x, &slices), Shape::new([channels]))
}

/// Default [batch_norm_sums](super::ModuleOps::batch_norm_sums): composed from float ops.
pub fn batch_norm_sums_default<B: Backend>(
    x: FloatTensor<B>,
    shift: FloatTensor<B>,
    weights: Option<FloatTensor<B>>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let rank = x.shape().num_dims();
    let stats = stats_dtype(x.dtype());
    let centered = B::float_sub(cast_to::<B>(x, stats), per_channel::<B>(cast_to::<B>(shift, stats), rank));
    match weights {
        None => (channel_sum::<B>(centered.clone()), channel_sum::<B>(B::float_mul(centered.clone(), centered))),
        Some(weights) => {
            let weights = cast_to::<B>(weights, stats);
            (channel_sum::<B>(weights.clone()), channel_sum::<B>(B::float_mul(weights, centered)))
        }
    }
}

/// Values per channel `M` of `[N, C, ...]`, at least 1 (so an empty input divides by 1).
fn values_per_channel(shape: &Shape) -> f64 {
    (shape.num_elements() / shape[1].max(1)).max(1) as f64
}

/// `[C]` → `[1, C, 1, …]` for broadcasting over an input of `rank` dims.
fn per_channel<B: Backend>(t: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let mut dims = alloc::vec![1; rank];
    dims[1] = t.shape()[0];
    B::float_reshape(t, Shape::from(dims))
}

/// `1 / √(var + ε)`, `[C]`.
fn inverse_std<B: Backend>(var: FloatTensor<B>, epsilon: f64) -> FloatTensor<B> {
    B::float_recip(B::float_sqrt(B::float_add_scalar(var, epsilon.into())))
}

/// Default [batch_norm_train](super::ModuleOps::batch_norm_train): composed from float ops.
pub fn batch_norm_train_default<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> BatchNormTrainOutput<B> {
    let (rank, dtype) = (x.shape().num_dims(), x.dtype());
    let count = values_per_channel(&x.shape());
    let stats = stats_dtype(dtype);
    // mean = k + Σ(x − k)/M and var = Σ(x − k)²/M − (mean − k)², with k the channel's
    // first value: one pass over the input.
    let shift = cast_to::<B>(first_of_each_channel::<B>(x.clone()), stats);
    let (sum, sum_of_squares) = B::batch_norm_sums(x.clone(), shift.clone(), None);
    let offset = B::float_div_scalar(sum, count.into());
    let mean = B::float_add(shift, offset.clone());
    let var = B::float_clamp_min(
        B::float_sub(B::float_div_scalar(sum_of_squares, count.into()), B::float_mul(offset.clone(), offset)),
        0.0.into(),
    );
    let scale = B::float_mul(cast_to::<B>(gamma, stats), inverse_std::<B>(var.clone(), epsilon));
    let shift = B::float_sub(cast_to::<B>(beta, stats), B::float_mul(mean.clone(), scale.clone()));
    let back = FloatDType::from(dtype);
    let [scale, shift] = [scale, shift].map(|t| per_channel::<B>(cast_to::<B>(t, back), rank));
    let output = B::float_add(B::float_mul(x, scale), shift);
    BatchNormTrainOutput::new(output, mean, var)
}

/// Default [batch_norm_train_backward](super::ModuleOps::batch_norm_train_backward):
/// with `x̂ = (x − mean)·s`, `s = 1/√(var + ε)` and `M` values per channel,
/// `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ·s·(dy − dβ/M − x̂·dγ/M)`, computed in the
/// statistics' float type and cast once at the end.
pub fn batch_norm_train_backward_default<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    var: FloatTensor<B>,
    epsilon: f64,
    output_grad: FloatTensor<B>,
) -> BatchNormTrainBackward<B> {
    let (rank, dtype, gamma_dtype) = (x.shape().num_dims(), x.dtype(), gamma.dtype());
    let count = values_per_channel(&x.shape());
    let stats = stats_dtype(dtype);
    let (mean, inv_std) = (cast_to::<B>(mean, stats), inverse_std::<B>(cast_to::<B>(var, stats), epsilon));
    // dβ = Σ dy and dγ = s·Σ dy·(x − mean), one pass over x and dy.
    let (beta_grad, weighted) = B::batch_norm_sums(x.clone(), mean.clone(), Some(output_grad.clone()));
    let gamma_grad = B::float_mul(weighted, inv_std.clone());
    // dx = a·dy + b·x̂ + c = a·dy + (b·s)·(x − mean) + c, with a = γ·s, b = −a·dγ/M and
    // c = −a·dβ/M: the per-channel factors first, then one element-wise chain with
    // nothing between its ops, so that a fusing backend runs it as one kernel.
    let a = B::float_mul(cast_to::<B>(gamma, stats), inv_std.clone());
    let b = B::float_mul_scalar(B::float_mul(a.clone(), gamma_grad.clone()), (-1.0 / count).into());
    let c = B::float_mul_scalar(B::float_mul(a.clone(), beta_grad.clone()), (-1.0 / count).into());
    let [mean, a, b, c] = [mean, a, B::float_mul(b, inv_std), c].map(|t| per_channel::<B>(t, rank));
    let (x, output_grad) = (cast_to::<B>(x, stats), cast_to::<B>(output_grad, stats));
    let centered = B::float_sub(x, mean);
    let x_grad = B::float_add(B::float_add(B::float_mul(output_grad, a), B::float_mul(centered, b)), c);
    let back = FloatDType::from(gamma_dtype);
    BatchNormTrainBackward::new(
        cast_to::<B>(x_grad, FloatDType::from(dtype)),
        cast_to::<B>(gamma_grad, back),
        cast_to::<B>(beta_grad, back),
    )
}
