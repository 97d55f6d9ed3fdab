//! shufflenas patch: the per-channel sums of a batch norm (`ModuleOps::batch_norm_sums`
//! of the patched burn-backend) in one pass over the activation.
//!
//! `partial_sums_kernel` gives each (channel, unit) pair `VALUES_PER_UNIT` of the
//! channel's values, strided by the number of units per channel, so that neighbouring
//! units read neighbouring addresses: pixels of an NCHW plane, or channels of an NHWC
//! one. Each unit sums `x − shift` and its square (forward), or `w` and `w·(x − shift)`
//! (backward, `w` the output gradient), in float32, into two `[C, units]` tensors; a
//! sum over their last dim (burn-cubecl's reduction) finishes. The composed default took a
//! subtraction, a product and two reductions per sum, each a pass over the activation.

use burn_backend::DType;
use burn_std::Shape;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

use crate::{
    CubeRuntime,
    kernel::{into_contiguous, utils::address_type},
    ops::numeric::empty_device_dtype,
    tensor::CubeTensor,
};

/// Values of its channel each unit sums.
const VALUES_PER_UNIT: usize = 64;

/// `x [N, C, H, W]` and `weights` (same shape), each plane's pixels at one stride
/// (`stride(2) = W·stride(3)`), `shift [C]`; `first` and `second` `[C, units]`
/// contiguous. Unit order channels innermost with `channels_last`, else the channel's
/// units innermost. Unit `u` of a channel sums the channel's values `u, u + units, …`
/// in (item, pixel) order, stepping the pair without a division per value.
#[cube(launch_unchecked, address_type = "dynamic")]
#[allow(unused_assignments)] // the coordinates' initial zeros (set in both branches)
fn partial_sums_kernel<E: Numeric>(
    x: &Tensor<E>,
    weights: &Tensor<E>,
    shift: &Tensor<f32>,
    first: &mut Tensor<f32>,
    second: &mut Tensor<f32>,
    #[comptime] weighted: bool,
    #[comptime] channels_last: bool,
    #[define(E)] _dtype: StorageType,
) {
    let channels = first.shape(0);
    let units = first.shape(1);
    if ABSOLUTE_POS >= channels * units {
        terminate!();
    }
    let mut c = 0;
    let mut unit = 0;
    if channels_last {
        c = ABSOLUTE_POS % channels;
        unit = ABSOLUTE_POS / channels;
    } else {
        c = ABSOLUTE_POS / units;
        unit = ABSOLUTE_POS % units;
    }
    let items = x.shape(0);
    let plane = x.shape(2) * x.shape(3);
    let (step_items, step_pixels) = (units / plane, units % plane);
    let mut n = unit / plane;
    let mut pixel = unit % plane;
    let k = shift[c * shift.stride(0)];
    let x_channel = c * x.stride(1);
    let weights_channel = c * weights.stride(1);

    let mut sum_first = 0f32;
    let mut sum_second = 0f32;
    while n < items {
        let value = f32::cast_from(x[n * x.stride(0) + x_channel + pixel * x.stride(3)]) - k;
        if weighted {
            let weight = f32::cast_from(weights[n * weights.stride(0) + weights_channel + pixel * weights.stride(3)]);
            sum_first += weight;
            sum_second += weight * value;
        } else {
            sum_first += value;
            sum_second += value * value;
        }
        n += step_items;
        pixel += step_pixels;
        if pixel >= plane {
            pixel -= plane;
            n += 1;
        }
    }
    first[c * units + unit] = sum_first;
    second[c * units + unit] = sum_second;
}

/// Whether [`batch_norm_partial_sums`] takes these inputs: a non-empty `x [N, C, H, W]`,
/// float32 or half precision (the sums are float32), and `weights`, if any, of the same
/// type.
pub(crate) fn takes_batch_norm_sums<R: CubeRuntime>(x: &CubeTensor<R>, weights: Option<&CubeTensor<R>>) -> bool {
    x.meta.num_dims() == 4
        && x.meta.num_elements() > 0
        && matches!(x.dtype, DType::F32 | DType::F16 | DType::BF16)
        && weights.is_none_or(|weights| weights.dtype == x.dtype)
}

/// Whether a plane's pixels sit at one stride (`stride(2) = W·stride(3)`): NCHW, NHWC
/// and channel slices of either.
fn pixels_at_one_stride<R: CubeRuntime>(t: &CubeTensor<R>) -> bool {
    let (shape, strides) = (t.meta.shape(), t.meta.strides());
    shape[2] <= 1 || strides[2] == shape[3] * strides[3]
}

/// The per-unit sums (float32, each `[C, units]`) of `x [N, C, H, W]` against `shift
/// [C]` (float32): `x − shift` and its square, or with `weights` (`x`'s shape)
/// `weights` and `weights · (x − shift)`. Summing each over its last dim gives the two
/// per-channel sums.
pub(crate) fn batch_norm_partial_sums<R: CubeRuntime>(
    x: CubeTensor<R>,
    shift: CubeTensor<R>,
    weights: Option<CubeTensor<R>>,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let one_stride = |t: CubeTensor<R>| if pixels_at_one_stride(&t) { t } else { into_contiguous(t) };
    let x = one_stride(x);
    let shape = x.meta.shape().clone();
    let channels = shape[1];
    let count = shape[0] * shape[2] * shape[3];
    let units_per_channel = count.div_ceil(VALUES_PER_UNIT).max(1);
    let channels_last = x.meta.strides()[1] == 1 && channels > 1;
    let (client, device, dtype) = (x.client.clone(), x.device.clone(), x.dtype);
    let sums = || empty_device_dtype(client.clone(), device.clone(), Shape::new([channels, units_per_channel]), DType::F32);
    let (first, second) = (sums(), sums());
    let units = channels * units_per_channel;
    let cube_dim = CubeDim::new(&client, units);
    let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
    let weighted = weights.is_some();
    let weights = weights.map(one_stride).unwrap_or_else(|| x.clone());
    // SAFETY: every unit checks its position against `C · units` and writes its own
    // slot of each output; it reads only its channel's values, `n < N` and `pixel <
    // H·W`, through the tensors' own strides (each plane's pixels at one stride).
    unsafe {
        partial_sums_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            address_type!(x, weights, shift, first, second),
            x.into_tensor_arg(),
            weights.into_tensor_arg(),
            shift.into_tensor_arg(),
            first.clone().into_tensor_arg(),
            second.clone().into_tensor_arg(),
            weighted,
            channels_last,
            dtype.into(),
        )
    };
    (first, second)
}
