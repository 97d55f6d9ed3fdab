//! shufflenas patch: the data gradient of a depthwise 2-D convolution (one input and one
//! output channel per group) in one kernel that reads the output gradient in whatever
//! layout it has, and writes the input gradient in the same one.
//!
//! `dx[n, iy, ix, c] = Σ_{ky, kx} w[c, ky, kx] · dy[n, oy, ox, c]` over the taps with
//! `oy·s + ky·d − p = iy` and `ox·s + kx·d − p = ix` inside the output.
//!
//! 0.21 ran it as a grouped transposed convolution on NCHW tensors (`conv_transpose2d`,
//! autotuned between a direct kernel and col2im), with layout copies on either side.
//! Each unit here computes one input element, in the unit order of the forward kernel
//! (`forward/depthwise.rs`), and visits only the output positions whose window covers
//! it (about `⌈K/s⌉` per axis rather than all `K` taps: a quarter of them for a stride-2
//! 3×3 kernel). Products and sums are float32, in a fixed order: deterministic.

use burn_backend::ops::ConvOptions;
use burn_std::Shape;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use crate::{
    CubeRuntime,
    kernel::{
        conv::forward::depthwise::{DepthwiseArgs, depthwise_args, empty_nhwc_view, unit_position},
        utils::address_type,
    },
    tensor::CubeTensor,
};

/// The first output position `o` whose window reaches input position `reach − p`:
/// the smallest `o ≥ 0` with `o·stride ≥ reach − span` (`span` = the kernel's dilated
/// extent minus one).
#[cube]
fn first_window_position(reach: usize, span: usize, stride: usize) -> usize {
    let mut first = 0usize;
    if reach > span {
        first = (reach - span + stride - 1) / stride;
    }
    first
}

/// `out_grad [N, OH, OW, C]`, `weight [C, KH, KW, 1]`, `in_grad [N, H, W, C]`, all with
/// any strides; unit order as [`unit_position`].
#[cube(launch_unchecked, address_type = "dynamic")]
fn depthwise_data_grad_kernel<E: Numeric>(
    out_grad: &Tensor<E>,
    weight: &Tensor<E>,
    in_grad: &mut Tensor<E>,
    args: DepthwiseArgs,
    #[comptime] channels_last: bool,
    #[define(E)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= in_grad.len() {
        terminate!();
    }
    let position = unit_position(in_grad, channels_last);
    let n = position.n;
    let iy = position.y;
    let ix = position.x;
    let c = position.c;

    let out_h = out_grad.shape(1);
    let out_w = out_grad.shape(2);
    let grad_base = n * out_grad.stride(0) + c * out_grad.stride(3);
    let weight_base = c * weight.stride(0);
    // The output rows that see input row `iy`: `oy·s = iy + p − ky·d` for a tap `ky`.
    let y_reach = iy + args.padding_0;
    let y_span = (weight.shape(1) - 1) * args.dilation_0;
    let oy_start = first_window_position(y_reach, y_span, args.stride_0);
    let oy_end = clamp_max(y_reach / args.stride_0 + 1, out_h);
    let x_reach = ix + args.padding_1;
    let x_span = (weight.shape(2) - 1) * args.dilation_1;
    let ox_start = first_window_position(x_reach, x_span, args.stride_1);
    let ox_end = clamp_max(x_reach / args.stride_1 + 1, out_w);

    let mut sum = 0f32;
    for oy in oy_start..oy_end {
        let y_offset = y_reach - oy * args.stride_0; // ky·d, at most y_span
        if y_offset % args.dilation_0 == 0 {
            let grad_row = grad_base + oy * out_grad.stride(1);
            let weight_row = weight_base + (y_offset / args.dilation_0) * weight.stride(1);
            for ox in ox_start..ox_end {
                let x_offset = x_reach - ox * args.stride_1;
                if x_offset % args.dilation_1 == 0 {
                    sum += f32::cast_from(out_grad[grad_row + ox * out_grad.stride(2)])
                        * f32::cast_from(weight[weight_row + (x_offset / args.dilation_1) * weight.stride(2)]);
                }
            }
        }
    }
    let in_index = n * in_grad.stride(0) + iy * in_grad.stride(1) + ix * in_grad.stride(2) + c * in_grad.stride(3);
    in_grad[in_index] = E::cast_from(sum);
}

/// The data gradient of a depthwise convolution, NHWC views: `out_grad [N, OH, OW, C]`,
/// `weight [C, KH, KW, 1]` → `in_shape [N, H, W, C]`, stored channels-last when the
/// output gradient's channel stride is 1 and as `[N, C, H, W]` otherwise. Takes the
/// convolutions that `forward::depthwise::is_depthwise` accepts.
pub(crate) fn depthwise_data_grad<R: CubeRuntime, const N_DIM: usize>(
    out_grad: CubeTensor<R>,
    weight: CubeTensor<R>,
    in_shape: Shape,
    options: ConvOptions<N_DIM>,
) -> CubeTensor<R> {
    let client = out_grad.client.clone();
    let dtype = out_grad.dtype;
    let channels_last = out_grad.meta.strides()[3] == 1;
    let in_grad = empty_nhwc_view(&out_grad, in_shape, channels_last);
    let units = in_grad.meta.num_elements();
    let cube_dim = CubeDim::new(&client, units);
    let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
    // SAFETY: every unit checks its position against the input gradient's length,
    // decodes it into in-range coordinates, and bounds-checks every output-gradient
    // position it reads.
    unsafe {
        depthwise_data_grad_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            address_type!(out_grad, weight, in_grad),
            out_grad.into_tensor_arg(),
            weight.into_tensor_arg(),
            in_grad.clone().into_tensor_arg(),
            depthwise_args::<R, N_DIM>(&options),
            channels_last,
            dtype.into(),
        )
    };
    in_grad
}
