//! shufflenas patch: the forward pass of a depthwise 2-D convolution (one input and one
//! output channel per group) in one kernel that reads the input in whatever layout it
//! has, and writes the output in the same one.
//!
//! `y[n, oy, ox, c] = b[c] + Σ_{ky, kx} w[c, ky, kx] · x[n, oy·s + ky·d − p, ox·s + kx·d − p, c]`
//!
//! 0.21 runs depthwise convolutions through `conv_direct`, which needs channel-stride-1
//! (NHWC) input: a model's NCHW activations were copied to NHWC first (35 copies per
//! OneShot-S+ forward), and the NHWC output went back to NCHW at the next op that needed
//! it. Here each unit computes one output element; units run channels innermost when the
//! input's channel stride is 1 (neighbouring units read neighbouring channels) and
//! columns innermost otherwise (neighbouring units read neighbouring pixels of an NCHW
//! plane), and the output gets the matching memory layout. Products and sums are float32
//! for every element type, the taps added in order: deterministic.

use burn_backend::ops::{ConvOptions, conv::calculate_conv_output_size};
use burn_std::Shape;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use crate::{
    CubeRuntime,
    kernel::utils::address_type,
    ops::{numeric::empty_device_dtype, permute_nchw_to_nhwc},
    tensor::CubeTensor,
};

/// The convolution's geometry along H and W.
#[derive(CubeLaunch, CubeType)]
pub(crate) struct DepthwiseArgs {
    pub stride_0: usize,
    pub stride_1: usize,
    pub dilation_0: usize,
    pub dilation_1: usize,
    pub padding_0: usize,
    pub padding_1: usize,
}

#[cube]
impl DepthwiseArgs {
    /// The input row that output row `oy` reads at kernel row `ky`: negative, or past the
    /// input, in the padding.
    pub fn input_row(&self, oy: usize, ky: usize) -> i32 {
        (oy * self.stride_0 + ky * self.dilation_0) as i32 - self.padding_0 as i32
    }

    /// The input column that output column `ox` reads at kernel column `kx`, as
    /// [`Self::input_row`].
    pub fn input_column(&self, ox: usize, kx: usize) -> i32 {
        (ox * self.stride_1 + kx * self.dilation_1) as i32 - self.padding_1 as i32
    }
}

/// An element of an NHWC view.
#[derive(CubeType)]
pub(crate) struct Position {
    pub n: usize,
    pub y: usize,
    pub x: usize,
    pub c: usize,
}

/// The element of `tensor [N, H, W, C]` that unit `ABSOLUTE_POS` computes: channels
/// innermost with `channels_last` (neighbouring units touch neighbouring channels),
/// columns innermost otherwise (neighbouring pixels of an NCHW plane).
#[cube]
#[allow(unused_assignments)] // the coordinates' initial zeros (set in both branches)
pub(crate) fn unit_position<E: Numeric>(tensor: &Tensor<E>, #[comptime] channels_last: bool) -> Position {
    let height = tensor.shape(1);
    let width = tensor.shape(2);
    let channels = tensor.shape(3);
    let mut position = Position { n: 0, y: 0, x: 0, c: 0 };
    if channels_last {
        position.c = ABSOLUTE_POS % channels;
        let rest = ABSOLUTE_POS / channels;
        position.x = rest % width;
        let rest = rest / width;
        position.y = rest % height;
        position.n = rest / height;
    } else {
        position.x = ABSOLUTE_POS % width;
        let rest = ABSOLUTE_POS / width;
        position.y = rest % height;
        let rest = rest / height;
        position.c = rest % channels;
        position.n = rest / channels;
    }
    position
}

/// Whether the depthwise kernels (forward, data and weight gradients) handle this
/// convolution: 2-D, every group one input and one output channel.
pub(crate) fn is_depthwise<const N_DIM: usize>(weight_shape: &Shape, options: &ConvOptions<N_DIM>) -> bool {
    N_DIM == 2 && options.groups > 1 && weight_shape[0] == options.groups && weight_shape[N_DIM + 1] == 1
}

