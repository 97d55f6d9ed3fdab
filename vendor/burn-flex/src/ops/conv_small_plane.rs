//! shufflenas patch: pointwise and depthwise convolutions on small planes (the last
//! stages of a mobile CNN trained at 32×32 run on 4×4, 2×2 and 1×1 planes), forward
//! and backward.
//!
//! Pointwise (1×1): flex's forward (and the backward of `conv_backward`) run one GEMM
//! per batch item, `[C_out, C_in] · [C_in, H·W]`. When `H·W` is a handful of pixels
//! each of those GEMMs is a matrix-vector product that re-reads the whole weight
//! matrix. Here the batch is folded into the GEMM's columns instead: the activations
//! are laid out channels-first, `[C, N·H·W]` (a cheap copy of a small tensor), and
//! - forward: `y = W · x`, `[C_out, N·H·W]`;
//! - input gradient: `dx = Wᵀ · g`, `[C_in, N·H·W]`;
//! - weight gradient: `dW = g · xᵀ`, `[C_out, C_in]`, one GEMM of depth `N·H·W`.
//!
//! Depthwise: on a small plane most kernel taps fall into the zero padding (a 5×5
//! kernel on a 1×1 plane has one useful tap of 25), and the per-plane setup of the
//! general kernels dominates. Here the useful multiply-adds of one plane are listed
//! once per convolution ([`TapList`]) and every plane runs through that list.
//!
//! Work is split into fixed blocks run in parallel, so each element is summed in an
//! order that does not depend on the number of threads.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;

use crate::FlexTensor;

use super::conv_backward::{self, Depthwise, all_f32, for_each_chunk, gemm_f32, tensor};

/// Planes of fewer pixels than this take these kernels (pointwise: per batch item
/// and with a batch above 1; depthwise: output planes).
pub(crate) const SMALL_PLANE: usize = 16;

/// Depthwise planes per parallel task.
const PLANES_PER_TASK: usize = 64;

/// Output rows per parallel task.
const ROWS_PER_TASK: usize = 16;

/// `[batch, c_in, c_out, plane]` when `x ⊛ weight` is a plain pointwise conv2d
/// (1×1 kernel, stride 1, no padding, dilation 1, one group).
pub(crate) fn pointwise_geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<[usize; 4]> {
    let (xs, ws) = (x.layout().shape(), weight.layout().shape());
    let plain =
        options.stride == [1, 1] && options.padding == [0, 0] && options.dilation == [1, 1] && options.groups == 1;
    let shapes = xs.num_dims() == 4 && ws.num_dims() == 4 && ws[2] == 1 && ws[3] == 1 && ws[1] == xs[1];
    (plain && shapes).then(|| [xs[0], xs[1], ws[0], xs[2] * xs[3]])
}

/// Whether a pointwise conv of this batch and plane size takes the batched GEMM.
pub(crate) fn takes_batched_gemm(batch: usize, plane: usize) -> bool {
    batch > 1 && plane < SMALL_PLANE
}

/// Swaps the two outer axes of a row-major `[a, b, inner]` array: `[b, a, inner]`.
fn swap_outer(data: &[f32], a: usize, b: usize, inner: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len());
    for j in 0..b {
        if inner == 1 {
            out.extend((0..a).map(|i| data[i * b + j]));
        } else {
            for i in 0..a {
                out.extend_from_slice(&data[(i * b + j) * inner..][..inner]);
            }
        }
    }
    out
}

