//! shufflenas patch: direct f32 backward kernels for the two convolutions that
//! dominate mobile CNN training, pointwise (1×1, stride 1, no padding, groups 1)
//! and depthwise (groups == C_in == C_out, dilation 1), and the depthwise forward
//! ([`depthwise_forward`], on the same [`Phases`] layout) and that of convolutions
//! with few channels, such as a stem ([`few_channel_forward`], the same form).
//!
//! Burn's default backward goes through `conv_transpose2d` (single-threaded,
//! one GEMM of depth 1 plus a scalar col2im per batch item and channel, for
//! depthwise) and, for the weight gradient, `swap_dims` + `conv2d` (two
//! strided copies of the activations; for depthwise, one `conv2d` and one
//! `slice_assign` per channel). Here:
//! - pointwise input gradient: one GEMM `Wᵀ · g[n]` per batch item, items in parallel
//!   (on small planes, one GEMM over the whole batch: see `conv_small_plane`);
//! - pointwise weight gradient: `Σₙ g[n] · x[n]ᵀ` with GEMM strides reading `x`
//!   transposed in place, output row blocks in parallel;
//! - depthwise input and weight gradients: each plane laid out as [`Phases`], so
//!   each kernel tap is a constant offset: the input gradient gathers all taps into
//!   SIMD registers per phase plane, the weight gradient takes one dot product per
//!   tap over the plane; planes (resp. channels) in parallel (on small planes, a list
//!   of the taps that miss the padding: see `conv_small_plane`).
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

use super::conv_small_plane::{self, TapList, pointwise_geometry, takes_batched_gemm};

/// Output rows per task of the pointwise weight gradient.
const WEIGHT_ROWS_PER_TASK: usize = 16;

/// `[batch, c_in, c_out, plane]` when the convolution is pointwise, all f32, and
/// `grad` has the output's shape.
fn pointwise_dims(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<[usize; 4]> {
    let dims = pointwise_geometry(x, weight, options)?;
    let (xs, gs) = (x.layout().shape(), grad.layout().shape());
    let shapes = gs.num_dims() == 4 && gs[0] == xs[0] && gs[1] == dims[2] && gs[2] == xs[2] && gs[3] == xs[3];
    (all_f32(&[x, weight, grad]) && shapes).then_some(dims)
}

/// Whether every tensor is f32 (the only dtype these kernels handle).
pub(crate) fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// The largest stride these depthwise kernels take (larger ones take flex's own).
const MAX_STRIDE: usize = 8;

/// The geometry of a depthwise convolution.
#[derive(Clone, Copy)]
pub(crate) struct Depthwise {
    pub(crate) batch: usize,
    pub(crate) channels: usize,
    pub(crate) in_h: usize,
    pub(crate) in_w: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) kernel_h: usize,
    pub(crate) kernel_w: usize,
    pub(crate) stride: [usize; 2],
    pub(crate) padding: [usize; 2],
}

impl Depthwise {
    /// The geometry of `x ⊛ weight` when it is an f32 depthwise conv2d (groups =
    /// channels > 1, dilation 1).
    pub(crate) fn of_forward(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let (xs, ws) = (x.layout().shape(), weight.layout().shape());
        if xs.num_dims() != 4 || ws.num_dims() != 4 {
            return None;
        }
        let channels = xs[1];
        let depthwise = options.groups == channels && channels > 1 && ws[0] == channels && ws[1] == 1;
        if !depthwise {
            return None;
        }
        Self::of_planes(x, weight, options)
    }

    /// The geometry of each (input plane, output plane) pair of `x ⊛ weight`, an f32
    /// conv2d with dilation 1 and strides up to `MAX_STRIDE`; `channels` holds the
    /// input channels.
    fn of_planes(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let (xs, ws) = (x.layout().shape(), weight.layout().shape());
        let plain = xs.num_dims() == 4
            && ws.num_dims() == 4
            && ws[2] >= 1
            && ws[3] >= 1
            && options.dilation == [1, 1]
            && options.stride.iter().all(|&s| (1..=MAX_STRIDE).contains(&s));
        if !(all_f32(&[x, weight]) && plain) {
            return None;
        }
        let out = |input: usize, kernel: usize, axis: usize| {
            (input + 2 * options.padding[axis]).checked_sub(kernel).map(|span| span / options.stride[axis] + 1)
        };
        Some(Self {
            batch: xs[0],
            channels: xs[1],
            in_h: xs[2],
            in_w: xs[3],
            out_h: out(xs[2], ws[2], 0)?,
            out_w: out(xs[3], ws[3], 1)?,
            kernel_h: ws[2],
            kernel_w: ws[3],
            stride: options.stride,
            padding: options.padding,
        })
    }

