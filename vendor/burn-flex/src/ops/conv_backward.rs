//! shufflenas patch: direct f32 backward kernels for the two convolutions that
//! dominate mobile CNN training, pointwise (1×1, stride 1, no padding, groups 1)
//! and depthwise (groups == C_in == C_out, dilation 1).
//!
//! Burn's default backward goes through `conv_transpose2d` (single-threaded,
//! one GEMM of depth 1 plus a scalar col2im per batch item and channel, for
//! depthwise) and, for the weight gradient, `swap_dims` + `conv2d` (two
//! strided copies of the activations; for depthwise, one `conv2d` and one
//! `slice_assign` per channel). Here:
//! - pointwise input gradient: one GEMM `Wᵀ · g[n]` per batch item, items in parallel;
//! - pointwise weight gradient: `Σₙ g[n] · x[n]ᵀ` with GEMM strides reading `x`
//!   transposed in place, output row blocks in parallel;
//! - depthwise input and weight gradients: direct loops over each plane, planes
//!   (resp. channels) in parallel.
//!
//! Every output element is summed in a fixed order that does not depend on the
//! number of threads, so results are deterministic.
//!
//! Other shapes and dtypes return `None`, and the caller takes Burn's default.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Output rows per task of the pointwise weight gradient.
const WEIGHT_ROWS_PER_TASK: usize = 16;

