//! shufflenas patch: the weight gradient of a depthwise 2-D convolution (one input and
//! one output channel per group) in two launches, instead of the grouped fallback's
//! loop of one slice, convolution and slice-assign per channel (thousands of launches
//! per training step of a mobile CNN).
//!
//! `dW[c, ky, kx] = Σ_{n, oy, ox} dy[n, oy, ox, c] · x[n, oy·s + ky·d − p, ox·s + kx·d − p, c]`
//!
//! 1. `partial_kernel` reads the activations in place, in the layout they have:
//!    - channels-last (`rows_sum`): one unit per (row chunk, tap, channel),
//!      channels innermost so neighbouring units read neighbouring channels; each sums
//!      its tap over `ROWS_PER_CHUNK` output rows `(n, oy)` in order, into
//!      `[chunks, taps, C]`;
//!    - any other layout (`column_sum`; a model's NCHW activations and
//!      channel slices of them): one unit per (channel, tap, chunk of output rows,
//!      output column), the column innermost so neighbouring units read neighbouring
//!      pixels of a plane; each sums its tap down its column over the chunk's rows
//!      `(n, oy)` in order, into `[C, taps, chunks·OW]`.
//! 2. `sum_kernel`: one unit per weight element, summing its partial sums in order.
//!
//! Products and sums are float32 whatever the element type (a half-precision sum over
//! a batch-256 plane would lose the gradient), cast once at the end. The order of every
//! sum is fixed: deterministic. Nothing is copied to another layout.

use burn_backend::{DType, ops::ConvOptions};
use burn_std::Shape;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use crate::{
    CubeRuntime,
    kernel::{
        conv::forward::depthwise::{DepthwiseArgs, depthwise_args},
        utils::address_type,
    },
    ops::{
        numeric::{empty_device_dtype, zeros},
        permute,
    },
    tensor::CubeTensor,
};

/// Output rows `(n, oy)` per partial sum, channels-last.
const ROWS_PER_CHUNK: usize = 8;
/// Output rows each unit sums at least (one column of each), other layouts.
const MIN_VALUES_PER_UNIT: usize = 256;
/// Units per (channel, tap) at most, other layouts: the partial sums stay small and
/// `sum_kernel`'s loops short.
const MAX_UNITS_PER_TAP: usize = 1024;

/// The convolution's geometry, and how the output rows are split into chunks.
#[derive(CubeLaunch, CubeType)]
struct DepthwiseGradArgs {
    geometry: DepthwiseArgs,
    /// The kernel's width: tap `t` is `(t / kernel_1, t % kernel_1)`.
    kernel_1: usize,
    rows_per_chunk: usize,
}

/// One partial sum per unit into `partial` (contiguous float32), from `input [N, H, W,
/// C]` and `out_grad [N, OH, OW, C]`: with `channels_last` (channel stride 1) the
/// per-row sum into `[chunks, KH·KW, C]`, otherwise the per-column one into `[C, KH·KW,
/// chunks·OW]` (any strides).
#[cube(launch_unchecked, address_type = "dynamic")]
#[allow(unused_assignments)] // the sum's initial zero (set in both branches)
fn partial_kernel<E: Numeric>(
    input: &Tensor<E>,
    out_grad: &Tensor<E>,
    partial: &mut Tensor<f32>,
    args: DepthwiseGradArgs,
    #[comptime] channels_last: bool,
    #[define(E)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= partial.len() {
        terminate!();
    }
    let mut sum = 0f32;
    if channels_last {
        sum = rows_sum(input, out_grad, &args, partial.shape(1), partial.shape(2));
    } else {
        sum = column_sum(input, out_grad, &args, partial.shape(1), partial.shape(2));
    }
    partial[ABSOLUTE_POS] = sum;
}