    /// [`Depthwise::of_forward`], when `grad` (f32) has the output's shape.
    fn of(x: &FlexTensor, weight: &FlexTensor, grad: &FlexTensor, options: &ConvOptions<2>) -> Option<Self> {
        let geometry = Self::of_forward(x, weight, options)?;
        let gs = grad.layout().shape();
        let matches = gs.num_dims() == 4
            && [gs[0], gs[1], gs[2], gs[3]] == [geometry.batch, geometry.channels, geometry.out_h, geometry.out_w];
        (grad.dtype() == DType::F32 && matches).then_some(geometry)
    }

    /// The layout of one plane's phase planes (see [`Phases`]).
    fn phases(&self) -> Phases {
        let [sh, sw] = self.stride;
        let rows = self.out_h + (self.kernel_h - 1) / sh + 1;
        let pitch = self.out_w + (self.kernel_w - 1) / sw;
        Phases { geometry: *self, rows, pitch }
    }
}

/// Input gradient of a pointwise or depthwise conv2d, or `None` for other convolutions.
pub(crate) fn conv2d_x_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some(dims @ [batch, c_in, c_out, plane]) = pointwise_dims(x, weight, grad, options) {
        let xs = x.layout().shape();
        if takes_batched_gemm(batch, plane) {
            return Some(conv_small_plane::x_backward(weight, grad, dims, [xs[2], xs[3]]));
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let (w, g): (&[f32], &[f32]) = (weight.storage(), grad.storage());
        let mut dx = vec![0.0f32; batch * c_in * plane];
        for_each_chunk(&mut dx, c_in * plane, |n, out| {
            let g_n = &g[n * c_out * plane..(n + 1) * c_out * plane];
            // out[c_in, plane] = Wᵀ[c_in, c_out] · g_n[c_out, plane]
            gemm_f32(out, plane, w, c_in as isize, 1, g_n, 1, plane as isize, c_in, plane, c_out, false);
        });
        return Some(tensor(dx, [batch, c_in, xs[2], xs[3]]));
    }
    let geometry = Depthwise::of(x, weight, grad, options)?;
    if let Some(taps) = TapList::for_small_plane(&geometry) {
        return Some(conv_small_plane::depthwise_x_backward(weight, grad, &taps));
    }
    let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
    let (w, g): (&[f32], &[f32]) = (weight.storage(), grad.storage());
    let Depthwise { channels, in_h, in_w, out_h, out_w, kernel_h, kernel_w, .. } = geometry;
    let taps = kernel_h * kernel_w;
    let phases = geometry.phases();
    let phase_len = phases.plane_len();
    // Each phase plane of the input gradient gathers from the pitched output gradient:
    // `d[q] = Σ w(i, j) · g[q − shift(i, j)]` over the taps of that phase. The
    // gradient is stored after `front` zeros, so every read is at `q + front − shift`.
    let front = phases.shift(kernel_h - 1, kernel_w - 1);
    let per_phase = phases.taps_per_phase(front);
    // Whole SIMD vectors: each phase's result is rounded up to `VECTOR_PAD` values;
    // the excess spills into the next phase's start, which is cleared before it is
    // computed (phases run in order), or into the slack after the last phase.
    let rounded = phase_len.next_multiple_of(VECTOR_PAD);
    let mut dx = vec![0.0f32; geometry.batch * channels * in_h * in_w];
    let scratch = || {
        let g_shifted = vec![0.0f32; front + rounded];
        (g_shifted, vec![0.0f32; phases.len() + VECTOR_PAD], Vec::with_capacity(taps))
    };
    for_each_chunk_with(&mut dx, in_h * in_w, scratch, |(g_shifted, d_phases, weights), plane, dx_plane| {
        let c = plane % channels;
        let g_plane = &g[plane * out_h * out_w..(plane + 1) * out_h * out_w];
        phases.pitch_rows(g_plane, &mut g_shifted[front..front + out_h * phases.pitch]);
        for (p, (offsets, tap_ids)) in per_phase.iter().enumerate() {
            let d_phase = &mut d_phases[p * phase_len..][..rounded];
            d_phase.fill(0.0);
            weights.clear();
            weights.extend(tap_ids.iter().map(|&k| w[c * taps + k]));
            accumulate_taps(d_phase, g_shifted, offsets, weights);
        }
        phases.scatter(d_phases, dx_plane);
    });
    Some(tensor(dx, [geometry.batch, channels, in_h, in_w]))
}