/// `x`'s, `weight`'s and `output_grad`'s dims when the convolution is pointwise.
fn pointwise_dims(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<[usize; 4]> {
    let (xs, ws, gs) = (x.layout().shape(), weight.layout().shape(), grad.layout().shape());
    let plain = options.stride == [1, 1]
        && options.padding == [0, 0]
        && options.dilation == [1, 1]
        && options.groups == 1;
    let f32s = [x.dtype(), weight.dtype(), grad.dtype()].iter().all(|&d| d == DType::F32);
    let shapes = xs.num_dims() == 4
        && ws.num_dims() == 4
        && gs.num_dims() == 4
        && ws[2] == 1
        && ws[3] == 1
        && ws[1] == xs[1]
        && gs[0] == xs[0]
        && gs[1] == ws[0]
        && gs[2] == xs[2]
        && gs[3] == xs[3];
    (plain && f32s && shapes).then(|| [xs[0], xs[1], ws[0], xs[2] * xs[3]])
}

/// The geometry of a depthwise convolution.
#[derive(Clone, Copy)]
struct Depthwise {
    batch: usize,
    channels: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Depthwise {
    fn of(x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let (xs, ws, gs) = (x.layout().shape(), weight.layout().shape(), grad.layout().shape());
        if xs.num_dims() != 4 || ws.num_dims() != 4 || gs.num_dims() != 4 {
            return None;
        }
        let f32s = [x.dtype(), weight.dtype(), grad.dtype()].iter().all(|&d| d == DType::F32);
        let channels = xs[1];
        let depthwise = options.groups == channels
            && channels > 1
            && ws[0] == channels
            && ws[1] == 1
            && gs[1] == channels
            && gs[0] == xs[0]
            && options.dilation == [1, 1]
            && options.stride.iter().all(|&s| s >= 1);
        if !(f32s && depthwise) {
            return None;
        }
        let geometry = Self {
            batch: xs[0],
            channels,
            in_h: xs[2],
            in_w: xs[3],
            out_h: gs[2],
            out_w: gs[3],
            kernel_h: ws[2],
            kernel_w: ws[3],
            stride: options.stride,
            padding: options.padding,
        };
        // The gradient's size must be the forward conv's output size.
        let expected = |input: usize, kernel: usize, axis: usize| {
            (input + 2 * geometry.padding[axis]).checked_sub(kernel).map(|span| span / geometry.stride[axis] + 1)
        };
        let sizes_match = expected(geometry.in_h, geometry.kernel_h, 0) == Some(geometry.out_h)
            && expected(geometry.in_w, geometry.kernel_w, 1) == Some(geometry.out_w);
        sizes_match.then_some(geometry)
    }

    /// The output positions `o` along one axis whose input position
    /// `o·stride + tap − padding` lies inside `0..input`.
    fn valid_outputs(&self, tap: usize, axis: usize) -> core::ops::Range<usize> {
        let (stride, padding) = (self.stride[axis], self.padding[axis]);
        let (input, output) = if axis == 0 { (self.in_h, self.out_h) } else { (self.in_w, self.out_w) };
        let first = padding.saturating_sub(tap).div_ceil(stride);
        // Largest o with o·stride + tap − padding ≤ input − 1.
        let end = match (input + padding).checked_sub(tap + 1) {
            Some(top) => (top / stride + 1).min(output),
            None => 0,
        };
        first..end.max(first)
    }
}

/// Input gradient of a pointwise or depthwise conv2d, or `None` for other convolutions.
pub(crate) fn conv2d_x_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some([batch, c_in, c_out, plane]) = pointwise_dims(x, weight, grad, options) {
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let (w, g): (&[f32], &[f32]) = (weight.storage(), grad.storage());
        let mut dx = vec![0.0f32; batch * c_in * plane];
        for_each_chunk(&mut dx, c_in * plane, |n, out| {
            let g_n = &g[n * c_out * plane..(n + 1) * c_out * plane];
            // out[c_in, plane] = Wᵀ[c_in, c_out] · g_n[c_out, plane]
            gemm_f32(out, plane, w, c_in as isize, 1, g_n, 1, plane as isize, c_in, plane, c_out, false);
        });
        return Some(tensor(dx, [batch, c_in, x.layout().shape()[2], x.layout().shape()[3]]));
    }
    let geometry = Depthwise::of(x, weight, grad, options)?;
    let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
    let (w, g): (&[f32], &[f32]) = (weight.storage(), grad.storage());
    let Depthwise { in_h, in_w, out_h, out_w, kernel_h, kernel_w, .. } = geometry;
    let taps = kernel_h * kernel_w;
    let mut dx = vec![0.0f32; geometry.batch * geometry.channels * in_h * in_w];
    for_each_chunk(&mut dx, in_h * in_w, |plane, dx_plane| {
        let c = plane % geometry.channels;
        let g_plane = &g[plane * out_h * out_w..(plane + 1) * out_h * out_w];
        for i in 0..kernel_h {
            let rows = geometry.valid_outputs(i, 0);
            for j in 0..kernel_w {
                let cols = geometry.valid_outputs(j, 1);
                if cols.is_empty() {
                    continue;
                }
                let tap = w[c * taps + i * kernel_w + j];
                let first_col = cols.start * geometry.stride[1] + j - geometry.padding[1];
                for oh in rows.clone() {
                    let ih = oh * geometry.stride[0] + i - geometry.padding[0];
                    let g_row = &g_plane[oh * out_w + cols.start..oh * out_w + cols.end];
                    let dx_row = &mut dx_plane[ih * in_w..(ih + 1) * in_w];
                    if geometry.stride[1] == 1 {
                        for (d, &gv) in dx_row[first_col..first_col + g_row.len()].iter_mut().zip(g_row) {
                            *d += tap * gv;
                        }
                    } else {
                        for (k, &gv) in g_row.iter().enumerate() {
                            dx_row[first_col + k * geometry.stride[1]] += tap * gv;
                        }
                    }
                }
            }
        }
    });
    Some(tensor(dx, [geometry.batch, geometry.channels, in_h, in_w]))
}

/// Weight gradient of a pointwise or depthwise conv2d, or `None` for other convolutions.
pub(crate) fn conv2d_weight_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some([batch, c_in, c_out, plane]) = pointwise_dims(x, weight, grad, options) {
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let (xd, g): (&[f32], &[f32]) = (x.storage(), grad.storage());
        let mut dw = vec![0.0f32; c_out * c_in];
        for_each_chunk(&mut dw, WEIGHT_ROWS_PER_TASK * c_in, |block, out| {
            let first_row = block * WEIGHT_ROWS_PER_TASK;
            let rows = out.len() / c_in;
            for n in 0..batch {
                let g_rows = &g[(n * c_out + first_row) * plane..];
                let x_n = &xd[n * c_in * plane..(n + 1) * c_in * plane];
                // out[rows, c_in] (+)= g_n[rows, plane] · x_nᵀ[plane, c_in]
                gemm_f32(out, c_in, g_rows, 1, plane as isize, x_n, plane as isize, 1, rows, c_in, plane, n > 0);
            }
        });
        return Some(tensor(dw, [c_out, c_in, 1, 1]));
    }
    let geometry = Depthwise::of(x, weight, grad, options)?;
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (xd, g): (&[f32], &[f32]) = (x.storage(), grad.storage());
    let Depthwise { channels, in_h, in_w, out_h, out_w, kernel_h, kernel_w, .. } = geometry;
    let mut dw = vec![0.0f32; channels * kernel_h * kernel_w];
    for_each_chunk(&mut dw, kernel_h * kernel_w, |c, taps| {
        for i in 0..kernel_h {
            let rows = geometry.valid_outputs(i, 0);
            for j in 0..kernel_w {
                let cols = geometry.valid_outputs(j, 1);
                if cols.is_empty() || rows.is_empty() {
                    taps[i * kernel_w + j] = 0.0;
                    continue;
                }
                let first_col = cols.start * geometry.stride[1] + j;
                let mut sum = 0.0f32;
                for n in 0..geometry.batch {
                    let plane = n * channels + c;
                    let x_plane = &xd[plane * in_h * in_w..(plane + 1) * in_h * in_w];
                    let g_plane = &g[plane * out_h * out_w..(plane + 1) * out_h * out_w];
                    for oh in rows.clone() {
                        let ih = oh * geometry.stride[0] + i - geometry.padding[0];
                        let g_row = &g_plane[oh * out_w + cols.start..oh * out_w + cols.end];
                        let x_row = &x_plane[ih * in_w..(ih + 1) * in_w];
                        sum += if geometry.stride[1] == 1 {
                            let x_run = &x_row[first_col - geometry.padding[1]..][..g_row.len()];
                            dot(g_row, x_run)
                        } else {
                            let start = first_col - geometry.padding[1];
                            g_row.iter().enumerate().map(|(k, &gv)| gv * x_row[start + k * geometry.stride[1]]).sum()
                        };
                    }
                }
                taps[i * kernel_w + j] = sum;
            }
        }
    });
    Some(tensor(dw, [channels, 1, kernel_h, kernel_w]))
}

