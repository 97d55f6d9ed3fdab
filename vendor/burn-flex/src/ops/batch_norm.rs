//! shufflenas patch: batch normalisation with batch statistics (burn-backend's
//! `ModuleOps::batch_norm_train`, also a shufflenas patch) as fused f32 kernels.
//!
//! Composed from Burn ops, a training batch norm reads and writes the activation about
//! ten times forward and backward (a transposed copy, mean, centring, square, mean,
//! scale, shift, and each of their backward passes). Here:
//! - forward: one read per channel for the shifted sums (`Σ(x−K)` and `Σ(x−K)²`, `K`
//!   the channel's first value, which keeps the variance accurate when the mean is
//!   large), one read and one write for `y = (x − mean)·scale + β`;
//! - backward: one read of `x` and `dy` per channel for `Σdy` and `Σdy·(x−mean)`,
//!   one read of both and one write for `dx = a·dy + b·(x − mean) + c`.
//!
//! Each row (one batch item, one channel) is summed in 16 f32 lanes, rows are added in
//! f64 in batch order, channels run in parallel: deterministic whatever the thread count.
//! Other dtypes return `None`, and the caller takes Burn's composed default.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

use super::conv_backward::{all_f32, for_each_chunk};

/// Lanes of the row sums (a multiple of every SIMD width, so the loop vectorises).
const LANES: usize = 16;
/// Fewest values per parallel task of the element-wise passes.
const MIN_TASK: usize = 16 * 1024;

/// `(batch, channels, plane)` of an `[N, C, ...]` tensor with at least two dims.
fn geometry(x: &FlexTensor) -> Option<(usize, usize, usize)> {
    let shape = x.layout().shape();
    if shape.num_dims() < 2 || shape[1] == 0 {
        return None;
    }
    let plane = shape.as_slice()[2..].iter().product();
    Some((shape[0], shape[1], plane))
}

/// A contiguous f32 tensor of `shape` holding `data`.
fn f32_tensor(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape), DType::F32)
}

/// A `[len]` f32 tensor.
fn vector(data: Vec<f32>) -> FlexTensor {
    let n = data.len();
    f32_tensor(data, Shape::from(vec![n]))
}

/// `(Σ u, Σ u·v)` over a row with `u = a − ka`, `v = b − kb`, in `LANES` f32 partial sums.
fn row_sums(a: &[f32], ka: f32, b: &[f32], kb: f32) -> (f32, f32) {
    let (mut s1, mut s2) = ([0f32; LANES], [0f32; LANES]);
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_tail, b_tail) = (a_blocks.remainder(), b_blocks.remainder());
    for (ab, bb) in a_blocks.zip(b_blocks) {
        for l in 0..LANES {
            let u = ab[l] - ka;
            s1[l] += u;
            s2[l] += u * (bb[l] - kb);
        }
    }
    let (mut t1, mut t2) = (s1.iter().sum::<f32>(), s2.iter().sum::<f32>());
    for (&ai, &bi) in a_tail.iter().zip(b_tail) {
        t1 += ai - ka;
        t2 += (ai - ka) * (bi - kb);
    }
    (t1, t2)
}

/// Per-channel `(Σ u, Σ u·v)` over `[N, C, plane]` tensors `a` and `b`, with
/// `u = a − ka[c]`, `v = b − kb[c]`, rows added in f64 in batch order.
fn channel_sums(
    a: &[f32],
    b: &[f32],
    (batch, channels, plane): (usize, usize, usize),
    ka: &[f32],
    kb: &[f32],
) -> Vec<(f64, f64)> {
    let channel = |c: usize| {
        let (mut total_u, mut total_uv) = (0f64, 0f64);
        for n in 0..batch {
            let row = (n * channels + c) * plane..(n * channels + c + 1) * plane;
            let (su, suv) = row_sums(&a[row.clone()], ka[c], &b[row], kb[c]);
            total_u += su as f64;
            total_uv += suv as f64;
        }
        (total_u, total_uv)
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..channels).into_par_iter().map(channel).collect()
    }
    #[cfg(not(feature = "rayon"))]
    {
        (0..channels).map(channel).collect()
    }
}

/// `out[n, c, :] = coef_x[c]·(x[n, c, :] − centre[c]) + coef_y[c]·y[n, c, :] + constant[c]`
/// (`y` optional). Centring before scaling keeps the result accurate when the mean is
/// large next to the spread.
struct PerChannel<'a> {
    centre: &'a [f32],
    coef_x: &'a [f32],
    coef_y: &'a [f32],
    constant: &'a [f32],
}