/// Weight gradient of a pointwise or depthwise conv2d, or `None` for other convolutions.
pub(crate) fn conv2d_weight_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some(dims @ [batch, c_in, c_out, plane]) = pointwise_dims(x, weight, grad, options) {
        if takes_batched_gemm(batch, plane) {
            return Some(conv_small_plane::weight_backward(x, grad, dims));
        }
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
    if let Some(taps) = TapList::for_small_plane(&geometry) {
        return Some(conv_small_plane::depthwise_weight_backward(x, grad, &taps));
    }
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (xd, g): (&[f32], &[f32]) = (x.storage(), grad.storage());
    let Depthwise { channels, in_h, in_w, out_h, out_w, kernel_h, kernel_w, .. } = geometry;
    let phases = geometry.phases();
    let offsets = phases.tap_offsets();
    let mut dw = vec![0.0f32; channels * kernel_h * kernel_w];
    for_each_chunk(&mut dw, kernel_h * kernel_w, |c, taps| {
        // Exactly the outputs' positions (no padding to whole vectors): past them the
        // phases may hold inputs that no output reads, and 0 · inf would be NaN.
        let mut g_pitched = vec![0.0f32; out_h * phases.pitch];
        let mut x_phases = vec![0.0f32; phases.len()];
        for n in 0..geometry.batch {
            let plane = n * channels + c;
            let g_plane = &g[plane * out_h * out_w..(plane + 1) * out_h * out_w];
            phases.pitch_rows(g_plane, &mut g_pitched);
            phases.gather(&xd[plane * in_h * in_w..(plane + 1) * in_h * in_w], &mut x_phases);
            dot_taps(taps, &g_pitched, &x_phases, &offsets);
        }
    });
    Some(tensor(dw, [channels, 1, kernel_h, kernel_w]))
}

/// Forward depthwise conv2d (f32, dilation 1) on planes of any size (on planes under
/// `conv_small_plane::SMALL_PLANE` pixels the tap list is faster; the caller picks).
/// Each plane is laid out as [`Phases`], and each output element stays in a register
/// while all the kernel's taps are added to it, in tap order (so the result does not
/// depend on the thread count). Flex's own kernel adds one tap to one output row at a
/// time, and walks stride-2 inputs element by element.
///
/// `[N, C, H, W] ⊛ weight [C, 1, kh, kw] (+ bias [C])` → `[N, C, H', W']`.
pub(crate) fn depthwise_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&[f32]>,
    geometry: &Depthwise,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let (xd, w): (&[f32], &[f32]) = (x.storage(), weight.storage());
    let Depthwise { batch, channels, in_h, in_w, out_h, out_w, kernel_h, kernel_w, .. } = *geometry;
    let phases = geometry.phases();
    let offsets = phases.tap_offsets();
    let taps = kernel_h * kernel_w;
    let mut y = vec![0.0f32; batch * channels * out_h * out_w];
    // Whole SIMD vectors only: the pitched output is rounded up to `VECTOR_PAD`
    // elements (the rest is discarded) and the phases get as many zeros of slack.
    let pitched_len = phases.pitched_output_len();
    let scratch = || (vec![0.0f32; pitched_len], vec![0.0f32; phases.len() + VECTOR_PAD]);
    for_each_chunk_with(&mut y, out_h * out_w, scratch, |(y_pitched, x_phases), plane, y_plane| {
        let c = plane % channels;
        phases.gather(&xd[plane * in_h * in_w..(plane + 1) * in_h * in_w], x_phases);
        y_pitched.fill(bias.map_or(0.0, |b| b[c]));
        accumulate_taps(y_pitched, x_phases, &offsets, &w[c * taps..(c + 1) * taps]);
        phases.unpitch_rows(y_pitched, y_plane);
    });
    tensor(y, [batch, channels, out_h, out_w])
}

