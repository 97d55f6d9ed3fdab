//! Batch normalisation over the first `c` channels of a wider layer.
//!
//! - training (autodiff backend): normalises with the batch statistics of the active
//!   channels and updates only their running statistics;
//! - inference: normalises with the running statistics;
//! - recalibration (inference backend, after [`SlicedBatchNorm::begin_recalibration`]):
//!   normalises with batch statistics and accumulates the exact mean and (biased)
//!   variance of every input seen, combined in f64 with Chan's formula, so the result
//!   does not depend on how the images are split into batches.
//!
//! Half precision: with float16/bfloat16 activations, the batch statistics, the running
//! statistics and the normalisation's scale and shift are computed in float32 (the seed's
//! `cast` keeps BN in float32); the output has the input's float type.
//!
//! Momentum uses Burn's convention, the weight of the new batch:
//! `running = (1 − momentum) · running + momentum · batch`. MXNet's `momentum=0.1`
//! (the original code's setting) is the weight of the *old* value, i.e. Burn momentum
//! 0.9; the networks' default is 0.1, PyTorch's (see docs/seed-fidelity.md).

use std::sync::{Arc, Mutex};

use burn::module::{Param, RunningState};
use burn::prelude::*;
#[cfg(feature = "fused-batch-norm")]
use burn::tensor::TensorPrimitive;
use burn::tensor::{DType, FloatDType};

use super::standalone_param;

/// Config of [`SlicedBatchNorm`].
#[derive(Config, Debug)]
pub struct SlicedBatchNormConfig {
    /// Maximum channels.
    pub channels: usize,
    /// Added to the variance.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the new batch in the running statistics (Burn/PyTorch convention).
    #[config(default = 0.1)]
    pub momentum: f64,
    /// Initial beta (upstream uses 1e-4).
    #[config(default = 1e-4)]
    pub beta_init: f64,
}

/// Trainable parameters of a module: Burn's `num_params` counts the BN running
/// statistics as well, so subtract them (`2 · channels` per batch norm).
pub(crate) fn trainable_params(num_params: usize, for_each_bn: impl FnOnce(&mut dyn FnMut(usize))) -> usize {
    let mut running = 0;
    for_each_bn(&mut |channels| running += 2 * channels);
    num_params - running
}

/// Per-channel sums of a recalibration pass.
#[derive(Debug, Clone, Default)]
pub struct BnAccumulator {
    /// Values seen per channel.
    pub count: Vec<f64>,
    /// Running mean per channel.
    pub mean: Vec<f64>,
    /// Running sum of squared deviations per channel.
    pub m2: Vec<f64>,
}

impl BnAccumulator {
    fn add(&mut self, channel: usize, n: f64, mean: f64, var: f64) {
        let (na, ma) = (self.count[channel], self.mean[channel]);
        let total = na + n;
        let delta = mean - ma;
        self.mean[channel] = ma + delta * n / total;
        self.m2[channel] += var * n + delta * delta * na * n / total;
        self.count[channel] = total;
    }
}

/// Shared slot for an active recalibration (clones of the module share it, like
/// `RunningState`).
pub type RecalibrationSlot = Arc<Mutex<Option<BnAccumulator>>>;

/// Batch norm usable on the first `c ≤ channels` channels.
#[derive(Module, Debug)]
pub struct SlicedBatchNorm<B: Backend> {
    /// Scale, `[channels]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift, `[channels]`.
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean, `[channels]`.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (biased) variance, `[channels]`.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Weight of the new batch.
    pub momentum: f64,
    /// Added to the variance.
    pub epsilon: f64,
    #[module(skip)]
    recalibration: RecalibrationSlot,
}

impl SlicedBatchNormConfig {
    /// Builds the layer on `device`: gamma 1, beta `beta_init`, mean 0, variance 1.
    pub fn init<B: Backend>(&self, device: &B::Device) -> SlicedBatchNorm<B> {
        let c = self.channels;
        SlicedBatchNorm {
            gamma: Param::from_tensor(Tensor::ones([c], device)),
            beta: Param::from_tensor(Tensor::full([c], self.beta_init, device)),
            running_mean: RunningState::new(in_stats_precision(Tensor::zeros([c], device))),
            running_var: RunningState::new(in_stats_precision(Tensor::ones([c], device))),
            momentum: self.momentum,
            epsilon: self.epsilon,
            recalibration: Arc::default(),
        }
    }
}

/// `t` in the float type BN statistics use: float32 for half-precision tensors, else
/// unchanged.
fn in_stats_precision<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    match t.dtype() {
        DType::F16 | DType::BF16 => t.cast(FloatDType::F32),
        _ => t,
    }
}

/// `t` cast to `dtype` (no-op, and no autodiff node, when it already has it).
fn with_dtype<B: Backend, const D: usize>(t: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if t.dtype() == dtype { t } else { t.cast(FloatDType::from(dtype)) }
}

fn first<B: Backend>(t: Tensor<B, 1>, c: usize) -> Tensor<B, 1> {
    if t.dims()[0] == c { t } else { t.slice([0..c]) }
}