/// `input [N, H, W, C]`, `weight [C, KH, KW, 1]`, `bias [C]`, `output [N, OH, OW, C]`,
/// all with any strides; unit order channels-innermost with `channels_last`, else
/// columns-innermost (`[N, C, OH, OW]`).
#[cube(launch_unchecked, address_type = "dynamic")]
fn depthwise_kernel<E: Numeric>(
    input: &Tensor<E>,
    weight: &Tensor<E>,
    bias: &ComptimeOption<Tensor<E>>,
    output: &mut Tensor<E>,
    args: DepthwiseArgs,
    #[comptime] channels_last: bool,
    #[define(E)] _dtype: StorageType,
) {
    if ABSOLUTE_POS >= output.len() {
        terminate!();
    }
    let position = unit_position(output, channels_last);
    let n = position.n;
    let oy = position.y;
    let ox = position.x;
    let c = position.c;

    let in_h = input.shape(1) as i32;
    let in_w = input.shape(2) as i32;
    let kernel_0 = weight.shape(1);
    let kernel_1 = weight.shape(2);
    let in_base = n * input.stride(0) + c * input.stride(3);
    let weight_base = c * weight.stride(0);

    let bias: ComptimeOption<E> = bias.map(|bias| bias[c]);
    let mut sum = f32::cast_from(bias.unwrap_or_default());
    for ky in 0..kernel_0 {
        let iy = args.input_row(oy, ky);
        if iy >= 0 && iy < in_h {
            let in_row = in_base + iy as usize * input.stride(1);
            let weight_row = weight_base + ky * weight.stride(1);
            for kx in 0..kernel_1 {
                let ix = args.input_column(ox, kx);
                if ix >= 0 && ix < in_w {
                    sum += f32::cast_from(input[in_row + ix as usize * input.stride(2)])
                        * f32::cast_from(weight[weight_row + kx * weight.stride(2)]);
                }
            }
        }
    }
    let out_index = n * output.stride(0) + oy * output.stride(1) + ox * output.stride(2) + c * output.stride(3);
    output[out_index] = E::cast_from(sum);
}

/// A depthwise convolution, NHWC view: `input [N, H, W, C]`, `weight [C, KH, KW, 1]`,
/// `bias [C]` → `[N, OH, OW, C]`, stored channels-last when the input's channel stride
/// is 1 and as `[N, C, OH, OW]` (a permuted view) otherwise. Takes the convolutions that
/// [`is_depthwise`] accepts.
pub(crate) fn depthwise_forward<R: CubeRuntime, const N_DIM: usize>(
    input: CubeTensor<R>,
    weight: CubeTensor<R>,
    bias: Option<CubeTensor<R>>,
    options: ConvOptions<N_DIM>,
) -> CubeTensor<R> {
    let [batch, in_h, in_w, channels] = [0, 1, 2, 3].map(|d| input.meta.shape()[d]);
    let [kernel_0, kernel_1] = [1, 2].map(|d| weight.meta.shape()[d]);
    let out_h = calculate_conv_output_size(kernel_0, options.stride[0], options.padding[0], options.dilation[0], in_h);
    let out_w = calculate_conv_output_size(kernel_1, options.stride[1], options.padding[1], options.dilation[1], in_w);
    let client = input.client.clone();
    let dtype = input.dtype;
    let channels_last = input.meta.strides()[3] == 1;
    let output = empty_nhwc_view(&input, Shape::new([batch, out_h, out_w, channels]), channels_last);
    let units = output.meta.num_elements();
    let cube_dim = CubeDim::new(&client, units);
    let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
    let args = depthwise_args::<R, N_DIM>(&options);
    // SAFETY: every unit checks its position against the output's length, decodes it
    // into in-range coordinates, and bounds-checks every input position it reads.
    unsafe {
        depthwise_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            address_type!(input, weight, bias, output),
            input.into_tensor_arg(),
            weight.into_tensor_arg(),
            bias.map(|bias| bias.into_tensor_arg()).into(),
            output.clone().into_tensor_arg(),
            args,
            channels_last,
            dtype.into(),
        )
    };
    output
}

/// `options`' geometry for the kernels.
pub(crate) fn depthwise_args<R: Runtime, const N_DIM: usize>(options: &ConvOptions<N_DIM>) -> DepthwiseArgsLaunch<R> {
    DepthwiseArgsLaunch::new(
        options.stride[0],
        options.stride[1],
        options.dilation[0],
        options.dilation[1],
        options.padding[0],
        options.padding[1],
    )
}

/// An uninitialised NHWC view of shape `nhwc_shape` on `like`'s device with its element
/// type, stored channels-last or as `[N, C, H, W]`.
pub(crate) fn empty_nhwc_view<R: CubeRuntime>(
    like: &CubeTensor<R>,
    nhwc_shape: Shape,
    channels_last: bool,
) -> CubeTensor<R> {
    let (client, device, dtype) = (like.client.clone(), like.device.clone(), like.dtype);
    if channels_last {
        return empty_device_dtype(client, device, nhwc_shape, dtype);
    }
    let [batch, height, width, channels] = [0, 1, 2, 3].map(|d| nhwc_shape[d]);
    permute_nchw_to_nhwc(empty_device_dtype(client, device, Shape::new([batch, channels, height, width]), dtype))
}