/// Input channels up to which a conv2d with one group takes [`few_channel_forward`].
const FEW_CHANNELS_IN: usize = 4;

/// Output channels up to which a conv2d with one group takes [`few_channel_forward`]
/// (flex's own small-channel kernel takes the same convolutions).
const FEW_CHANNELS_OUT: usize = 16;

/// Forward of an f32 conv2d with one group and few input and output channels, such as
/// a mobile CNN's first convolution (RGB → 16, 3×3, stride 2), in the form of
/// [`depthwise_forward`]: each batch item's input planes are laid out as phase planes
/// once, one after the other, and each output vector stays in a SIMD register while
/// the products of every (input channel, tap) pair are added to it in order. Flex's
/// kernel adds one tap of one input channel to one output row at a time, and walks
/// stride-2 inputs element by element. `None` for other convolutions.
///
/// `[N, C_in, H, W] ⊛ weight [C_out, C_in, kh, kw] (+ bias [C_out])` → `[N, C_out, H', W']`.
pub(crate) fn few_channel_forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&[f32]>,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let ws = weight.layout().shape();
    let few = options.groups == 1
        && ws.num_dims() == 4
        && (1..=FEW_CHANNELS_IN).contains(&ws[1])
        && (1..=FEW_CHANNELS_OUT).contains(&ws[0]);
    let geometry = Depthwise::of_planes(x, weight, options).filter(|g| few && g.channels == ws[1])?;
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let (xd, w): (&[f32], &[f32]) = (x.storage(), weight.storage());
    let Depthwise { batch, channels: c_in, in_h, in_w, out_h, out_w, kernel_h, kernel_w, .. } = geometry;
    let c_out = ws[0];
    let phases = geometry.phases();
    // Input channel `c`'s phase planes start at `c · phases.len()`; the reads that run
    // past a channel's planes feed only discarded outputs (as in `depthwise_forward`).
    let tap_offsets = phases.tap_offsets();
    let channel_len = phases.len();
    let offsets: Vec<usize> = (0..c_in).flat_map(|c| tap_offsets.iter().map(move |&o| c * channel_len + o)).collect();
    let weights_per_output = c_in * kernel_h * kernel_w;
    let pitched_len = phases.pitched_output_len();
    let mut y = vec![0.0f32; batch * c_out * out_h * out_w];
    let mut x_phases = vec![0.0f32; c_in * channel_len + VECTOR_PAD];
    for (item, y_item) in y.chunks_exact_mut(c_out * out_h * out_w).enumerate() {
        for (c, channel_phases) in x_phases.chunks_exact_mut(channel_len).take(c_in).enumerate() {
            phases.gather(&xd[(item * c_in + c) * in_h * in_w..][..in_h * in_w], channel_phases);
        }
        let x_phases = &x_phases;
        for_each_chunk_with(y_item, out_h * out_w, || vec![0.0f32; pitched_len], |y_pitched, o, y_plane| {
            y_pitched.fill(bias.map_or(0.0, |b| b[o]));
            accumulate_taps(y_pitched, x_phases, &offsets, &w[o * weights_per_output..][..weights_per_output]);
            phases.unpitch_rows(y_pitched, y_plane);
        });
    }
    Some(tensor(y, [batch, c_out, out_h, out_w]))
}

/// A multiple of every SIMD width in f32 lanes (16 with AVX-512).
const VECTOR_PAD: usize = 16;

/// `dst[t] += Σₖ weights[k] · source[t + offsets[k]]` for every `t`, the taps added
/// in order.
fn accumulate_taps(dst: &mut [f32], source: &[f32], offsets: &[usize], weights: &[f32]) {
    assert!(
        offsets.len() == weights.len() && offsets.iter().all(|&o| o + dst.len() <= source.len()),
        "depthwise conv: tap out of bounds"
    );
    #[cfg(feature = "simd")]
    accumulate_taps_simd(dst, source, offsets, weights);
    #[cfg(not(feature = "simd"))]
    accumulate_taps_scalar(dst, source, offsets, weights, 0);
}

