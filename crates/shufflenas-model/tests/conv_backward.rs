//! The conv2d forward and backward passes on the CPU backend against a naive reference.
//!
//! The workspace builds a patched burn-flex (vendor/burn-flex/PATCHED.md) with direct
//! kernels for the pointwise and depthwise convolutions' input and weight gradients,
//! pointwise convolutions on small planes as one GEMM over the batch (forward and
//! backward), and row copies for strided tensors. These tests check every such kernel,
//! and the default path that other convolutions still take, against plain loops in
//! f64, on odd channel counts and sizes (planes above and below the small-plane
//! threshold of 16 pixels), strides 1 to 4 (and 9, above the direct kernels' limit),
//! kernels 1 to 7, padding up to and beyond the kernel, and strided views.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

type B = Autodiff<Flex>;

/// One convolution case: `x [n, c_in, h, w]`, `weight [c_out, c_in / groups, k, k]`.
#[derive(Clone, Copy, Debug)]
struct Case {
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    groups: usize,
}

/// The reference's results: the output `y = conv(x, w)` and, with the output gradient
/// `r`, the gradients `dx` and `dw` of `Σ y · r`.
struct Reference {
    y: Vec<f64>,
    dx: Vec<f64>,
    dw: Vec<f64>,
}

/// Plain f64 loops.
fn reference(case: Case, x: &[f32], w: &[f32], r: &[f32], out: [usize; 2]) -> Reference {
    let Case { batch, c_in, c_out, size: [h, wd], kernel: k, stride, padding, groups } = case;
    let (cig, cog) = (c_in / groups, c_out / groups);
    let mut y = vec![0.0; r.len()];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for n in 0..batch {
        for co in 0..c_out {
            let g = co / cog;
            for oh in 0..out[0] {
                for ow in 0..out[1] {
                    let yi = ((n * c_out + co) * out[0] + oh) * out[1] + ow;
                    let gv = f64::from(r[yi]);
                    for ci in 0..cig {
                        let cx = g * cig + ci;
                        for i in 0..k {
                            for j in 0..k {
                                let (ih, iw) = (
                                    (oh * stride + i) as isize - padding as isize,
                                    (ow * stride + j) as isize - padding as isize,
                                );
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                                    continue;
                                }
                                let xi = ((n * c_in + cx) * h + ih as usize) * wd + iw as usize;
                                let wi = ((co * cig + ci) * k + i) * k + j;
                                y[yi] += f64::from(w[wi]) * f64::from(x[xi]);
                                dx[xi] += f64::from(w[wi]) * gv;
                                dw[wi] += f64::from(x[xi]) * gv;
                            }
                        }
                    }
                }
            }
        }
    }
    Reference { y, dx, dw }
}

fn assert_close(name: &str, case: Case, ours: &[f32], reference: &[f64]) {
    assert_eq!(ours.len(), reference.len(), "{name}: length, {case:?}");
    let scale = reference.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (index, (&a, &b)) in ours.iter().zip(reference).enumerate() {
        assert!((f64::from(a) - b).abs() <= 1e-4 * scale, "{name}[{index}]: {a} vs {b} (scale {scale}), {case:?}");
    }
}

/// Runs the case through autodiff. With `strided_views`, `x` is a channel slice
/// of a wider tensor and `weight` a slice of a larger weight, as in the supernet.
fn check(case: Case, strided_views: bool) {
    let device = Default::default();
    let Case { batch, c_in, c_out, size: [h, w], kernel, stride, padding, groups } = case;
    let normal = Distribution::Normal(0.0, 1.0);
    let (x, weight) = if strided_views {
        let wide = Tensor::<B, 4>::random([batch, c_in + 5, h, w], normal, &device);
        let big = Tensor::<B, 4>::random([c_out + 3, c_in / groups + 2, kernel, kernel], normal, &device);
        let x = wide.slice([0..batch, 2..2 + c_in, 0..h, 0..w]).detach().require_grad();
        let weight = big.slice([1..1 + c_out, 0..c_in / groups, 0..kernel, 0..kernel]).detach().require_grad();
        (x, weight)
    } else {
        let x = Tensor::<B, 4>::random([batch, c_in, h, w], normal, &device).require_grad();
        let weight = Tensor::<B, 4>::random([c_out, c_in / groups, kernel, kernel], normal, &device).require_grad();
        (x, weight)
    };
    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups);
    let y = conv2d(x.clone(), weight.clone(), None, options);
    let [_, _, out_h, out_w] = y.dims();
    let r = Tensor::<B, 4>::random(y.shape(), normal, &device);
    let grads = (y.clone() * r.clone()).sum().backward();
    let values = |t: Tensor<Flex, 4>| t.into_data().to_vec::<f32>().unwrap();
    let dx = values(x.grad(&grads).unwrap());
    let dw = values(weight.grad(&grads).unwrap());
    let (x, weight, r) = (values(x.inner()), values(weight.inner()), values(r.inner()));
    let expected = reference(case, &x, &weight, &r, [out_h, out_w]);
    assert_close("y", case, &values(y.inner()), &expected.y);
    assert_close("dx", case, &dx, &expected.dx);
    assert_close("dw", case, &dw, &expected.dw);
}

