//! shufflenas patch: the weight gradient of a depthwise 2-D convolution (one input and
//! one output channel per group) in two launches, instead of the grouped fallback's
//! loop of one slice, convolution and slice-assign per channel (thousands of launches
//! per training step of a mobile CNN).
//!
//! `dW[c, ky, kx] = Σ_{n, oy, ox} dy[n, oy, ox, c] · x[n, oy·s + ky·d − p, ox·s + kx·d − p, c]`
//!
//! 1. `partial_kernel`: one unit per (row chunk, tap, channel), channels innermost so
//!    neighbouring units read neighbouring channels of the NHWC tensors; each sums its
//!    tap over `ROWS_PER_CHUNK` output rows `(n, oy)` in order, into `[chunks, taps, C]`.
//! 2. `sum_kernel`: one unit per weight element (channels innermost again), summing its
//!    chunks in order.
//!
//! Products and sums are float32 whatever the element type (a half-precision sum over
//! a batch-256 plane would lose the gradient), cast once at the end. The order of every
//! sum is fixed, so the result does not depend on the launch geometry: deterministic.

use burn_backend::{DType, ops::ConvOptions};
use burn_std::Shape;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use crate::{
    CubeRuntime,
    kernel::{into_contiguous, utils::address_type},
    ops::numeric::empty_device_dtype,
    tensor::CubeTensor,
};

/// Output rows `(n, oy)` per partial sum.
const ROWS_PER_CHUNK: usize = 8;

#[derive(CubeLaunch, CubeType)]
struct DepthwiseGradArgs {
    stride_0: usize,
    stride_1: usize,
    dilation_0: usize,
    dilation_1: usize,
    padding_0: usize,
    padding_1: usize,
    kernel_1: usize,
    rows_per_chunk: usize,
}

/// `input [N, H, W, C]`, `out_grad [N, OH, OW, C]` (channel stride 1), `partial
/// [chunks, KH·KW, C]` contiguous float32.
#[cube(launch_unchecked, address_type = "dynamic")]
fn partial_kernel<E: Numeric>(
    input: &Tensor<E>,
    out_grad: &Tensor<E>,
    partial: &mut Tensor<f32>,
    args: DepthwiseGradArgs,
    #[define(E)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= partial.len() {
        terminate!();
    }
    let channels = partial.shape(2);
    let taps = partial.shape(1);
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
        let iy = (oy * args.stride_0 + ky * args.dilation_0) as i32 - args.padding_0 as i32;
        if iy >= 0 && iy < in_h {
            let in_base = n * input.stride(0) + iy as usize * input.stride(1) + c;
            let grad_base = n * out_grad.stride(0) + oy * out_grad.stride(1) + c;
            for ox in 0..out_w {
                let ix = (ox * args.stride_1 + kx * args.dilation_1) as i32 - args.padding_1 as i32;
                if ix >= 0 && ix < in_w {
                    sum += f32::cast_from(out_grad[grad_base + ox * out_grad.stride(2)])
                        * f32::cast_from(input[in_base + ix as usize * input.stride(2)]);
                }
            }
        }
    }
    partial[ABSOLUTE_POS] = sum;
}

/// `partial [chunks, taps, C]` (float32) → `weight_grad [C, taps]` (contiguous, `E`).
/// Unit `tap · C + c`, so neighbouring units read neighbouring partial sums.
#[cube(launch_unchecked, address_type = "dynamic")]
fn sum_kernel<E: Numeric>(
    partial: &Tensor<f32>,
    weight_grad: &mut Tensor<E>,
    #[define(E)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= weight_grad.len() {
        terminate!();
    }
    let chunks = partial.shape(0);
    let taps = partial.shape(1);
    let channels = partial.shape(2);
    let tap = ABSOLUTE_POS / channels;
    let c = ABSOLUTE_POS % channels;
    let mut sum = 0f32;
    for chunk in 0..chunks {
        sum += partial[(chunk * taps + tap) * channels + c];
    }
    weight_grad[c * taps + tap] = E::cast_from(sum);
}

/// Whether [`depthwise_weight_grad`] handles this convolution: 2-D, every group one
/// input and one output channel.
pub(crate) fn is_depthwise<const N_DIM: usize>(weight_shape: &Shape, options: &ConvOptions<N_DIM>) -> bool {
    N_DIM == 2 && options.groups > 1 && weight_shape[0] == options.groups && weight_shape[N_DIM + 1] == 1
}

/// The weight gradient of a depthwise convolution, NHWC: `input [N, H, W, C]`,
/// `output_grad [N, OH, OW, C]` → `[C, KH, KW, 1]` (`weight_shape`).
pub(crate) fn depthwise_weight_grad<R: CubeRuntime, const N_DIM: usize>(
    input: CubeTensor<R>,
    output_grad: CubeTensor<R>,
    weight_shape: Shape,
    options: ConvOptions<N_DIM>,
) -> CubeTensor<R> {
    // Channels innermost in memory, so that neighbouring units read neighbouring
    // addresses (the NCHW activations of a model arrive as permuted views).
    let channels_last = |t: CubeTensor<R>| if t.meta.strides()[3] == 1 { t } else { into_contiguous(t) };
    let (input, output_grad) = (channels_last(input), channels_last(output_grad));
    let [batch, out_h] = [output_grad.meta.shape()[0], output_grad.meta.shape()[1]];
    let (channels, kernel_0, kernel_1) = (weight_shape[0], weight_shape[1], weight_shape[2]);
    let taps = kernel_0 * kernel_1;
    let chunks = (batch * out_h).div_ceil(ROWS_PER_CHUNK).max(1);
    let client = input.client.clone();
    let device = input.device.clone();
    let dtype = input.dtype;

    let partial = empty_device_dtype(client.clone(), device.clone(), Shape::new([chunks, taps, channels]), DType::F32);
    let units = partial.meta.num_elements();
    let cube_dim = CubeDim::new(&client, units);
    let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
    let args = DepthwiseGradArgsLaunch::new(
        options.stride[0],
        options.stride[1],
        options.dilation[0],
        options.dilation[1],
        options.padding[0],
        options.padding[1],
        kernel_1,
        ROWS_PER_CHUNK,
    );
    // SAFETY: every unit checks its position against `partial`'s length, and every read
    // is bounds-checked against the shapes it indexes.
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
            dtype.into(),
        )
    };

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