/// A dot product in 8 independent lanes (vectorisable; fixed summation order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for k in 0..8 {
            lanes[k] += ca[k] * cb[k];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, `dst` row-major with row stride
/// `dst_rs`; `lhs` and `rhs` given by their column and row strides.
#[allow(clippy::too_many_arguments)]
fn gemm_f32(
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: &[f32],
    rhs_cs: isize,
    rhs_rs: isize,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    // The last element each operand reads must lie inside its slice.
    let last = |cs: isize, rs: isize, rows: usize, cols: usize| (rows - 1) as isize * rs + (cols - 1) as isize * cs;
    assert!(k == 0 || (last(lhs_cs, lhs_rs, m, k) as usize) < lhs.len(), "conv backward: GEMM lhs out of bounds");
    assert!(k == 0 || (last(rhs_cs, rhs_rs, k, n) as usize) < rhs.len(), "conv backward: GEMM rhs out of bounds");
    assert!((m - 1) * dst_rs + n <= dst.len(), "conv backward: GEMM output out of bounds");
    // SAFETY: the strides address elements inside `lhs`, `rhs` and `dst`
    // (checked above), and `dst` is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Runs `f(index, chunk)` over `chunk`-sized pieces of `out`, in parallel with rayon.
fn for_each_chunk<F>(out: &mut [f32], chunk: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Send + Sync,
{
    if chunk == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
    #[cfg(not(feature = "rayon"))]
    out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32)
}