fn depthwise(batch: usize, channels: usize, size: [usize; 2], kernel: usize, stride: usize) -> Case {
    Case { batch, c_in: channels, c_out: channels, size, kernel, stride, padding: kernel / 2, groups: channels }
}

#[test]
fn depthwise_gradients_match_the_reference() {
    for (index, &channels) in [57, 51, 44, 8].iter().enumerate() {
        for kernel in [3, 5, 7] {
            for stride in [1, 2] {
                for size in [[9, 11], [4, 4], [2, 3]] {
                    check(depthwise(2, channels, size, kernel, stride), (index + kernel + stride) % 2 == 0);
                }
            }
        }
    }
}

#[test]
fn depthwise_gradients_without_padding_match_the_reference() {
    for stride in [1, 2] {
        check(Case { padding: 0, ..depthwise(3, 12, [8, 7], 3, stride) }, false);
        check(Case { padding: 1, ..depthwise(1, 5, [7, 7], 5, stride) }, true);
    }
}

/// Kernels smaller than the stride leave some phase planes without a tap, and strides
/// above 2 split the plane into more phases; large planes take several SIMD blocks.
#[test]
fn depthwise_gradients_with_odd_kernels_and_strides_match_the_reference() {
    check(Case { padding: 0, ..depthwise(2, 6, [9, 10], 1, 2) }, false);
    check(Case { padding: 0, ..depthwise(2, 7, [12, 11], 2, 2) }, true);
    check(Case { padding: 1, ..depthwise(2, 5, [13, 14], 4, 3) }, false);
    check(depthwise(2, 3, [40, 37], 5, 1), true);
    // Input narrower than the stride; padding beyond the kernel.
    check(Case { padding: 0, ..depthwise(1, 3, [64, 2], 1, 4) }, false);
    check(Case { padding: 3, ..depthwise(2, 4, [9, 8], 2, 1) }, true);
    // A stride above MAX_STRIDE takes flex's own kernels.
    check(Case { padding: 1, ..depthwise(1, 3, [40, 40], 3, 9) }, false);
}

/// With stride 2 and an odd height, the input's last row is read by no output: even
/// when it holds inf, it must not reach the weight gradient (as 0 · inf = NaN would).
#[test]
fn inputs_that_no_output_reads_stay_out_of_the_weight_gradient() {
    let device = Default::default();
    let (channels, h, w) = (2, 11, 9);
    let mut values: Vec<f32> = (0..channels * h * w).map(|i| (i % 7) as f32 - 3.0).collect();
    for channel in 0..channels {
        values[(channel * h + h - 1) * w..(channel * h + h) * w].fill(f32::INFINITY);
    }
    let x = Tensor::<B, 4>::from_data(TensorData::new(values, [1, channels, h, w]), &device).require_grad();
    let weight = Tensor::<B, 4>::ones([channels, 1, 2, 2], &device).require_grad();
    let y = conv2d(x, weight.clone(), None, ConvOptions::new([2, 2], [0, 0], [1, 1], channels));
    let grads = y.sum().backward();
    let dw = weight.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
    assert!(dw.iter().all(|v| v.is_finite()), "weight gradient {dw:?}");
}

#[test]
fn pointwise_gradients_match_the_reference() {
    let cases = [(57, 44), (44, 51), (51, 57), (16, 40), (3, 1), (130, 20)];
    for (index, &(c_in, c_out)) in cases.iter().enumerate() {
        // 99 and 16 pixels: one GEMM per batch item; 15, 6 and 1: one over the batch.
        for size in [[9, 11], [4, 4], [3, 5], [2, 3], [1, 1]] {
            for batch in [1, 3] {
                let case = Case { batch, c_in, c_out, size, kernel: 1, stride: 1, padding: 0, groups: 1 };
                check(case, (index + batch) % 2 == 1);
            }
        }
    }
}

