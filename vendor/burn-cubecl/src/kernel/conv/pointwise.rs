//! shufflenas patch: pointwise convolutions (1×1 kernel, stride 1, no padding, one group)
//! as matmuls that read the activations in place, in either layout.
//!
//! burn-cubecl 0.21 runs every convolution on NHWC views and autotunes it. For a
//! model's NCHW activations (or channel slices of them), which reach it as permuted
//! views with a channel stride of `H·W`, every candidate of the forward, data-gradient
//! and weight-gradient autotunes copied them to NHWC first (`conv_im2col_1x1`'s
//! `reshape_input`, the implicit GEMMs' aligned copies): a pass over the whole
//! activation per convolution. On a GPU each new shape also meant compiling and timing
//! 8, 6 and 7 candidates, most of them large implicit-GEMM kernels. Here a pointwise
//! convolution is a matmul over [`Matrices`], whatever the strategy:
//!
//! | pass | channels-first `[N, C, H·W]` | channels-last `[1, N·H·W, C]` |
//! |---|---|---|
//! | forward | `W [1, C_out, C_in] · x` | `x · Wᵀ [1, C_in, C_out]` |
//! | data gradient | `Wᵀ · dy` | `dy · W` |
//! | weight gradient | `Σ_n dy_n · x_nᵀ` or as channels-last | `dyᵀ · x` |
//!
//! (see [`conv_1x1_weight_grad`] for the weight gradient's choice). Each function
//! returns `None` for other convolutions and layouts, which then take 0.21's paths.

use burn_backend::ops::ConvOptions;
use burn_std::{Metadata, Shape};
use cubek::{convolution::components::ConvSetupError, reduce::components::instructions::ReduceOperationConfig};

use crate::{
    CubeRuntime,
    kernel::{
        AddOp, into_contiguous, launch_binop,
        matmul::{MatmulStrategy, matmul},
        reduce::reduce_dim,
    },
    ops::{permute_nchw_to_nhwc, reshape, swap_dims},
    tensor::CubeTensor,
};

/// Whether a convolution with this NHWC-view weight shape `[C_out, KH, KW, C_in]` is
/// pointwise: 2-D, 1×1, stride 1, no padding, one group.
fn is_pointwise<const N: usize>(weight_shape: &[usize], options: &ConvOptions<N>) -> bool {
    N == 2
        && options.groups == 1
        && options.stride.iter().all(|&s| s == 1)
        && options.padding.iter().all(|&p| p == 0)
        && weight_shape[1] == 1
        && weight_shape[2] == 1
}

/// An NHWC view `[N, H, W, C]` as matrices that a matmul reads in place.
enum Matrices<R: CubeRuntime> {
    /// `[N, C, H·W]`: each item a row-major `[C, H·W]` matrix (NCHW storage, or a channel
    /// slice of it).
    ChannelsFirst(CubeTensor<R>),
    /// `[1, N·H·W, C]`: one row per pixel (contiguous NHWC storage, and any contiguous
    /// `[N, C, 1, 1]` tensor).
    ChannelsLast(CubeTensor<R>),
}

impl<R: CubeRuntime> Matrices<R> {
    /// `tensor`'s matrices, `None` for any other storage.
    fn of(tensor: &CubeTensor<R>) -> Option<Self> {
        let (shape, strides) = (tensor.meta.shape(), tensor.meta.strides());
        if shape.len() != 4 {
            return None;
        }
        let [batch, height, width, channels] = [shape[0], shape[1], shape[2], shape[3]];
        let plane = height * width;
        let mut matrices = tensor.clone();
        if strides[3] != 1 && strides[3] == plane && strides[2] == 1 && strides[1] == width {
            *matrices.meta = Metadata::new([batch, channels, plane], [strides[0], plane, 1]);
            return Some(Self::ChannelsFirst(matrices));
        }
        // Pixel `(n, y, x)` at `((n·H + y)·W + x)·C`: contiguous NHWC, where the strides
        // of size-1 axes are free (so any contiguous `[N, C, 1, 1]`).
        let steps = [(batch, strides[0], plane * channels), (height, strides[1], width * channels), (width, strides[2], channels)];
        if strides[3] != 1 || !steps.iter().all(|&(size, stride, expected)| size == 1 || stride == expected) {
            return None;
        }
        Some(Self::ChannelsLast(contiguous_pixel_rows(matrices)))
    }

