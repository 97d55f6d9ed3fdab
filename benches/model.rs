//! Kernel and network benchmarks on the selected backend (flex by default):
//!
//!     cargo bench --bench model
//!
//! Channel shuffle, each block kind at its stage size, SE, sliced vs unsliced conv, the
//! first conv (RGB → 16, stride 2) at 224,
//! the conv backward kernels (depthwise 3/5/7 at strides 1 and 2, pointwise), the
//! training batch norm (forward + backward),
//! OneShot-S+ at batch 1 and 32, and a supernet training step at 32×32.

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use criterion::{Criterion, criterion_group, criterion_main};
use shufflenas::backend::{self, Device, Inference, Training};
use shufflenas::model::nn::{
    ChoiceBlockConfig, ShuffleNasNetConfig, SlicedBatchNormConfig, SlicedConv2dConfig, SqueezeExcitationConfig,
    SupernetConfig, channel_shuffle_split,
};
use shufflenas::model::{Architecture, BlockChoice, SearchSpace};

fn random(shape: [usize; 4], device: &Device) -> Tensor<Inference, 4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn sync<const D: usize>(t: Tensor<Inference, D>) {
    let _ = t.into_data();
}

fn kernels(c: &mut Criterion) {
    let device = backend::device().expect("backend device");
    let mut group = c.benchmark_group("kernels");
    group.sample_size(20);
    let x = random([1, 320, 14, 14], &device);
    group.bench_function("channel_shuffle_split/320x14x14", |b| {
        b.iter(|| {
            let (a, m) = channel_shuffle_split(x.clone());
            sync(a);
            sync(m)
        })
    });
    let se = SqueezeExcitationConfig::new(160).init::<Inference>(&device);
    let half = random([1, 160, 14, 14], &device);
    group.bench_function("se/160x14x14", |b| b.iter(|| sync(se.forward(half.clone()))));
    let conv = SlicedConv2dConfig::new(320, 320, 1).init::<Inference>(&device);
    let y = random([1, 160, 14, 14], &device);
    group.bench_function("pointwise_sliced/160to96_of_320", |b| b.iter(|| sync(conv.forward(y.clone(), 96))));
    let exact = SlicedConv2dConfig::new(160, 96, 1).init::<Inference>(&device);
    group.bench_function("pointwise_unsliced/160to96", |b| b.iter(|| sync(exact.forward(y.clone(), 96))));
    // The first conv (RGB → 16, 3×3, stride 2) at 224: the few-channel kernel on flex.
    let stem_weight = random([16, 3, 3, 3], &device);
    for batch in [1, 32] {
        let image = random([batch, 3, 224, 224], &device);
        group.bench_function(format!("stem_conv/3to16_3x3_s2_224_batch{batch}"), |b| {
            let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
            b.iter(|| sync(conv2d(image.clone(), stem_weight.clone(), None, options.clone())))
        });
    }
    group.finish();
}

fn blocks(c: &mut Criterion) {
    let device = backend::device().expect("backend device");
    let space = SearchSpace::oneshot_plus();
    let slots = space.supernet_slots().expect("valid space");
    let mut group = c.benchmark_group("blocks");
    group.sample_size(20);
    // The second position of each stage (stride 1) at scale 1.0.
    for stage_first in [1usize, 5, 9, 17] {
        for choice in BlockChoice::ALL {
            let mut plan = slots[stage_first][choice.id() as usize].clone();
            plan.mid_channels = plan.slot.out_channels / 2;
            let block = ChoiceBlockConfig::new(plan.clone()).init::<Inference>(&device);
            let s = plan.slot.input_size;
            let x = random([1, plan.slot.in_channels, s, s], &device);
            let name = format!("{}/{}x{}x{}", choice.label(), plan.slot.in_channels, s, s);
            group.bench_function(name, |b| b.iter(|| sync(block.forward(x.clone(), plan.mid_channels))));
        }
    }
    group.finish();
}