/// Forward f32 depthwise conv2d (on a small plane with the tap list, else with
/// `conv_backward::depthwise_forward`), conv2d with few channels
/// (`conv_backward::few_channel_forward`, a stem) or pointwise conv2d on a small
/// plane, or `None` when none applies (other convs and dtypes, or pointwise planes
/// large enough for flex's own GEMM per batch item).
///
/// `[N, C_in, H, W] ⊛ weight (+ bias [C_out])` → `[N, C_out, H', W']`.
pub(crate) fn conv2d_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let out_channels = weight.layout().shape()[0];
    let bias_fits = bias.is_none_or(|b| b.dtype() == DType::F32 && b.layout().num_elements() == out_channels);
    if !bias_fits {
        return None;
    }
    let bias = bias.map(|b| b.to_contiguous());
    let bias: Option<&[f32]> = bias.as_ref().map(|b| b.storage());
    if let Some(geometry) = Depthwise::of_forward(x, weight, options) {
        return Some(match TapList::for_small_plane(&geometry) {
            Some(taps) => depthwise_forward(x, weight, bias, &taps),
            None => conv_backward::depthwise_forward(x, weight, bias, &geometry),
        });
    }
    if let Some(y) = conv_backward::few_channel_forward(x, weight, bias, options) {
        return Some(y);
    }
    let [batch, c_in, c_out, plane] = pointwise_geometry(x, weight, options)?;
    if !(all_f32(&[x, weight]) && takes_batched_gemm(batch, plane)) {
        return None;
    }
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let columns = batch * plane;
    let x_cf = swap_outer(x.storage(), batch, c_in, plane);
    let w: &[f32] = weight.storage();
    let mut y_cf = vec![0.0f32; c_out * columns];
    for_each_chunk(&mut y_cf, ROWS_PER_TASK * columns, |block, out| {
        let first = block * ROWS_PER_TASK;
        let rows = out.len() / columns;
        // out[rows, N·S] = W[first.., c_in] · x_cf[c_in, N·S]
        gemm_f32(
            out,
            columns,
            &w[first * c_in..],
            1,
            c_in as isize,
            &x_cf,
            1,
            columns as isize,
            rows,
            columns,
            c_in,
            false,
        );
        if let Some(b) = bias {
            for (row, &shift) in out.chunks_exact_mut(columns).zip(&b[first..]) {
                row.iter_mut().for_each(|v| *v += shift);
            }
        }
    });
    let xs = x.layout().shape();
    Some(tensor(swap_outer(&y_cf, c_out, batch, plane), [batch, c_out, xs[2], xs[3]]))
}

/// Input gradient `[N, C_in, H, W]` of a small-plane pointwise conv (the caller has
/// checked the geometry and dtypes).
pub(crate) fn x_backward(
    weight: &FlexTensor,
    grad: &FlexTensor,
    [batch, c_in, c_out, plane]: [usize; 4],
    hw: [usize; 2],
) -> FlexTensor {
    let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
    let columns = batch * plane;
    let g_cf = swap_outer(grad.storage(), batch, c_out, plane);
    let w: &[f32] = weight.storage();
    let mut dx_cf = vec![0.0f32; c_in * columns];
    for_each_chunk(&mut dx_cf, ROWS_PER_TASK * columns, |block, out| {
        let first = block * ROWS_PER_TASK;
        let rows = out.len() / columns;
        // out[rows, N·S] = Wᵀ[first.., c_out] · g_cf[c_out, N·S]
        gemm_f32(out, columns, &w[first..], c_in as isize, 1, &g_cf, 1, columns as isize, rows, columns, c_out, false);
    });
    tensor(swap_outer(&dx_cf, c_in, batch, plane), [batch, c_in, hw[0], hw[1]])
}

/// Weight gradient `[C_out, C_in, 1, 1]` of a small-plane pointwise conv (the caller
/// has checked the geometry and dtypes).
pub(crate) fn weight_backward(
    x: &FlexTensor,
    grad: &FlexTensor,
    [batch, c_in, c_out, plane]: [usize; 4],
) -> FlexTensor {
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let columns = batch * plane;
    let x_cf = swap_outer(x.storage(), batch, c_in, plane);
    let g_cf = swap_outer(grad.storage(), batch, c_out, plane);
    let mut dw = vec![0.0f32; c_out * c_in];
    for_each_chunk(&mut dw, ROWS_PER_TASK * c_in, |block, out| {
        let first = block * ROWS_PER_TASK;
        let rows = out.len() / c_in;
        // out[rows, c_in] = g_cf[first.., N·S] · x_cfᵀ[N·S, c_in]
        gemm_f32(
            out,
            c_in,
            &g_cf[first * columns..],
            1,
            columns as isize,
            &x_cf,
            columns as isize,
            1,
            rows,
            c_in,
            columns,
            false,
        );
    });
    tensor(dw, [c_out, c_in, 1, 1])
}

/// The multiply-adds of one depthwise plane: `(input, output, tap)` offsets for every
/// kernel tap that lands inside the input (taps on the zero padding are left out).
/// The same for every plane of a convolution.
pub(crate) struct TapList {
    geometry: Depthwise,
    entries: Vec<[usize; 3]>,
}