/// [`accumulate_taps`] from position `start` on, one element at a time.
fn accumulate_taps_scalar(dst: &mut [f32], source: &[f32], offsets: &[usize], weights: &[f32], start: usize) {
    for (t, out) in dst.iter_mut().enumerate().skip(start) {
        *out = offsets.iter().zip(weights).fold(*out, |sum, (&o, &w)| sum + w * source[o + t]);
    }
}

/// [`accumulate_taps`] with `UNROLL` SIMD registers of outputs held across all taps.
#[cfg(feature = "simd")]
#[macerator::with_simd]
fn accumulate_taps_simd<S: macerator::Simd>(dst: &mut [f32], source: &[f32], offsets: &[usize], weights: &[f32]) {
    use macerator::{Scalar, vload_unaligned, vstore_unaligned};
    const UNROLL: usize = 4;
    let lanes = <f32 as Scalar>::lanes::<S>();
    let mut t = 0;
    // SAFETY (all loads and stores below): `t + UNROLL · lanes ≤ dst.len()` (resp.
    // `t + lanes`), and every offset `o` has `o + dst.len() ≤ source.len()` (checked
    // by the caller).
    while t + UNROLL * lanes <= dst.len() {
        let mut acc: [_; UNROLL] =
            core::array::from_fn(|u| unsafe { vload_unaligned::<S, f32>(dst.as_ptr().add(t + u * lanes)) });
        for (&o, &w) in offsets.iter().zip(weights) {
            let weight = w.splat::<S>();
            for (u, a) in acc.iter_mut().enumerate() {
                let x = unsafe { vload_unaligned::<S, f32>(source.as_ptr().add(o + t + u * lanes)) };
                *a = x.mul_add(weight, *a);
            }
        }
        for (u, a) in acc.into_iter().enumerate() {
            unsafe { vstore_unaligned::<S, f32>(dst.as_mut_ptr().add(t + u * lanes), a) };
        }
        t += UNROLL * lanes;
    }
    while t + lanes <= dst.len() {
        let mut acc = unsafe { vload_unaligned::<S, f32>(dst.as_ptr().add(t)) };
        for (&o, &w) in offsets.iter().zip(weights) {
            let x = unsafe { vload_unaligned::<S, f32>(source.as_ptr().add(o + t)) };
            acc = x.mul_add(w.splat::<S>(), acc);
        }
        unsafe { vstore_unaligned::<S, f32>(dst.as_mut_ptr().add(t), acc) };
        t += lanes;
    }
    accumulate_taps_scalar(dst, source, offsets, weights, t);
}

/// One depthwise plane laid out for long contiguous inner loops: the zero-padded
/// input split into `stride_h · stride_w` phase planes (phase `(a, b)` holds the
/// padded input's rows `a, a + s, …` and columns `b, b + s, …`), each `rows ×
/// pitch`, and the output gradient with the same row pitch (zeros past `out_w`).
/// Output `t = oh · pitch + ow` then reads tap `(i, j)` at position
/// `t + tap_offset(i, j)` of the concatenated phases, so each tap is one dot
/// product (or one axpy) over the whole plane. The zero columns of the pitched
/// gradient cancel the positions that wrap into the next row.
struct Phases {
    geometry: Depthwise,
    rows: usize,
    pitch: usize,
}

impl Phases {
    /// Length of one phase plane, `rows × pitch`.
    fn plane_len(&self) -> usize {
        self.rows * self.pitch
    }

    /// Length of all phase planes together.
    fn len(&self) -> usize {
        self.geometry.stride[0] * self.geometry.stride[1] * self.plane_len()
    }

    /// Where tap `(i, j)` of output 0 lies in the concatenated phase planes.
    fn tap_offset(&self, i: usize, j: usize) -> usize {
        let [sh, sw] = self.geometry.stride;
        let phase = (i % sh) * sw + j % sw;
        phase * self.plane_len() + self.shift(i, j)
    }