/// Unit `ABSOLUTE_POS` of `[chunks, taps, C]`: its tap's products summed over the
/// chunk's `args.rows_per_chunk` output rows `(n, oy)`, each row's columns in order.
#[cube]
fn rows_sum<E: Numeric>(
    input: &Tensor<E>,
    out_grad: &Tensor<E>,
    args: &DepthwiseGradArgs,
    taps: usize,
    channels: usize,
) -> f32 {
    let c = ABSOLUTE_POS % channels;
    let rest = ABSOLUTE_POS / channels;
    let tap = rest % taps;
    let chunk = rest / taps;
    let ky = tap / args.kernel_1;
    let kx = tap % args.kernel_1;

    let out_h = out_grad.shape(1);
    let out_w = out_grad.shape(2);
    let in_h = input.shape(1) as i32;
    let in_w = input.shape(2) as i32;
    let rows = out_grad.shape(0) * out_h;
    let row_start = chunk * args.rows_per_chunk;
    let row_end = clamp_max(row_start + args.rows_per_chunk, rows);

    let mut sum = 0f32;
    for row in row_start..row_end {
        let n = row / out_h;
        let oy = row % out_h;
        let iy = args.geometry.input_row(oy, ky);
        if iy >= 0 && iy < in_h {
            let in_base = n * input.stride(0) + iy as usize * input.stride(1) + c;
            let grad_base = n * out_grad.stride(0) + oy * out_grad.stride(1) + c;
            for ox in 0..out_w {
                let ix = args.geometry.input_column(ox, kx);
                if ix >= 0 && ix < in_w {
                    sum += f32::cast_from(out_grad[grad_base + ox * out_grad.stride(2)])
                        * f32::cast_from(input[in_base + ix as usize * input.stride(2)]);
                }
            }
        }
    }
    sum
}

/// Unit `ABSOLUTE_POS` of `[C, taps, units]`, its unit `chunk · OW + ox`: its tap's
/// products summed down output column `ox` over the chunk's `args.rows_per_chunk`
/// output rows `(n, oy)` in order.
#[cube]
fn column_sum<E: Numeric>(
    input: &Tensor<E>,
    out_grad: &Tensor<E>,
    args: &DepthwiseGradArgs,
    taps: usize,
    units: usize,
) -> f32 {
    let out_h = out_grad.shape(1);
    let out_w = out_grad.shape(2);
    let unit = ABSOLUTE_POS % units;
    let rest = ABSOLUTE_POS / units;
    let tap = rest % taps;
    let c = rest / taps;
    let ox = unit % out_w;
    let chunk = unit / out_w;
    let ix = args.geometry.input_column(ox, tap % args.kernel_1);
    // Output row `oy` reads input row `oy·s + y_offset`.
    let y_offset = args.geometry.input_row(0, tap / args.kernel_1);
    let in_h = input.shape(1) as i32;

    let mut sum = 0f32;
    if ix >= 0 && ix < input.shape(2) as i32 {
        let in_column = ix as usize * input.stride(2) + c * input.stride(3);
        let grad_column = ox * out_grad.stride(2) + c * out_grad.stride(3);
        let row_start = chunk * args.rows_per_chunk;
        let row_end = clamp_max(row_start + args.rows_per_chunk, out_grad.shape(0) * out_h);
        let mut n = row_start / out_h;
        let mut oy = row_start % out_h;
        for _ in row_start..row_end {
            let iy = (oy * args.geometry.stride_0) as i32 + y_offset;
            if iy >= 0 && iy < in_h {
                let grad = out_grad[n * out_grad.stride(0) + oy * out_grad.stride(1) + grad_column];
                let value = input[n * input.stride(0) + iy as usize * input.stride(1) + in_column];
                sum += f32::cast_from(grad) * f32::cast_from(value);
            }
            oy += 1;
            if oy == out_h {
                oy = 0;
                n += 1;
            }
        }
    }
    sum
}