impl TapList {
    /// The list for a depthwise conv whose output planes are small, else `None`.
    pub(crate) fn for_small_plane(geometry: &Depthwise) -> Option<Self> {
        let Depthwise { in_h, in_w, out_h, out_w, kernel_h, kernel_w, stride: [sh, sw], padding: [ph, pw], .. } =
            *geometry;
        if out_h * out_w >= SMALL_PLANE {
            return None;
        }
        let inside = |at: usize, pad: usize, size: usize| at.checked_sub(pad).filter(|&v| v < size);
        let mut entries = Vec::new();
        for oh in 0..out_h {
            for ow in 0..out_w {
                for i in 0..kernel_h {
                    for j in 0..kernel_w {
                        if let (Some(ih), Some(iw)) = (inside(oh * sh + i, ph, in_h), inside(ow * sw + j, pw, in_w)) {
                            entries.push([ih * in_w + iw, oh * out_w + ow, i * kernel_w + j]);
                        }
                    }
                }
            }
        }
        Some(Self { geometry: *geometry, entries })
    }

    fn plane_sizes(&self) -> (usize, usize, usize) {
        let g = &self.geometry;
        (g.in_h * g.in_w, g.out_h * g.out_w, g.kernel_h * g.kernel_w)
    }
}

/// Runs `f(plane, channel, values)` over the `plane_len`-sized planes of an
/// `[N, C, ·]` buffer `out`, [`PLANES_PER_TASK`] planes per parallel task.
fn for_each_plane<F>(out: &mut [f32], plane_len: usize, channels: usize, f: F)
where
    F: Fn(usize, usize, &mut [f32]) + Send + Sync,
{
    for_each_chunk(out, PLANES_PER_TASK * plane_len, |block, planes| {
        for (k, values) in planes.chunks_exact_mut(plane_len).enumerate() {
            let plane = block * PLANES_PER_TASK + k;
            f(plane, plane % channels, values);
        }
    });
}

/// Depthwise forward through the tap list: `[N, C, H, W]` → `[N, C, H', W']`.
fn depthwise_forward(x: &FlexTensor, weight: &FlexTensor, bias: Option<&[f32]>, taps: &TapList) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let (xd, w): (&[f32], &[f32]) = (x.storage(), weight.storage());
    let Depthwise { batch, channels, out_h, out_w, .. } = taps.geometry;
    let (in_plane, out_plane, kk) = taps.plane_sizes();
    let mut y = vec![0.0f32; batch * channels * out_plane];
    for_each_plane(&mut y, out_plane, channels, |plane, c, y_plane| {
        let (x_plane, w_c) = (&xd[plane * in_plane..][..in_plane], &w[c * kk..][..kk]);
        for &[i, o, t] in &taps.entries {
            y_plane[o] += w_c[t] * x_plane[i];
        }
        if let Some(b) = bias {
            y_plane.iter_mut().for_each(|v| *v += b[c]);
        }
    });
    tensor(y, [batch, channels, out_h, out_w])
}

/// Depthwise input gradient through the tap list: `[N, C, H, W]`.
pub(crate) fn depthwise_x_backward(weight: &FlexTensor, grad: &FlexTensor, taps: &TapList) -> FlexTensor {
    let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
    let (w, g): (&[f32], &[f32]) = (weight.storage(), grad.storage());
    let Depthwise { batch, channels, in_h, in_w, .. } = taps.geometry;
    let (in_plane, out_plane, kk) = taps.plane_sizes();
    let mut dx = vec![0.0f32; batch * channels * in_plane];
    for_each_plane(&mut dx, in_plane, channels, |plane, c, dx_plane| {
        let (g_plane, w_c) = (&g[plane * out_plane..][..out_plane], &w[c * kk..][..kk]);
        for &[i, o, t] in &taps.entries {
            dx_plane[i] += w_c[t] * g_plane[o];
        }
    });
    tensor(dx, [batch, channels, in_h, in_w])
}

/// Depthwise weight gradient through the tap list: `[C, 1, K_h, K_w]`.
pub(crate) fn depthwise_weight_backward(x: &FlexTensor, grad: &FlexTensor, taps: &TapList) -> FlexTensor {
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (xd, g): (&[f32], &[f32]) = (x.storage(), grad.storage());
    let Depthwise { batch, channels, kernel_h, kernel_w, .. } = taps.geometry;
    let (in_plane, out_plane, kk) = taps.plane_sizes();
    let mut dw = vec![0.0f32; channels * kk];
    for_each_chunk(&mut dw, kk, |c, dw_c| {
        for n in 0..batch {
            let plane = n * channels + c;
            let (x_plane, g_plane) = (&xd[plane * in_plane..][..in_plane], &g[plane * out_plane..][..out_plane]);
            for &[i, o, t] in &taps.entries {
                dw_c[t] += x_plane[i] * g_plane[o];
            }
        }
    });
    tensor(dw, [channels, 1, kernel_h, kernel_w])
}