    /// These matrices as pixel rows `[1, N·H·W, C]`: in place when stored channels-last,
    /// else from a channels-last copy of `tensor`, the NHWC view they were read from.
    fn into_pixel_rows(self, tensor: &CubeTensor<R>) -> CubeTensor<R> {
        match self {
            Self::ChannelsLast(rows) => rows,
            Self::ChannelsFirst(_) => contiguous_pixel_rows(into_contiguous(tensor.clone())),
        }
    }
}

/// A contiguous NHWC tensor `[N, H, W, C]` as its pixel rows `[1, N·H·W, C]`.
fn contiguous_pixel_rows<R: CubeRuntime>(mut tensor: CubeTensor<R>) -> CubeTensor<R> {
    let shape = tensor.meta.shape();
    let (rows, channels) = (shape[0] * shape[1] * shape[2], shape[3]);
    *tensor.meta = Metadata::new([1, rows, channels], [rows * channels, channels, 1]);
    tensor
}

/// The NHWC-view weight `[C_out, 1, 1, C_in]` as the matrix `[1, C_out, C_in]`, or its
/// transpose `[1, C_in, C_out]` (a view either way).
fn weight_matrix<R: CubeRuntime>(weight: &CubeTensor<R>, transposed: bool) -> CubeTensor<R> {
    let [out_channels, in_channels] = [weight.meta.shape()[0], weight.meta.shape()[3]];
    let [out_stride, in_stride] = [weight.meta.strides()[0], weight.meta.strides()[3]];
    let batch_stride = out_channels * out_stride;
    let mut matrix = weight.clone();
    *matrix.meta = match transposed {
        false => Metadata::new([1, out_channels, in_channels], [batch_stride, out_stride, in_stride]),
        true => Metadata::new([1, in_channels, out_channels], [batch_stride, in_stride, out_stride]),
    };
    matrix
}

/// A matmul's contiguous result as the NHWC view `[N, H, W, C]` (`N`, `H`, `W` from
/// `like`'s NHWC shape): `channels_first` results are `[N, C, H·W]`, others `[1, N·H·W,
/// C]`.
fn nhwc_view<R: CubeRuntime>(result: CubeTensor<R>, like: &Shape, channels_first: bool) -> CubeTensor<R> {
    let [batch, height, width] = [like[0], like[1], like[2]];
    let channels = result.meta.shape()[if channels_first { 1 } else { 2 }];
    match channels_first {
        true => permute_nchw_to_nhwc(reshape(result, Shape::new([batch, channels, height, width]))),
        false => reshape(result, Shape::new([batch, height, width, channels])),
    }
}

/// `lhs · rhs` (batched, broadcasting a batch of 1), autotuned, in `lhs`'s element type.
fn run_matmul<R: CubeRuntime>(lhs: CubeTensor<R>, rhs: CubeTensor<R>) -> Result<CubeTensor<R>, ConvSetupError> {
    let dtype = lhs.dtype;
    Ok(matmul(lhs, rhs, None, MatmulStrategy::default(), dtype)?)
}

/// The forward pass: NHWC-view `input [N, H, W, C_in]`, `weight [C_out, 1, 1, C_in]`,
/// `bias [C_out]` → `[N, H, W, C_out]`, stored in the input's layout.
pub(crate) fn conv_1x1<R: CubeRuntime, const N: usize>(
    input: &CubeTensor<R>,
    weight: &CubeTensor<R>,
    bias: &Option<CubeTensor<R>>,
    options: &ConvOptions<N>,
) -> Result<Option<CubeTensor<R>>, ConvSetupError> {
    if !is_pointwise(weight.meta.shape(), options) || weight.meta.shape()[3] != input.meta.shape()[3] {
        return Ok(None);
    }
    let (out, channels_first) = match Matrices::of(input) {
        None => return Ok(None),
        Some(Matrices::ChannelsFirst(x)) => (run_matmul(weight_matrix(weight, false), x)?, true),
        Some(Matrices::ChannelsLast(x)) => (run_matmul(x, weight_matrix(weight, true))?, false),
    };
    let out = match bias {
        None => out,
        Some(bias) => {
            let out_channels = bias.meta.shape()[0];
            let shape = if channels_first { [1, out_channels, 1] } else { [1, 1, out_channels] };
            launch_binop::<R, AddOp>(out, reshape(bias.clone(), Shape::new(shape)))
        }
    };
    Ok(Some(nhwc_view(out, input.meta.shape(), channels_first)))
}