    /// [`Phases::tap_offset`] of every tap, in order `(0, 0), (0, 1), …`.
    fn tap_offsets(&self) -> Vec<usize> {
        let Depthwise { kernel_h, kernel_w, .. } = self.geometry;
        (0..kernel_h).flat_map(|i| (0..kernel_w).map(move |j| self.tap_offset(i, j))).collect()
    }

    /// Where tap `(i, j)` of output 0 lies within its own phase plane.
    fn shift(&self, i: usize, j: usize) -> usize {
        let [sh, sw] = self.geometry.stride;
        (i / sh) * self.pitch + j / sw
    }

    /// For each phase plane (in order): the read offsets `front − shift(i, j)` and the
    /// tap indices `i · kernel_w + j` of the taps `(i, j)` that land in it, in tap order.
    fn taps_per_phase(&self, front: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
        let Depthwise { kernel_h, kernel_w, stride: [sh, sw], .. } = self.geometry;
        let mut per_phase = vec![(Vec::new(), Vec::new()); sh * sw];
        for i in 0..kernel_h {
            for j in 0..kernel_w {
                let (offsets, tap_ids) = &mut per_phase[(i % sh) * sw + j % sw];
                offsets.push(front - self.shift(i, j));
                tap_ids.push(i * kernel_w + j);
            }
        }
        per_phase
    }

    /// Length of a pitched output plane (`out_h` rows of `pitch`), rounded up to whole
    /// SIMD vectors (`VECTOR_PAD`).
    fn pitched_output_len(&self) -> usize {
        (self.geometry.out_h * self.pitch).next_multiple_of(VECTOR_PAD)
    }

    /// Copies the first `out_w` values of each `pitch`-long row into an `out_h × out_w`
    /// plane (the inverse of [`Phases::pitch_rows`]).
    fn unpitch_rows(&self, pitched: &[f32], plane: &mut [f32]) {
        let out_w = self.geometry.out_w;
        for (row, dst) in pitched.chunks_exact(self.pitch).zip(plane.chunks_exact_mut(out_w)) {
            dst.copy_from_slice(&row[..out_w]);
        }
    }

    /// Copies an `out_h × out_w` plane into rows of `pitch` (the tail of each row stays 0).
    fn pitch_rows(&self, plane: &[f32], pitched: &mut [f32]) {
        let out_w = self.geometry.out_w;
        for (row, dst) in plane.chunks_exact(out_w).zip(pitched.chunks_exact_mut(self.pitch)) {
            dst[..out_w].copy_from_slice(row);
        }
    }

    /// Calls `visit(input start, phase start, count)` for every run of input positions
    /// held by one phase row: `count` elements, `stride_w` apart in the input row and
    /// consecutive in the phase row. No divisions per row or element: the phase rows
    /// are short (often 4 to 32 values).
    fn for_each_run(&self, mut visit: impl FnMut(usize, usize, usize)) {
        let Depthwise { in_h, in_w, stride: [sh, sw], padding: [ph, pw], .. } = self.geometry;
        // Per column phase `b`: the first input column `first` with `(first + pw) % sw
        // == b`, its phase column `v`, and the run's length (the same for every row).
        debug_assert!(sw <= MAX_STRIDE, "stride above MAX_STRIDE (rejected by `Depthwise::of_forward`)");
        let mut column_runs = [(0usize, 0usize, 0usize, 0usize); MAX_STRIDE];
        let mut runs = 0;
        for b in 0..sw {
            let first = (b + sw - pw % sw) % sw;
            let v = (first + pw) / sw;
            if first < in_w && v < self.pitch {
                column_runs[runs] = (b, first, v, (in_w - first).div_ceil(sw).min(self.pitch - v));
                runs += 1;
            }
        }
        let (mut u, mut a) = (ph / sh, ph % sh);
        for r in 0..in_h {
            if u >= self.rows {
                break;
            }
            for &(b, first, v, count) in &column_runs[..runs] {
                visit(r * in_w + first, ((a * sw + b) * self.rows + u) * self.pitch + v, count);
            }
            a += 1;
            if a == sh {
                (u, a) = (u + 1, 0);
            }
        }
    }