#[test]
fn pointwise_and_depthwise_forward_with_bias_match_the_reference() {
    let device = Default::default();
    let normal = Distribution::Normal(0.0, 1.0);
    let pointwise =
        |batch, c_in, c_out, size| Case { batch, c_in, c_out, size, kernel: 1, stride: 1, padding: 0, groups: 1 };
    let cases = [
        pointwise(3, 57, 44, [1, 1]),
        pointwise(2, 20, 33, [2, 3]),
        pointwise(2, 9, 17, [5, 4]),
        depthwise(3, 44, [1, 1], 5, 1),
        depthwise(2, 51, [4, 4], 7, 2),
        depthwise(2, 8, [9, 11], 3, 1),
        Case { batch: 2, c_in: 3, c_out: 16, size: [23, 19], kernel: 3, stride: 2, padding: 1, groups: 1 },
    ];
    for case in cases {
        let Case { batch, c_in, c_out, size: [h, w], kernel, stride, padding, groups } = case;
        let x = Tensor::<Flex, 4>::random([batch, c_in, h, w], normal, &device);
        let weight = Tensor::<Flex, 4>::random([c_out, c_in / groups, kernel, kernel], normal, &device);
        let bias = Tensor::<Flex, 1>::random([c_out], normal, &device);
        let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups);
        let y = conv2d(x.clone(), weight.clone(), Some(bias.clone()), options);
        let [_, _, out_h, out_w] = y.dims();
        let values = |t: Tensor<Flex, 4>| t.into_data().to_vec::<f32>().unwrap();
        let (y, x, w) = (values(y), values(x), values(weight));
        let b = bias.into_data().to_vec::<f32>().unwrap();
        let plane = out_h * out_w;
        let expected = reference(case, &x, &w, &vec![0.0; y.len()], [out_h, out_w]);
        let with_bias: Vec<f64> =
            expected.y.iter().enumerate().map(|(i, v)| v + f64::from(b[(i / plane) % c_out])).collect();
        assert_close("y", case, &y, &with_bias);
    }
}

/// Convolutions with one group and up to 4 input and 16 output channels (a stem) take
/// the patched flex's few-channel forward kernel: planes large enough for its unrolled
/// SIMD loop and too small for one vector, strides 1 to 3, no padding and padding beyond
/// the kernel, 1 to 4 input channels.
#[test]
fn few_channel_convolutions_match_the_reference() {
    let few = |batch, c_in, c_out, size, kernel, stride, padding| Case {
        batch,
        c_in,
        c_out,
        size,
        kernel,
        stride,
        padding,
        groups: 1,
    };
    let cases = [
        // The stem: 3×3 stride 2 from 3 channels.
        few(2, 3, 16, [9, 9], 3, 2, 1),
        few(3, 3, 16, [40, 37], 3, 2, 1),
        // A stride that leaves an extra tap, and no padding.
        few(1, 4, 4, [8, 8], 3, 2, 0),
        few(2, 1, 7, [33, 20], 5, 1, 2),
        few(2, 2, 1, [17, 26], 7, 3, 4),
        few(1, 3, 9, [6, 5], 1, 1, 0),
        few(2, 4, 16, [12, 15], 3, 1, 5),
    ];
    for (index, case) in cases.into_iter().enumerate() {
        check(case, index % 2 == 0);
    }
}

#[test]
fn other_convolutions_take_the_default_path_and_match_the_reference() {
    let cases = [
        // 1×1 with stride 2 (not the pointwise kernel).
        Case { batch: 2, c_in: 6, c_out: 5, size: [7, 8], kernel: 1, stride: 2, padding: 0, groups: 1 },
        // Grouped, not depthwise.
        Case { batch: 2, c_in: 8, c_out: 12, size: [6, 6], kernel: 3, stride: 1, padding: 1, groups: 4 },
        // More channels than the few-channel kernel takes.
        Case { batch: 2, c_in: 5, c_out: 6, size: [9, 7], kernel: 3, stride: 2, padding: 1, groups: 1 },
        Case { batch: 1, c_in: 3, c_out: 17, size: [8, 8], kernel: 3, stride: 2, padding: 1, groups: 1 },
    ];
    for (index, case) in cases.into_iter().enumerate() {
        check(case, index % 2 == 0);
    }
}

/// The ReLU's backward with a strided gradient (a channel slice of a concatenation's
/// gradient, as in every ShuffleNet block), which the patched `binary_op` copies block-wise
/// first: `dx = g · [x > 0]` element by element.
#[test]
fn relu_gradient_from_a_channel_slice_masks_it() {
    let device = Default::default();
    B::seed(&device, 21);
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<B, 4>::random([3, 8, 5, 5], normal, &device).require_grad();
    let other = Tensor::<B, 4>::random([3, 6, 5, 5], normal, &device);
    let weight = Tensor::<B, 4>::random([3, 14, 5, 5], normal, &device);
    let joined = Tensor::cat(vec![other, burn::tensor::activation::relu(x.clone())], 1);
    let grads = (joined * weight.clone()).sum().backward();
    let dx: Vec<f32> = x.grad(&grads).expect("x gets a gradient").into_data().to_vec().expect("f32");
    let xs: Vec<f32> = x.into_data().to_vec().expect("f32");
    let ws: Vec<f32> = weight.slice([0..3, 6..14]).into_data().to_vec().expect("f32");
    for ((&d, &xi), &wi) in dx.iter().zip(&xs).zip(&ws) {
        assert_eq!(d, if xi > 0.0 { wi } else { 0.0 }, "x {xi}, upstream gradient {wi}");
    }
}
