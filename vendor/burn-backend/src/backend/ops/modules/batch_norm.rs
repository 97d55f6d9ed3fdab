//! shufflenas patch: batch normalisation with batch statistics as one module op, so a
//! backend can run it as a fused kernel (forward: one pass for the statistics, one for
//! the output; backward: one for the two reductions, one for the input gradient) and
//! autodiff can record it as one node instead of about ten.
//!
//! The defaults here compose it from float ops. With half-precision input the
//! statistics and the affine terms are computed in float32, as cuDNN and PyTorch do.

use burn_std::{FloatDType, Shape};

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
fn stats_dtype(dtype: burn_std::DType) -> FloatDType {
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

/// Per-channel mean of `[N, C, ...]`, `[C]` (every item has the same number of values
/// per channel, so the mean of the items' means is the mean).
fn channel_mean<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    per_channel_reduce::<B>(t, B::float_mean_dim)
}

/// Per-channel sum of `[N, C, ...]`, `[C]`.
fn channel_sum<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    per_channel_reduce::<B>(t, B::float_sum_dim)
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
    let stats = stats_dtype(dtype);
    let x_stats = cast_to::<B>(x.clone(), stats);
    let mean = channel_mean::<B>(x_stats.clone());
    let centered = B::float_sub(x_stats, per_channel::<B>(mean.clone(), rank));
    let var = channel_mean::<B>(B::float_mul(centered.clone(), centered));
    let scale = B::float_mul(cast_to::<B>(gamma, stats), inverse_std::<B>(var.clone(), epsilon));
    let shift = B::float_sub(cast_to::<B>(beta, stats), B::float_mul(mean.clone(), scale.clone()));
    let back = FloatDType::from(dtype);
    let output = B::float_add(
        B::float_mul(x, per_channel::<B>(cast_to::<B>(scale, back), rank)),
        per_channel::<B>(cast_to::<B>(shift, back), rank),
    );
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
    let channels = x.shape()[1];
    let count = (x.shape().num_elements() / channels.max(1)) as f64;
    let stats = stats_dtype(dtype);
    let (mean, inv_std) = (cast_to::<B>(mean, stats), inverse_std::<B>(cast_to::<B>(var, stats), epsilon));
    // x̂ and dy in `[N, C, …]`, in the statistics' float type.
    let x_hat = B::float_mul(
        B::float_sub(cast_to::<B>(x, stats), per_channel::<B>(mean, rank)),
        per_channel::<B>(inv_std.clone(), rank),
    );
    let dy = cast_to::<B>(output_grad, stats);
    let beta_grad = channel_sum::<B>(dy.clone());
    let gamma_grad = channel_sum::<B>(B::float_mul(dy.clone(), x_hat.clone()));
    // dx = a·dy + b·x̂ + c with a = γ·s, b = −a·dγ/M and c = −a·dβ/M.
    let a = B::float_mul(cast_to::<B>(gamma, stats), inv_std);
    let b = B::float_mul_scalar(B::float_mul(a.clone(), gamma_grad.clone()), (-1.0 / count).into());
    let c = B::float_mul_scalar(B::float_mul(a.clone(), beta_grad.clone()), (-1.0 / count).into());
    let x_grad = B::float_add(
        B::float_add(B::float_mul(dy, per_channel::<B>(a, rank)), B::float_mul(x_hat, per_channel::<B>(b, rank))),
        per_channel::<B>(c, rank),
    );
    let back = FloatDType::from(gamma_dtype);
    BatchNormTrainBackward::new(
        cast_to::<B>(x_grad, FloatDType::from(dtype)),
        cast_to::<B>(gamma_grad, back),
        cast_to::<B>(beta_grad, back),
    )
}