/// `[C]` → `[1, C, 1, 1]`, broadcast over the batch and the plane. The patched flex
/// runs it as a per-channel SIMD loop (vendor/burn-flex/PATCHED.md, item 8); the CubeCL
/// backends fuse it into the surrounding element-wise kernel, which a materialised
/// `[N, C, 1, 1]` (`repeat_dim`) prevented (docs/performance.md, GPU).
fn per_channel<B: Backend>(t: Tensor<B, 1>) -> Tensor<B, 4> {
    let c = t.dims()[0];
    t.reshape([1, c, 1, 1])
}

impl<B: Backend> SlicedBatchNorm<B> {
    /// Maximum channels.
    pub fn channels(&self) -> usize {
        self.gamma.dims()[0]
    }

    /// Normalises the input's channels (the first `C` of the layer).
    ///
    /// # Shapes
    /// `[N, C, H, W]` → same, `C ≤ channels`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let c = x.dims()[1];
        if B::ad_enabled(&x.device()) {
            return self.forward_train(x);
        }
        let recalibrating = self.recalibration.lock().map(|slot| slot.is_some()).unwrap_or(false);
        if recalibrating {
            return self.forward_recalibrate(x);
        }
        let mean = first(in_stats_precision(self.running_mean.value_sync()), c);
        let var = first(in_stats_precision(self.running_var.value_sync()), c);
        self.normalize(x, mean, var)
    }

    /// Normalises with the batch statistics of the input's channels, and returns them:
    /// `(output, mean, biased variance)`, the statistics `[C]` in float32 for
    /// half-precision input.
    ///
    /// With the `fused-batch-norm` feature, one backend op (`ModuleOps::batch_norm_train`
    /// of the patched burn-backend, fused on the patched flex), so autodiff records one
    /// node; without it, composed from Burn's tensor ops (the same arithmetic).
    #[cfg(feature = "fused-batch-norm")]
    fn normalize_with_batch_stats(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
        let c = x.dims()[1];
        let primitive = |t: Tensor<B, 1>| t.into_primitive().tensor();
        let out = B::batch_norm_train(
            x.into_primitive().tensor(),
            primitive(first(self.gamma.val(), c)),
            primitive(first(self.beta.val(), c)),
            self.epsilon,
        );
        let float = |t| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(t));
        (Tensor::from_primitive(TensorPrimitive::Float(out.output)), float(out.mean), float(out.var))
    }

    #[cfg(not(feature = "fused-batch-norm"))]
    fn normalize_with_batch_stats(&self, x: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
        let [n, c, h, w] = x.dims();
        let flat = in_stats_precision(x.clone().swap_dims(0, 1).reshape([c, n * h * w]));
        let (var, mean) = flat.var_mean_bias(1);
        let (mean, var) = (mean.reshape([c]), var.reshape([c]));
        (self.normalize(x, mean.clone(), var.clone()), mean, var)
    }

    fn forward_train(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let c = x.dims()[1];
        let (y, mean, var) = self.normalize_with_batch_stats(x);
        let m = self.momentum;
        for (state, batch) in [(&self.running_mean, mean), (&self.running_var, var)] {
            let full = in_stats_precision(state.value_sync());
            let old = first(full.clone(), c);
            let new = old.mul_scalar(1.0 - m).add(batch.detach().mul_scalar(m));
            let updated = if full.dims()[0] == c { new } else { full.slice_assign([0..c], new) };
            state.update(updated.detach());
        }
        y
    }

    fn forward_recalibrate(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let (y, mean, var) = self.normalize_with_batch_stats(x);
        let means = mean.into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        let vars = var.into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        if let Ok(mut slot) = self.recalibration.lock()
            && let Some(acc) = slot.as_mut()
        {
            let count = (n * h * w) as f64;
            for ch in 0..c.min(means.len()) {
                acc.add(ch, count, means[ch], vars[ch]);
            }
        }
        y
    }

    fn normalize(&self, x: Tensor<B, 4>, mean: Tensor<B, 1>, var: Tensor<B, 1>) -> Tensor<B, 4> {
        let (scale, shift) = self.affine(mean, var, x.dtype());
        x.mul(per_channel(scale)).add(per_channel(shift))
    }

    /// `scale = γ / √(var + ε)` and `shift = β − mean · scale` over the first `C` channels
    /// (`C` = the statistics' length), computed in the statistics' precision and returned
    /// as `dtype`.
    fn affine(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, dtype: DType) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let c = mean.dims()[0];
        let scale = in_stats_precision(first(self.gamma.val(), c)).div(var.add_scalar(self.epsilon).sqrt());
        let shift = in_stats_precision(first(self.beta.val(), c)).sub(mean.mul(scale.clone()));
        (with_dtype(scale, dtype), with_dtype(shift, dtype))
    }

    /// Starts a recalibration: until [`finish_recalibration`](Self::finish_recalibration),
    /// forward passes on an inference backend use batch statistics and accumulate them.
    pub fn begin_recalibration(&self) {
        let c = self.channels();
        if let Ok(mut slot) = self.recalibration.lock() {
            *slot = Some(BnAccumulator { count: vec![0.0; c], mean: vec![0.0; c], m2: vec![0.0; c] });
        }
    }

    /// Ends a recalibration: channels that saw data get the exact mean and biased
    /// variance of everything seen; the others keep their running statistics.
    pub fn finish_recalibration(&self) {
        let Some(acc) = self.recalibration.lock().ok().and_then(|mut slot| slot.take()) else {
            return;
        };
        let device = self.gamma.device();
        let mut mean =
            self.running_mean.value_sync().into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        let mut var = self.running_var.value_sync().into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        for ch in 0..acc.count.len().min(mean.len()) {
            if acc.count[ch] > 0.0 {
                mean[ch] = acc.mean[ch];
                var[ch] = acc.m2[ch] / acc.count[ch];
            }
        }
        let to_tensor = |v: Vec<f64>| {
            let n = v.len();
            in_stats_precision(Tensor::<B, 1>::from_data(TensorData::new(v, [n]).convert::<f32>(), &device))
        };
        self.running_mean.update(to_tensor(mean));
        self.running_var.update(to_tensor(var));
    }

    /// A standalone copy of the first `c` channels, with fresh parameter ids and its own
    /// running statistics.
    pub fn narrowed(&self, c: usize) -> Self {
        Self {
            gamma: standalone_param(first(self.gamma.val(), c)),
            beta: standalone_param(first(self.beta.val(), c)),
            running_mean: RunningState::new(first(self.running_mean.value_sync(), c)),
            running_var: RunningState::new(first(self.running_var.value_sync(), c)),
            momentum: self.momentum,
            epsilon: self.epsilon,
            recalibration: Arc::default(),
        }
    }

    /// The affine form `y = scale · x + shift` of the inference-mode layer, `[channels]` each,
    /// in the parameters' float type.
    pub fn inference_affine(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let mean = in_stats_precision(self.running_mean.value_sync());
        let var = in_stats_precision(self.running_var.value_sync());
        self.affine(mean, var, self.gamma.val().dtype())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::Distribution;

    type B = Autodiff<Flex>;

    fn floats<const D: usize, Bk: Backend>(t: Tensor<Bk, D>) -> Vec<f32> {
        t.into_data().convert::<f32>().into_vec().expect("float data")
    }

    #[test]
    fn half_precision_activations_keep_float32_statistics() {
        let device = Default::default();
        B::seed(&device, 7);
        let data = Tensor::<B, 4>::random([4, 6, 5, 5], Distribution::Normal(1.0, 2.0), &device).into_data();
        let r = Tensor::<B, 4>::random([4, 6, 5, 5], Distribution::Normal(0.0, 1.0), &device);
        let (x32, x16) = (
            Tensor::<B, 4>::from_data(data.clone(), &device).require_grad(),
            Tensor::<B, 4>::from_data(data, &device).require_grad(),
        );
        let full = SlicedBatchNormConfig::new(8).init::<B>(&device);
        let half = SlicedBatchNormConfig::new(8).init::<B>(&device);

        let reference = full.forward(x32.clone());
        let y = half.forward(x16.clone().cast(FloatDType::F16));

        assert_eq!(y.dtype(), DType::F16, "output keeps the input's float type");
        assert_eq!(half.running_mean.value_sync().dtype(), DType::F32);
        assert_eq!(half.running_var.value_sync().dtype(), DType::F32);
        let worst =
            floats(y.clone()).iter().zip(floats(reference.clone())).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst < 1e-2, "f16 output differs from f32 by {worst}");
        // The running statistics only differ by the f16 rounding of the input.
        let (m16, m32) = (floats(half.running_mean.value_sync()), floats(full.running_mean.value_sync()));
        assert!(m16.iter().zip(&m32).all(|(a, b)| (a - b).abs() < 1e-3), "{m16:?} vs {m32:?}");
        assert_eq!(&m16[6..], &[0.0, 0.0], "channels beyond the slice are untouched");

        // Gradients of a weighted sum (a plain sum would give dx = 0): f16 against f32.
        let grads32 = (reference * r.clone()).sum().backward();
        let grads16 = (y.cast(FloatDType::F32) * r).sum().backward();
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(worst <= 1e-2 * scale, "f16 {what} differs from f32 by {worst} (largest {scale})");
        };
        let dx16 = x16.grad(&grads16).expect("x gets a gradient");
        assert_eq!(dx16.dtype(), DType::F32, "x's gradient has x's float type");
        close(floats(dx16), floats(x32.grad(&grads32).expect("x gets a gradient")), "dx");
        let gamma_grad = half.gamma.grad(&grads16).expect("gamma gets a gradient");
        assert_eq!(gamma_grad.dims(), [8]);
        close(floats(gamma_grad), floats(full.gamma.grad(&grads32).expect("gamma gets a gradient")), "dgamma");
    }
}