fn per_channel_affine(
    x: &[f32],
    y: Option<&[f32]>,
    (_, channels, plane): (usize, usize, usize),
    k: PerChannel,
) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    if plane == 0 {
        return out;
    }
    let rows_per_task = MIN_TASK.div_ceil(plane).max(1);
    for_each_chunk(&mut out, rows_per_task * plane, |task, chunk| {
        for (r, out_row) in chunk.chunks_mut(plane).enumerate() {
            let row = task * rows_per_task + r;
            let c = row % channels;
            let start = row * plane;
            let xr = &x[start..start + plane];
            let (m, a, add) = (k.centre[c], k.coef_x[c], k.constant[c]);
            match y {
                Some(y) => {
                    let (yr, b) = (&y[start..start + plane], k.coef_y[c]);
                    for ((o, &xi), &yi) in out_row.iter_mut().zip(xr).zip(yr) {
                        *o = a * (xi - m) + b * yi + add;
                    }
                }
                None => {
                    for (o, &xi) in out_row.iter_mut().zip(xr) {
                        *o = a * (xi - m) + add;
                    }
                }
            }
        }
    });
    out
}

/// `(output, mean, biased var)` of a training batch norm, or `None` unless all are f32.
pub(crate) fn batch_norm_train_f32(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> Option<(FlexTensor, FlexTensor, FlexTensor)> {
    let dims @ (batch, channels, plane) = geometry(x)?;
    let fits = gamma.layout().num_elements() == channels && beta.layout().num_elements() == channels;
    if !all_f32(&[x, gamma, beta]) || !fits || batch * plane == 0 {
        return None;
    }
    let (x, gamma, beta) = (x.to_contiguous(), gamma.to_contiguous(), beta.to_contiguous());
    let (xd, g, b): (&[f32], &[f32], &[f32]) = (x.storage(), gamma.storage(), beta.storage());
    let shift: Vec<f32> = (0..channels).map(|c| xd[c * plane]).collect();
    let count = (batch * plane) as f64;
    let (mut mean, mut var) = (vec![0f32; channels], vec![0f32; channels]);
    let mut scale = vec![0f32; channels];
    for (c, (s1, s2)) in channel_sums(xd, xd, dims, &shift, &shift).into_iter().enumerate() {
        let centre = s1 / count;
        let v = (s2 / count - centre * centre).max(0.0);
        (mean[c], var[c]) = ((shift[c] as f64 + centre) as f32, v as f32);
        scale[c] = (g[c] as f64 / (v + epsilon).sqrt()) as f32;
    }
    // y = (x − mean)·scale + β.
    let affine = PerChannel { centre: &mean, coef_x: &scale, coef_y: &[], constant: b };
    let output = per_channel_affine(xd, None, dims, affine);
    Some((f32_tensor(output, x.layout().shape().clone()), vector(mean), vector(var)))
}

/// `(dx, dγ, dβ)` of a training batch norm, or `None` unless all are f32.
pub(crate) fn batch_norm_train_backward_f32(
    x: &FlexTensor,
    gamma: &FlexTensor,
    mean: &FlexTensor,
    var: &FlexTensor,
    epsilon: f64,
    grad: &FlexTensor,
) -> Option<(FlexTensor, FlexTensor, FlexTensor)> {
    let dims @ (batch, channels, plane) = geometry(x)?;
    let fits = [gamma, mean, var].iter().all(|t| t.layout().num_elements() == channels)
        && grad.layout().shape() == x.layout().shape();
    if !all_f32(&[x, gamma, mean, var, grad]) || !fits || batch * plane == 0 {
        return None;
    }
    let [x, gamma, mean, var, grad] = [x, gamma, mean, var, grad].map(|t| t.to_contiguous());
    let (xd, g, m, v, dy): (&[f32], &[f32], &[f32], &[f32], &[f32]) =
        (x.storage(), gamma.storage(), mean.storage(), var.storage(), grad.storage());
    let zeros = vec![0f32; channels];
    let sums = channel_sums(dy, xd, dims, &zeros, m);
    let count = (batch * plane) as f64;
    let (mut gamma_grad, mut beta_grad) = (vec![0f32; channels], vec![0f32; channels]);
    let (mut coef_dy, mut coef_x, mut constant) = (vec![0f32; channels], vec![0f32; channels], vec![0f32; channels]);
    for (c, (sum_dy, sum_dy_xc)) in sums.into_iter().enumerate() {
        let inv_std = 1.0 / (v[c] as f64 + epsilon).sqrt();
        let (d_beta, d_gamma) = (sum_dy, sum_dy_xc * inv_std);
        // dx = a·dy − a·dβ/M − a·x̂·dγ/M with x̂ = (x − mean)·s, i.e.
        // a·dy + b·(x − mean) + c with b = −a·s·dγ/M and c = −a·dβ/M.
        let a = g[c] as f64 * inv_std;
        (gamma_grad[c], beta_grad[c]) = (d_gamma as f32, d_beta as f32);
        (coef_dy[c], coef_x[c]) = (a as f32, (-a * inv_std * d_gamma / count) as f32);
        constant[c] = (-a * d_beta / count) as f32;
    }
    let affine = PerChannel { centre: m, coef_x: &coef_x, coef_y: &coef_dy, constant: &constant };
    let dx = per_channel_affine(xd, Some(dy), dims, affine);
    Some((f32_tensor(dx, x.layout().shape().clone()), vector(gamma_grad), vector(beta_grad)))
}
