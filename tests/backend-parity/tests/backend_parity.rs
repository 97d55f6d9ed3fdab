//! The selected backend (`-p backend-parity --features wgpu` or `cuda`; flex by default)
//! against the flex reference on small shapes: sliced convolutions and BN with their gradients,
//! depthwise and pointwise convolutions on every input layout, and sliced-vs-extracted
//! equality of choice blocks (the supernet-vs-subnet property). CI runs this on wgpu
//! (Mesa lavapipe).

use backend_parity::{self as backend, Training};
use burn::backend::{Autodiff, Flex};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::ConvOptions;
use shufflenas_model::nn::{ChoiceBlockConfig, ConvBnActConfig, SlicedBatchNormConfig};
use shufflenas_model::{Activation, BlockChoice, BlockPlan, SearchSpace};

type Reference = Autodiff<Flex>;

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().expect("float data")
}

fn assert_close(ours: &[f32], reference: &[f32], tolerance: f32, what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let scale = reference.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= tolerance * scale, "{what}: max abs diff {worst} (scale {scale}) on {}", backend::NAME);
}

fn host_input(shape: [usize; 4], seed: u64) -> TensorData {
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    TensorData::new(values, shape)
}

/// What a sliced unit computes, on the host.
struct UnitRun {
    output: Vec<f32>,
    input_grad: Vec<f32>,
    weight_grad: Vec<f32>,
    gamma_grad: Vec<f32>,
    weight: Vec<f32>,
}

/// Output, input gradient and weight/gamma gradients of a sliced conv → BN (→ activation)
/// unit run at `out` channels on `input`; `weights` replaces the initial weights.
fn sliced_unit<B: AutodiffBackend>(
    config: &ConvBnActConfig,
    input: [usize; 4],
    out: usize,
    device: &B::Device,
    weights: Option<Vec<f32>>,
) -> UnitRun {
    let mut unit = config.init::<B>(device);
    if let Some(w) = weights {
        let dims = unit.conv.weight.dims();
        unit.conv.weight = burn::module::Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), device));
    }
    let w0 = values(unit.conv.weight.val());
    let x = Tensor::<B, 4>::from_data(host_input(input, 3), device).require_grad();
    let y = unit.forward(x.clone(), out);
    let loss = y.clone().powi_scalar(2).mean();
    let grads = loss.backward();
    let gx = x.grad(&grads).expect("input gradient");
    let params = GradientsParams::from_grads(grads, &unit);
    let gw = params.get::<B::InnerBackend, 4>(unit.conv.weight.id).expect("weight gradient");
    let bn = unit.bn.as_ref().expect("bn");
    let gg = params.get::<B::InnerBackend, 1>(bn.gamma.id).expect("gamma gradient");
    UnitRun { output: values(y), input_grad: values(gx), weight_grad: values(gw), gamma_grad: values(gg), weight: w0 }
}

/// The unit on this backend against flex with the same weights.
fn unit_on_both(config: &ConvBnActConfig, input: [usize; 4], out: usize) -> (UnitRun, UnitRun) {
    let device = backend::device();
    let ours = sliced_unit::<Training>(config, input, out, &device, None);
    let reference = sliced_unit::<Reference>(config, input, out, &Default::default(), Some(ours.weight.clone()));
    (ours, reference)
}

/// Relative tolerance of a float32 convolution on this backend against flex. On CUDA,
/// CubeCL's tensor-core convolutions read float32 operands as TF32 (10-bit mantissa;
/// cubek-matmul 0.2 picks TF32 stages for f32 whenever the accelerated algorithm wins
/// autotune), as cuDNN does by default in PyTorch: seen on an H100, 3.4e-4 of the output's
/// scale. Everywhere else the arithmetic is float32.
const CONV_TOLERANCE: f32 = if cfg!(feature = "cuda") { 3e-3 } else { 1e-4 };