/// `partial [chunks, taps, C]` (float32, any strides) → `weight_grad [C, taps]`
/// (contiguous, `E`), each weight element the sum of its chunks in order. Unit
/// `tap · C + c`.
#[cube(launch_unchecked, address_type = "dynamic")]
fn sum_kernel<E: Numeric>(partial: &Tensor<f32>, weight_grad: &mut Tensor<E>, #[define(E)] _dtype: StorageType) {
    if ABSOLUTE_POS >= weight_grad.len() {
        terminate!();
    }
    let chunks = partial.shape(0);
    let taps = partial.shape(1);
    let channels = partial.shape(2);
    let tap = ABSOLUTE_POS / channels;
    let c = ABSOLUTE_POS % channels;
    let base = tap * partial.stride(1) + c * partial.stride(2);
    let mut sum = 0f32;
    for chunk in 0..chunks {
        sum += partial[base + chunk * partial.stride(0)];
    }
    weight_grad[c * taps + tap] = E::cast_from(sum);
}

/// The weight gradient of a depthwise convolution, NHWC views: `input [N, H, W, C]`,
/// `output_grad [N, OH, OW, C]`, both with any strides → `[C, KH, KW, 1]`
/// (`weight_shape`). Takes the convolutions that `forward::depthwise::is_depthwise`
/// accepts.
pub(crate) fn depthwise_weight_grad<R: CubeRuntime, const N_DIM: usize>(
    input: CubeTensor<R>,
    output_grad: CubeTensor<R>,
    weight_shape: Shape,
    options: ConvOptions<N_DIM>,
) -> CubeTensor<R> {
    let [batch, out_h, out_w] = [0, 1, 2].map(|d| output_grad.meta.shape()[d]);
    let (channels, kernel_0, kernel_1) = (weight_shape[0], weight_shape[1], weight_shape[2]);
    let taps = kernel_0 * kernel_1;
    let channels_last = input.meta.strides()[3] == 1 && output_grad.meta.strides()[3] == 1;
    let client = input.client.clone();
    let device = input.device.clone();
    let dtype = input.dtype;
    if output_grad.meta.num_elements() == 0 {
        return zeros(device, weight_shape, dtype);
    }
    let rows = batch * out_h;
    // Channels-last: chunks of `ROWS_PER_CHUNK` rows. Otherwise one unit per (column,
    // chunk of rows): at least `MIN_VALUES_PER_UNIT` rows each, at most
    // `MAX_UNITS_PER_TAP` units per (channel, tap) where the rows allow.
    let (rows_per_chunk, partial_shape) = if channels_last {
        (ROWS_PER_CHUNK, [rows.div_ceil(ROWS_PER_CHUNK).max(1), taps, channels])
    } else {
        let chunks = rows.div_ceil(MIN_VALUES_PER_UNIT).clamp(1, (MAX_UNITS_PER_TAP / out_w).max(1));
        let rows_per_chunk = rows.div_ceil(chunks);
        (rows_per_chunk, [channels, taps, rows.div_ceil(rows_per_chunk) * out_w])
    };
    let args = DepthwiseGradArgsLaunch::new(depthwise_args::<R, N_DIM>(&options), kernel_1, rows_per_chunk);
    let partial = empty_device_dtype(client.clone(), device.clone(), Shape::new(partial_shape), DType::F32);
    let units = partial.meta.num_elements();
    let cube_dim = CubeDim::new(&client, units);
    let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
    // SAFETY: every unit checks its position against `partial`'s length and writes its
    // own slot; every read is bounds-checked against the shapes it indexes, through
    // the tensors' own strides.
    unsafe {
        partial_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            address_type!(input, output_grad, partial),
            input.into_tensor_arg(),
            output_grad.into_tensor_arg(),
            partial.clone().into_tensor_arg(),
            args,
            channels_last,
            dtype.into(),
        )
    };
    // Both as `[chunks, taps, C]`, a view for the per-column one.
    let partial = if channels_last { partial } else { permute(partial, &[2, 1, 0]) };

    let weight_grad = empty_device_dtype(client.clone(), device, weight_shape, dtype);
    let units = weight_grad.meta.num_elements();
    let cube_dim = CubeDim::new(&client, units);
    let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
    // SAFETY: as above; `partial` holds `chunks · taps · C` elements.
    unsafe {
        sum_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            address_type!(partial, weight_grad),
            partial.into_tensor_arg(),
            weight_grad.clone().into_tensor_arg(),
            dtype.into(),
        )
    };
    weight_grad
}
