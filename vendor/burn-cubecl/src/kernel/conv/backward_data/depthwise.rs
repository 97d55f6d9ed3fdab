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
//! 3×3 kernel), stepping through them without a division in its loops. Products and
//! sums are float32, in a fixed order: deterministic.

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

/// How the output positions along one axis step through the input positions their
/// windows cover: with stride `s` and dilation `d`, the positions `o` whose window
/// reaches a given input position at a tap `k` (`o·s + k·d` fixed) are `d / gcd(s, d)`
/// apart, their taps `s / gcd(s, d)` apart, so no unit divides inside its loops.
#[derive(CubeLaunch, CubeType)]
struct AxisSteps {
    /// `d / gcd(s, d)`.
    output: usize,
    /// `s / gcd(s, d)`.
    tap: usize,
}

impl<R: Runtime> AxisStepsLaunch<R> {
    /// The steps of an axis with this stride and dilation.
    fn of(stride: usize, dilation: usize) -> Self {
        let (mut a, mut b) = (stride, dilation);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        Self::new(dilation / a, stride / a)
    }
}

/// The convolution's geometry and its [`AxisSteps`] along H and W.
#[derive(CubeLaunch, CubeType)]
struct DepthwiseDataGradArgs {
    geometry: DepthwiseArgs,
    steps_0: AxisSteps,
    steps_1: AxisSteps,
}

/// The output positions along one axis whose window covers an input position: `count`
/// of them, the first at `first` and tap `tap`, then every [`AxisSteps`].
#[derive(CubeType)]
struct Window {
    first: usize,
    count: usize,
    tap: usize,
}

/// The [`Window`] of the input position `reach − p` (`reach` = position + padding) on an
/// axis with `out_len` output positions, kernel `kernel`, stride, dilation and steps.
#[cube]
#[allow(unused_assignments)] // the window's initial zeros (set when it is not empty)
fn window(reach: usize, out_len: usize, kernel: usize, stride: usize, dilation: usize, steps: &AxisSteps) -> Window {
    // The output positions `o` with `reach − span ≤ o·s ≤ reach` (`span` the kernel's
    // dilated extent minus one), then the first of them at a whole tap.
    let span = (kernel - 1) * dilation;
    let mut first = 0usize;
    if reach > span {
        first = (reach - span + stride - 1) / stride;
    }
    let end = clamp_max(reach / stride + 1, out_len);
    // Whole taps recur every `steps.output` positions: none in the first that many, none.
    let search_end = clamp_max(first + steps.output, end);
    while first < search_end && (reach - first * stride) % dilation != 0 {
        first += 1;
    }
    let mut window = Window { first, count: 0, tap: 0 };
    if first < search_end {
        window.count = (end - first).div_ceil(steps.output);
        window.tap = (reach - first * stride) / dilation;
    }
    window
}

/// `out_grad [N, OH, OW, C]`, `weight [C, KH, KW, 1]`, `in_grad [N, H, W, C]`, all with
/// any strides; unit order as [`unit_position`].
#[cube(launch_unchecked, address_type = "dynamic")]
fn depthwise_data_grad_kernel<E: Numeric>(
    out_grad: &Tensor<E>,
    weight: &Tensor<E>,
    in_grad: &mut Tensor<E>,
    args: DepthwiseDataGradArgs,
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

    let geometry = &args.geometry;
    let rows = window(
        iy + geometry.padding_0,
        out_grad.shape(1),
        weight.shape(1),
        geometry.stride_0,
        geometry.dilation_0,
        &args.steps_0,
    );
    let columns = window(
        ix + geometry.padding_1,
        out_grad.shape(2),
        weight.shape(2),
        geometry.stride_1,
        geometry.dilation_1,
        &args.steps_1,
    );
    let grad_base = n * out_grad.stride(0) + c * out_grad.stride(3);
    let weight_base = c * weight.stride(0);
    let mut sum = 0f32;
    for row in 0..rows.count {
        let oy = rows.first + row * args.steps_0.output;
        let ky = rows.tap - row * args.steps_0.tap;
        let grad_row = grad_base + oy * out_grad.stride(1);
        let weight_row = weight_base + ky * weight.stride(1);
        for column in 0..columns.count {
            let ox = columns.first + column * args.steps_1.output;
            let kx = columns.tap - column * args.steps_1.tap;
            sum += f32::cast_from(out_grad[grad_row + ox * out_grad.stride(2)])
                * f32::cast_from(weight[weight_row + kx * weight.stride(2)]);
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
            DepthwiseDataGradArgsLaunch::new(
                depthwise_args::<R, N_DIM>(&options),
                AxisStepsLaunch::of(options.stride[0], options.dilation[0]),
                AxisStepsLaunch::of(options.stride[1], options.dilation[1]),
            ),
            channels_last,
            dtype.into(),
        )
    };
    in_grad
}