fn networks(c: &mut Criterion) {
    let device = backend::device().expect("backend device");
    let mut group = c.benchmark_group("oneshot_s_plus_224");
    group.sample_size(10);
    let net = ShuffleNasNetConfig::new(SearchSpace::oneshot_plus(), Architecture::oneshot_s_plus())
        .init::<Inference>(&device)
        .expect("valid genome");
    for batch in [1usize, 32] {
        let x = random([batch, 3, 224, 224], &device);
        group.bench_function(format!("forward_batch{batch}"), |b| b.iter(|| sync(net.forward(x.clone()))));
    }
    group.finish();

    let mut group = c.benchmark_group("supernet_32");
    group.sample_size(10);
    let space = SearchSpace { input_size: 32, num_classes: 10, ..SearchSpace::oneshot_plus() };
    let mut model = Some(SupernetConfig::new(space.clone()).init::<Training>(&device).expect("supernet"));
    let mut optim =
        SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_nesterov(true).with_dampening(0.0))).init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let x = Tensor::<Training, 4>::random([32, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<Training, 1, Int>::random([32], Distribution::Uniform(0.0, 10.0), &device);
    let mut seed = 0;
    group.bench_function("train_step_batch32_random_path", |b| {
        b.iter(|| {
            seed += 1;
            let arch = Architecture::random_seeded(&space, seed);
            let net = model.take().expect("model");
            let loss = loss_fn.forward(net.forward(x.clone(), &arch).expect("path"), y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            model = Some(optim.step(0.01, net, grads));
        })
    });
    let eval = model.as_ref().expect("model").valid();
    let xe = random([32, 3, 32, 32], &device);
    group.bench_function("eval_batch32_random_path", |b| {
        b.iter(|| {
            seed += 1;
            sync(eval.forward(xe.clone(), &Architecture::random_seeded(&space, seed)).expect("path"))
        })
    });
    group.finish();
}

/// Forward + backward of one convolution at the sizes of the small-input preset's
/// training step (batch 32): the input and weight gradients are what the CPU
/// backend's patched kernels compute (vendor/burn-flex/PATCHED.md).
fn conv_backward(c: &mut Criterion) {
    let device = backend::device().expect("backend device");
    let mut group = c.benchmark_group("conv_backward_batch32");
    group.sample_size(10);
    let normal = Distribution::Normal(0.0, 1.0);
    // (name, channels in, channels out, size, kernel, stride, groups)
    let cases = [
        ("depthwise_k3_s1/68x16x16", 68, 68, 16, 3, 1, 68),
        ("depthwise_k5_s1/68x16x16", 68, 68, 16, 5, 1, 68),
        ("depthwise_k7_s1/68x16x16", 68, 68, 16, 7, 1, 68),
        ("depthwise_k3_s2/68x32x32", 68, 68, 32, 3, 2, 68),
        ("depthwise_k7_s2/68x32x32", 68, 68, 32, 7, 2, 68),
        ("pointwise/68to68x16x16", 68, 68, 16, 1, 1, 1),
        ("pointwise/160to160x8x8", 160, 160, 8, 1, 1, 1),
        // The fixed net's stages 2 and 3 in a 32×32 training step (first conv at stride 2).
        ("depthwise_k3_s1/160x2x2", 160, 160, 2, 3, 1, 160),
        ("depthwise_k7_s1/160x2x2", 160, 160, 2, 7, 1, 160),
        ("depthwise_k5_s1/448x1x1", 448, 448, 1, 5, 1, 448),
        ("pointwise/160to160x2x2", 160, 160, 2, 1, 1, 1),
        ("pointwise/320to448x1x1", 320, 448, 1, 1, 1, 1),
    ];
    for (name, c_in, c_out, size, kernel, stride, groups) in cases {
        let x = Tensor::<Training, 4>::random([32, c_in, size, size], normal, &device).require_grad();
        let weight =
            Tensor::<Training, 4>::random([c_out, c_in / groups, kernel, kernel], normal, &device).require_grad();
        let options = ConvOptions::new([stride; 2], [kernel / 2; 2], [1, 1], groups);
        group.bench_function(name, |b| {
            b.iter(|| {
                let grads = conv2d(x.clone(), weight.clone(), None, options.clone()).sum().backward();
                let _ = (x.grad(&grads).map(|g| g.into_data()), weight.grad(&grads).map(|g| g.into_data()));
            })
        });
    }
    group.finish();
}

/// Training batch norm, forward and backward (the output's weighted sum as the loss), at
/// the small-input preset's stage sizes; `benches/torch_conv_backward.py` has the same
/// cases for PyTorch.
fn batch_norm(c: &mut Criterion) {
    let device = backend::device().expect("backend device");
    let mut group = c.benchmark_group("batch_norm_train_batch32");
    group.sample_size(10);
    for (channels, size) in [(16, 32), (68, 32), (68, 16), (160, 8), (320, 4)] {
        let layer = SlicedBatchNormConfig::new(channels).init::<Training>(&device);
        let x = Tensor::<Training, 4>::random([32, channels, size, size], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let weight = Tensor::<Training, 4>::random([32, channels, size, size], Distribution::Normal(0.0, 1.0), &device);
        group.bench_function(format!("{channels}x{size}x{size}"), |b| {
            b.iter(|| {
                let grads = layer.forward(x.clone()).mul(weight.clone()).sum().backward();
                let _ = (x.grad(&grads).map(|g| g.into_data()), layer.gamma.grad(&grads).map(|g| g.into_data()));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels, conv_backward, batch_norm, blocks, networks);
criterion_main!(benches);