    /// Fills the phase planes from an `in_h × in_w` input plane (padding stays 0).
    fn gather(&self, plane: &[f32], phases: &mut [f32]) {
        let sw = self.geometry.stride[1];
        self.for_each_run(|input, phase, count| {
            let target = &mut phases[phase..phase + count];
            if sw == 1 {
                target.copy_from_slice(&plane[input..input + count]);
            } else {
                target.iter_mut().zip(plane[input..].iter().step_by(sw)).for_each(|(p, &v)| *p = v);
            }
        });
    }

    /// Writes the phase planes' values back to an `in_h × in_w` plane (positions no
    /// phase holds are read by no output and keep their 0).
    fn scatter(&self, phases: &[f32], plane: &mut [f32]) {
        let sw = self.geometry.stride[1];
        self.for_each_run(|input, phase, count| {
            let target = plane[input..].iter_mut().step_by(sw);
            target.zip(&phases[phase..phase + count]).for_each(|(p, &v)| *p = v);
        });
    }
}

/// `sums[k] += Σₜ g[t] · source[t + offsets[k]]` for every tap `k` (each sum in a
/// fixed order: SIMD lanes, then across lanes, then the tail).
fn dot_taps(sums: &mut [f32], g: &[f32], source: &[f32], offsets: &[usize]) {
    assert!(
        offsets.len() == sums.len() && offsets.iter().all(|&o| o + g.len() <= source.len()),
        "depthwise weight gradient: tap out of bounds"
    );
    #[cfg(feature = "simd")]
    dot_taps_simd(sums, g, source, offsets);
    #[cfg(not(feature = "simd"))]
    for (sum, &o) in sums.iter_mut().zip(offsets) {
        *sum += g.iter().zip(&source[o..]).map(|(a, b)| a * b).sum::<f32>();
    }
}

/// [`dot_taps`] with two SIMD accumulators per tap.
#[cfg(feature = "simd")]
#[macerator::with_simd]
fn dot_taps_simd<S: macerator::Simd>(sums: &mut [f32], g: &[f32], source: &[f32], offsets: &[usize]) {
    use macerator::{Scalar, vload_unaligned};
    let lanes = <f32 as Scalar>::lanes::<S>();
    for (sum, &o) in sums.iter_mut().zip(offsets) {
        let mut acc = [0.0f32.splat::<S>(); 2];
        let mut t = 0;
        // SAFETY: `t + 2 · lanes ≤ g.len()` (resp. `t + lanes`) and `o + g.len() ≤
        // source.len()` (checked by the caller).
        while t + 2 * lanes <= g.len() {
            for (u, a) in acc.iter_mut().enumerate() {
                let gv = unsafe { vload_unaligned::<S, f32>(g.as_ptr().add(t + u * lanes)) };
                let xv = unsafe { vload_unaligned::<S, f32>(source.as_ptr().add(o + t + u * lanes)) };
                *a = gv.mul_add(xv, *a);
            }
            t += 2 * lanes;
        }
        while t + lanes <= g.len() {
            let gv = unsafe { vload_unaligned::<S, f32>(g.as_ptr().add(t)) };
            let xv = unsafe { vload_unaligned::<S, f32>(source.as_ptr().add(o + t)) };
            acc[0] = gv.mul_add(xv, acc[0]);
            t += lanes;
        }
        let tail: f32 = g[t..].iter().zip(&source[o + t..]).map(|(a, b)| a * b).sum();
        *sum += (acc[0] + acc[1]).reduce_add() + tail;
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, `dst` row-major with row stride
/// `dst_rs`; `lhs` and `rhs` given by their column and row strides.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32(
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
pub(crate) fn for_each_chunk<F>(out: &mut [f32], chunk: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Send + Sync,
{
    for_each_chunk_with(out, chunk, || (), |_, i, c| f(i, c));
}

/// [`for_each_chunk`] with a scratch value made by `init` once per rayon task
/// (not per chunk) and lent to every chunk that task runs.
fn for_each_chunk_with<S, I, F>(out: &mut [f32], chunk: usize, init: I, f: F)
where
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize, &mut [f32]) + Send + Sync,
{
    if chunk == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk).enumerate().for_each_init(init, |s, (i, c)| f(s, i, c));
    }
    #[cfg(not(feature = "rayon"))]
    {
        let mut s = init();
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(&mut s, i, c));
    }
}

pub(crate) fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32)
}