#[test]
fn sliced_conv_bn_and_gradients_match_flex() {
    let config = ConvBnActConfig::pointwise(24, 48, Some(Activation::HardSwish));
    let (ours, reference) = unit_on_both(&config, [4, 20, 16, 16], 30);
    let gradient_tolerance = CONV_TOLERANCE.max(1e-3);
    assert_close(&ours.output, &reference.output, CONV_TOLERANCE, "output");
    assert_close(&ours.input_grad, &reference.input_grad, gradient_tolerance, "input gradient");
    assert_close(&ours.weight_grad, &reference.weight_grad, gradient_tolerance, "weight gradient");
    assert_close(&ours.gamma_grad, &reference.gamma_grad, gradient_tolerance, "gamma gradient");
    // Outside the 30 active filters the gradient is exactly zero on every backend.
    assert!(ours.weight_grad[30 * 24..].iter().all(|v| *v == 0.0));
    assert!(ours.gamma_grad[30..].iter().all(|v| *v == 0.0));
}

// Depthwise convs (the vendored burn-cubecl's own weight-gradient kernel on the CubeCL
// backends, vendor/burn-cubecl/PATCHED.md): 27 of 40 channels active, kernels 3/5/7,
// strides 1/2 on a 9×9 plane (stride 2 leaves a ragged edge), plain float32 arithmetic
// (no tensor cores) on every backend.
#[test]
fn sliced_depthwise_convs_and_gradients_match_flex() {
    for (kernel, stride) in [(3, 1), (5, 2), (7, 1), (3, 2)] {
        // An activation after the BN: `mean(BN(x)²)` alone is constant in x.
        let config = ConvBnActConfig::depthwise(40, kernel, stride).with_activation(Some(Activation::HardSwish));
        let (ours, reference) = unit_on_both(&config, [3, 27, 9, 9], 27);
        let what = |part: &str| format!("depthwise {kernel}x{kernel} stride {stride}: {part}");
        assert_close(&ours.output, &reference.output, 1e-4, &what("output"));
        assert_close(&ours.input_grad, &reference.input_grad, 1e-3, &what("input gradient"));
        assert_close(&ours.weight_grad, &reference.weight_grad, 1e-3, &what("weight gradient"));
        assert_close(&ours.gamma_grad, &reference.gamma_grad, 1e-3, &what("gamma gradient"));
        assert!(ours.weight_grad[27 * kernel * kernel..].iter().all(|v| *v == 0.0), "{}", what("inactive filters"));
    }
}

/// How a test input is stored.
#[derive(Clone, Copy, Debug)]
enum Storage {
    /// `[N, C, H, W]`, contiguous.
    ChannelsFirst,
    /// Channels 3.. of a wider `[N, C + 5, H, W]` tensor (a view on flex; the fused wgpu
    /// backend hands the convolution a materialised copy).
    ChannelSlice,
    /// `[N, H, W, C]`, contiguous (a permuted view, channel stride 1).
    ChannelsLast,
}

impl Storage {
    const ALL: [Storage; 3] = [Storage::ChannelsFirst, Storage::ChannelSlice, Storage::ChannelsLast];

    /// A `[n, c, h, w]` input stored this way, values in [−1, 1].
    fn input<B: Backend>(self, shape: [usize; 4], seed: u64, device: &B::Device) -> Tensor<B, 4> {
        self.input_around(shape, seed, 0.0, device)
    }

    /// As [`Storage::input`], values in [center − 1, center + 1].
    fn input_around<B: Backend>(
        self,
        [n, c, h, w]: [usize; 4],
        seed: u64,
        center: f32,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let data = |shape: [usize; 4]| {
            let values: Vec<f32> = host_input(shape, seed).into_vec().expect("float data");
            Tensor::<B, 4>::from_data(TensorData::new(values.iter().map(|v| v + center).collect(), shape), device)
        };
        match self {
            Storage::ChannelsFirst => data([n, c, h, w]),
            Storage::ChannelSlice => data([n, c + 5, h, w]).slice([0..n, 3..3 + c]),
            Storage::ChannelsLast => data([n, h, w, c]).permute([0, 3, 1, 2]),
        }
    }
}

