//! shufflenas patch: a pointwise convolution's bias as its own addition, which the
//! fusion optimiser then fuses with the element-wise operations that follow it.
//!
//! The patched burn-cubecl runs a pointwise convolution (1×1, stride 1, no padding, one
//! group) as a matmul and adds its bias in a separate launch: a read and a write of the
//! whole output, followed by another pass for the activation after it. Registered here
//! as a convolution without bias and an ordinary broadcast addition of a `[1, C, 1, 1]`
//! bias, the addition joins the activation's fused kernel: one pass fewer per biased
//! pointwise convolution (every one of a network whose batch norms are folded into its
//! convolutions). Other convolutions keep their bias inside the convolution's kernel.

use crate::{Fusion, FusionBackend};
use burn_backend::{
    Shape,
    ops::{ConvOptions, FloatTensorOps},
    tensor::FloatTensor,
};

/// Whether a convolution with `weight_shape` `[C_out, C_in, KH, KW]` is pointwise: 1×1,
/// stride 1, no padding, one group.
pub(crate) fn is_pointwise(weight_shape: &Shape, options: &ConvOptions<2>) -> bool {
    weight_shape.num_dims() == 4
        && weight_shape[2] == 1
        && weight_shape[3] == 1
        && options.groups == 1
        && options.stride == [1, 1]
        && options.padding == [0, 0]
}

/// `output [N, C, H, W] + bias [C]`, broadcast over the batch and the plane.
pub(crate) fn add_channel_bias<B: FusionBackend>(
    output: FloatTensor<Fusion<B>>,
    bias: FloatTensor<Fusion<B>>,
) -> FloatTensor<Fusion<B>> {
    let channels = bias.shape[0];
    let bias = Fusion::<B>::float_reshape(bias, Shape::new([1, channels, 1, 1]));
    Fusion::<B>::float_add(output, bias)
}