/// The data gradient: NHWC-view `out_grad [N, H, W, C_out]`, `weight [C_out, 1, 1, C_in]`
/// → `[N, H, W, C_in]`, stored in the output gradient's layout.
pub(crate) fn conv_1x1_data_grad<R: CubeRuntime, const N: usize>(
    out_grad: &CubeTensor<R>,
    weight: &CubeTensor<R>,
    options: &ConvOptions<N>,
) -> Result<Option<CubeTensor<R>>, ConvSetupError> {
    if !is_pointwise(weight.meta.shape(), options) || weight.meta.shape()[0] != out_grad.meta.shape()[3] {
        return Ok(None);
    }
    let (in_grad, channels_first) = match Matrices::of(out_grad) {
        None => return Ok(None),
        Some(Matrices::ChannelsFirst(dy)) => (run_matmul(weight_matrix(weight, true), dy)?, true),
        Some(Matrices::ChannelsLast(dy)) => (run_matmul(dy, weight_matrix(weight, false))?, false),
    };
    Ok(Some(nhwc_view(in_grad, out_grad.meta.shape(), channels_first)))
}

/// The weight gradient: NHWC-view `input [N, H, W, C_in]` and `out_grad [N, H, W,
/// C_out]` → the NHWC view `[C_out, 1, 1, C_in]` of a contiguous `[C_out, C_in, 1, 1]`.
///
/// The sum runs over `N·H·W`. When both are stored channels-first and the `C_out × C_in`
/// products per item are no larger than the item's activations (`C_out·C_in ≤
/// H·W·(C_in + C_out)`: the early, wide planes), one batched matmul `dy [N, C_out, H·W]
/// · xᵀ [N, H·W, C_in]` reads both in place, and a sum over the batch follows; the batch
/// keeps a GPU's cores busy although the result is small. Otherwise one matmul sums over
/// all pixels at once, `dyᵀ [1, C_out, N·H·W] · x [1, N·H·W, C_in]`, on pixel rows read
/// in place when stored channels-last and copied so otherwise (small planes with many
/// channels, where the per-item products would outweigh the activations).
pub(crate) fn conv_1x1_weight_grad<R: CubeRuntime, const N: usize>(
    input: &CubeTensor<R>,
    out_grad: &CubeTensor<R>,
    weight_shape: &Shape,
    options: &ConvOptions<N>,
) -> Result<Option<CubeTensor<R>>, ConvSetupError> {
    let [in_channels, out_channels] = [input.meta.shape()[3], out_grad.meta.shape()[3]];
    if !is_pointwise(weight_shape, options) || weight_shape[0] != out_channels || weight_shape[3] != in_channels {
        return Ok(None);
    }
    let plane = input.meta.shape()[1] * input.meta.shape()[2];
    let per_item_fits = out_channels * in_channels <= plane * (in_channels + out_channels);
    let (Some(input_matrices), Some(grad_matrices)) = (Matrices::of(input), Matrices::of(out_grad)) else {
        return Ok(None);
    };
    let weight_grad = match (input_matrices, grad_matrices) {
        (Matrices::ChannelsFirst(x), Matrices::ChannelsFirst(dy)) if per_item_fits => {
            let per_item = run_matmul(dy, swap_dims(x, 1, 2))?; // [N, C_out, C_in]
            reduce_dim(per_item, None, 0, Default::default(), ReduceOperationConfig::Sum)
                .map_err(|_| ConvSetupError::Unknown)? // fails only for an axis beyond the rank
        }
        (x, dy) => {
            let grad_rows = dy.into_pixel_rows(out_grad);
            run_matmul(swap_dims(grad_rows, 1, 2), x.into_pixel_rows(input))?
        }
    }; // [1, C_out, C_in]
    let weight_grad = reshape(weight_grad, Shape::new([out_channels, in_channels, 1, 1]));
    Ok(Some(permute_nchw_to_nhwc(weight_grad)))
}