/// Output, input gradient, weight and bias gradients of `Σ y²` for `y` a conv2d with a
/// bias, its `input` stored as `storage` says.
fn conv_gradients<B: AutodiffBackend>(
    device: &B::Device,
    storage: Storage,
    input: [usize; 4],
    weight: [usize; 4],
    options: &ConvOptions<2>,
) -> [Vec<f32>; 4] {
    let x = storage.input::<B>(input, 5, device).require_grad();
    let w = Tensor::<B, 4>::from_data(host_input(weight, 6), device).require_grad();
    let out = weight[0];
    let b = Tensor::<B, 4>::from_data(host_input([1, 1, 1, out], 7), device).reshape([out]).require_grad();
    let y = burn::tensor::module::conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone());
    let grads = y.clone().powi_scalar(2).sum().backward();
    let gradient = |t: Tensor<B, 4>, what: &str| values(t.grad(&grads).unwrap_or_else(|| panic!("{what} gradient")));
    let gb = values(b.grad(&grads).expect("bias gradient"));
    [values(y), gradient(x, "input"), gradient(w, "weight"), gb]
}

/// [`conv_gradients`] on this backend against flex, for the input stored every way.
fn assert_conv_matches_flex(
    name: &str,
    input: [usize; 4],
    weight: [usize; 4],
    options: ConvOptions<2>,
    tolerance: f32,
) {
    let device = backend::device();
    for storage in Storage::ALL {
        let ours = conv_gradients::<Training>(&device, storage, input, weight, &options);
        let reference = conv_gradients::<Reference>(&Default::default(), storage, input, weight, &options);
        let parts = ["output", "input gradient", "weight gradient", "bias gradient"];
        for ((o, r), what) in ours.iter().zip(&reference).zip(parts) {
            assert_close(o, r, tolerance, &format!("{name} ({storage:?}): {what}"));
        }
    }
}

// A 7×10 plane, a 3×5 kernel, strides [1, 2], dilations [2, 1], paddings [0, 2], a bias,
// and the input stored NCHW, as a channel slice or NHWC (the CubeCL backends' depthwise
// kernels follow the input's layout): a kernel that mixes up the H and W roles of any of
// them, or the layouts, fails here. A 9×11 plane with strides [2, 2] and dilations [2, 3]
// makes the data gradient's output positions step by 1 and 3, their taps by 1 and 2
// (`d / gcd(s, d)`, `s / gcd(s, d)`).
#[test]
fn asymmetric_depthwise_conv_gradients_match_flex() {
    let options = ConvOptions::new([1, 2], [0, 2], [2, 1], 6);
    assert_conv_matches_flex("asymmetric depthwise", [2, 6, 7, 10], [6, 1, 3, 5], options, 1e-4);
    let options = ConvOptions::new([2, 2], [1, 3], [2, 3], 6);
    assert_conv_matches_flex("strided dilated depthwise", [2, 6, 9, 11], [6, 1, 3, 4], options, 1e-4);
}

// Depthwise weight gradients over many output rows. On activations that are not
// channels-last the CubeCL backends' kernel gives each unit one output column of a chunk
// of at least 256 output rows `(n, oy)`: 101 items of 3×4 planes (303 rows) split into
// two chunks, the second starting inside item 50; 300 items of 1×3 planes step to the
// next item every row; a 23×19 plane is one chunk. Channels-last storage takes the
// per-row kernel.
#[test]
fn depthwise_weight_gradient_over_many_rows_matches_flex() {
    for input in [[101, 3, 3, 4], [300, 4, 1, 3], [2, 5, 23, 19]] {
        let channels = input[1];
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], channels);
        let name = format!("depthwise on {input:?}");
        assert_conv_matches_flex(&name, input, [channels, 1, 3, 3], options, 1e-4);
    }
}

// Pointwise convs (13 → 9 channels, a bias) on inputs stored channels-first, as a
// channel slice, and channels-last; the CubeCL backends run them, and their gradients,
// as matmuls that read each layout in place (`vendor/burn-cubecl`, `pointwise.rs`), and
// burn-fusion adds the bias as its own fusable addition (`vendor/burn-fusion`,
// `conv_bias.rs`). The weight gradient of channels-first activations takes one of two
// ways by plane size: a 6×5 plane sums per item then over the batch, a 2×1 plane copies
// both operands channels-last first. A 1×1 plane (squeeze-excitation's convs) is
// channels-last whatever the storage.
#[test]
fn pointwise_conv_on_every_input_layout_matches_flex() {
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    for plane in [[6, 5], [2, 1], [1, 1]] {
        let name = format!("pointwise on {plane:?}");
        assert_conv_matches_flex(&name, [2, 13, plane[0], plane[1]], [9, 13, 1, 1], options.clone(), CONV_TOLERANCE);
    }
}

/// Output, input, gamma and beta gradients, and running mean and variance of a
/// training batch norm over 7 of its 9 channels, on an input with values around 3 stored as
/// `storage` says; the loss weighs the output with fixed values (a plain sum would give
/// a zero input gradient).
fn batch_norm_gradients<B: AutodiffBackend>(device: &B::Device, storage: Storage, input: [usize; 4]) -> [Vec<f32>; 6] {
    let x = storage.input_around::<B>(input, 11, 3.0, device).require_grad();
    let r = Tensor::<B, 4>::from_data(host_input(input, 12), device);
    let bn = SlicedBatchNormConfig::new(9).init::<B>(device);
    let y = bn.forward(x.clone());
    let grads = (y.clone() * r).sum().backward();
    let gamma = values(bn.gamma.grad(&grads).expect("gamma gradient"));
    let beta = values(bn.beta.grad(&grads).expect("beta gradient"));
    let dx = values(x.grad(&grads).expect("input gradient"));
    [values(y), dx, gamma, beta, values(bn.running_mean.value_sync()), values(bn.running_var.value_sync())]
}

// Training batch norm (the CubeCL backends' batch-norm sums kernel, `vendor/burn-cubecl`,
// `kernel/batch_norm.rs`): 7 of 9 channels on inputs stored channels-first, as a
// channel slice and channels-last, on a 11×13 plane (429 values per item, so each
// channel is split over several units with a ragged last one) and a 1×1 plane.
#[test]
fn training_batch_norm_on_every_input_layout_matches_flex() {
    let device = backend::device();
    for input in [[3, 7, 11, 13], [5, 7, 1, 1]] {
        for storage in Storage::ALL {
            let ours = batch_norm_gradients::<Training>(&device, storage, input);
            let reference = batch_norm_gradients::<Reference>(&Default::default(), storage, input);
            let parts =
                ["output", "input gradient", "gamma gradient", "beta gradient", "running mean", "running variance"];
            for ((o, r), what) in ours.iter().zip(&reference).zip(parts) {
                assert_close(o, r, 1e-4, &format!("batch norm {input:?} ({storage:?}): {what}"));
            }
        }
    }
}

/// Eval output of one choice block run at `mid` channels, and of its narrowed copy.
fn block_outputs<B: Backend>(plan: &BlockPlan, mid: usize, device: &B::Device) -> (Vec<f32>, Vec<f32>) {
    let block = ChoiceBlockConfig::new(plan.clone()).init::<B>(device);
    let s = plan.slot.input_size;
    let x = Tensor::<B, 4>::from_data(host_input([2, plan.slot.in_channels, s, s], 9), device);
    let sliced = values(block.forward(x.clone(), mid));
    let narrowed = values(block.narrowed(mid).forward(x, mid));
    (sliced, narrowed)
}

// Supernet-vs-subnet equality at block level: a block run at `mid` of its maximum
// width equals the standalone block narrowed to `mid`, for a stride-1 SNB and a
// stride-2 SXB with SE.
#[test]
fn sliced_blocks_equal_their_extracted_copies_on_this_backend() {
    let device = backend::device();
    let space = SearchSpace::tiny(3, 10);
    let slots = space.supernet_slots().expect("space");
    for (position, choice) in [(1usize, BlockChoice::Snb5), (8, BlockChoice::Sxb3)] {
        let plan = &slots[position][choice.id() as usize];
        let mid = plan.mid_channels * 3 / 5;
        Training::seed(&device, 3);
        let (sliced, narrowed) = block_outputs::<<Training as AutodiffBackend>::InnerBackend>(plan, mid, &device);
        assert_close(&narrowed, &sliced, 1e-5, "sliced block vs narrowed copy");
    }
}
