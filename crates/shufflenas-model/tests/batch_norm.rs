//! The training batch norm (`ModuleOps::batch_norm_train`, a patch to burn-backend, see
//! vendor/burn-backend/PATCHED.md) against plain f64 loops: the fused f32 kernels of the
//! patched burn-flex through autodiff, and the composed default that every other
//! backend runs, on odd channel counts, planes above, below and off the kernels' 16-lane
//! blocks, a 1×1 plane, a large mean (the variance must not cancel), and a strided view.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::ops::ModuleOps;
use burn::tensor::ops::batch_norm::{batch_norm_train_backward_default, batch_norm_train_default};
use burn::tensor::{Distribution, TensorPrimitive};

type B = Autodiff<Flex>;

const EPSILON: f64 = 1e-5;

/// The reference's results for input `x [n, c, plane]`, scale `g`, shift `b` and output
/// gradient `r`: the output, the batch mean and biased variance, and the gradients of
/// `Σ y · r`.
struct Reference {
    y: Vec<f64>,
    mean: Vec<f64>,
    var: Vec<f64>,
    dx: Vec<f64>,
    dgamma: Vec<f64>,
    dbeta: Vec<f64>,
}

fn reference(x: &[f32], g: &[f32], b: &[f32], r: &[f32], [n, c, plane]: [usize; 3]) -> Reference {
    let index = |i: usize, ch: usize, p: usize| (i * c + ch) * plane + p;
    let count = (n * plane) as f64;
    let mut out = Reference {
        y: vec![0.0; x.len()],
        mean: vec![0.0; c],
        var: vec![0.0; c],
        dx: vec![0.0; x.len()],
        dgamma: vec![0.0; c],
        dbeta: vec![0.0; c],
    };
    for ch in 0..c {
        let values = || (0..n).flat_map(move |i| (0..plane).map(move |p| index(i, ch, p)));
        let mean = values().map(|k| f64::from(x[k])).sum::<f64>() / count;
        let var = values().map(|k| (f64::from(x[k]) - mean).powi(2)).sum::<f64>() / count;
        let inv_std = 1.0 / (var + EPSILON).sqrt();
        let x_hat = |k: usize| (f64::from(x[k]) - mean) * inv_std;
        let dbeta = values().map(|k| f64::from(r[k])).sum::<f64>();
        let dgamma = values().map(|k| f64::from(r[k]) * x_hat(k)).sum::<f64>();
        let gamma = f64::from(g[ch]);
        for k in values() {
            out.y[k] = gamma * x_hat(k) + f64::from(b[ch]);
            out.dx[k] = gamma * inv_std * (f64::from(r[k]) - dbeta / count - x_hat(k) * dgamma / count);
        }
        (out.mean[ch], out.var[ch], out.dgamma[ch], out.dbeta[ch]) = (mean, var, dgamma, dbeta);
    }
    out
}

fn floats<const D: usize, Bk: Backend>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().expect("float data")
}

/// Largest `|got − want| / (|want| + scale)`, where `scale` is the reference's largest
/// magnitude (so values near zero are judged against the tensor's size).
fn worst_error(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    got.iter().zip(want).map(|(&g, &w)| (f64::from(g) - w).abs() / (w.abs() + scale)).fold(0.0, f64::max)
}

fn check(name: &str, what: &str, got: &[f32], want: &[f64]) {
    let error = worst_error(got, want);
    assert!(error < 2e-5, "{name}: {what} differs from the f64 reference by {error:.2e}");
}

/// `[n, c, h, w]` inputs with mean `offset`, random scale/shift and output gradient.
fn inputs(shape: [usize; 4], offset: f64, device: &burn::tensor::Device<B>) -> [Tensor<B, 4>; 2] {
    let x = Tensor::<B, 4>::random(shape, Distribution::Normal(offset, 2.0), device);
    let r = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    [x, r]
}

fn affine(c: usize, device: &burn::tensor::Device<B>) -> [Tensor<B, 1>; 2] {
    let g = Tensor::<B, 1>::random([c], Distribution::Uniform(0.5, 1.5), device);
    let b = Tensor::<B, 1>::random([c], Distribution::Normal(0.0, 1.0), device);
    [g, b]
}

/// The fused kernels, forward and backward through autodiff, on `x` (which may be a view).
fn check_fused(name: &str, x: Tensor<B, 4>, r: Tensor<B, 4>, g: Tensor<B, 1>, b: Tensor<B, 1>) {
    let [n, c, h, w] = x.dims();
    let want = reference(&floats(x.clone()), &floats(g.clone()), &floats(b.clone()), &floats(r.clone()), [n, c, h * w]);
    let (x, g, b) = (x.require_grad(), g.require_grad(), b.require_grad());
    let primitive = |t: Tensor<B, 1>| t.into_primitive().tensor();
    let out =
        B::batch_norm_train(x.clone().into_primitive().tensor(), primitive(g.clone()), primitive(b.clone()), EPSILON);
    let y = Tensor::<B, 4>::from_primitive(TensorPrimitive::Float(out.output));
    check(name, "mean", &floats(Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out.mean))), &want.mean);
    check(name, "variance", &floats(Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out.var))), &want.var);
    check(name, "output", &floats(y.clone()), &want.y);
    let grads = (y * r).sum().backward();
    check(name, "dx", &floats(x.grad(&grads).expect("x gets a gradient")), &want.dx);
    check(name, "dgamma", &floats(g.grad(&grads).expect("gamma gets a gradient")), &want.dgamma);
    check(name, "dbeta", &floats(b.grad(&grads).expect("beta gets a gradient")), &want.dbeta);
}

#[test]
fn fused_batch_norm_matches_the_reference() {
    let device = Default::default();
    B::seed(&device, 11);
    // Planes of 35 (two 16-lane blocks and a tail), 256, 1 and 4; channel counts as in
    // the search space; a mean of 1000 with a standard deviation of 2.
    for (shape, offset) in [
        ([4, 57, 5, 7], 3.0),
        ([2, 51, 16, 16], -1.0),
        ([3, 44, 1, 1], 0.5),
        ([8, 8, 2, 2], 1000.0),
        ([1, 3, 33, 1], 0.0),
    ] {
        let [x, r] = inputs(shape, offset, &device);
        let [g, b] = affine(shape[1], &device);
        check_fused(&format!("{shape:?}, mean {offset}"), x, r, g, b);
    }
}

#[test]
fn fused_batch_norm_reads_strided_views() {
    let device = Default::default();
    B::seed(&device, 12);
    // The first 20 channels of a 30-channel activation, as a channel-sliced supernet
    // layer sees it, and a transposed tensor.
    let [wide, r] = inputs([3, 30, 6, 6], 1.0, &device);
    let [g, b] = affine(20, &device);
    check_fused("channel slice", wide.clone().slice([0..3, 0..20]), r.slice([0..3, 0..20]), g, b);
    let [g, b] = affine(30, &device);
    let [x, r] = inputs([3, 6, 30, 6], 1.0, &device);
    check_fused("transposed", x.swap_dims(1, 2), r.swap_dims(1, 2), g, b);
}

#[test]
fn composed_default_matches_the_reference() {
    // What every backend without a fused kernel runs (wgpu, cuda), on the plain CPU
    // backend.
    type Inner = Flex;
    let device = Default::default();
    Inner::seed(&device, 13);
    for shape in [[4, 57, 5, 7], [3, 44, 1, 1]] {
        let c = shape[1];
        let x = Tensor::<Inner, 4>::random(shape, Distribution::Normal(3.0, 2.0), &device);
        let r = Tensor::<Inner, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let g = Tensor::<Inner, 1>::random([c], Distribution::Uniform(0.5, 1.5), &device);
        let b = Tensor::<Inner, 1>::random([c], Distribution::Normal(0.0, 1.0), &device);
        let [n, _, h, w] = shape;
        let want =
            reference(&floats(x.clone()), &floats(g.clone()), &floats(b.clone()), &floats(r.clone()), [n, c, h * w]);
        let p4 = |t: Tensor<Inner, 4>| t.into_primitive().tensor();
        let p1 = |t: Tensor<Inner, 1>| t.into_primitive().tensor();
        let t4 = |t| Tensor::<Inner, 4>::from_primitive(TensorPrimitive::Float(t));
        let t1 = |t| Tensor::<Inner, 1>::from_primitive(TensorPrimitive::Float(t));
        let out = batch_norm_train_default::<Inner>(p4(x.clone()), p1(g.clone()), p1(b), EPSILON);
        let name = format!("default {shape:?}");
        check(&name, "output", &floats(t4(out.output)), &want.y);
        let (mean, var) = (t1(out.mean), t1(out.var));
        check(&name, "mean", &floats(mean.clone()), &want.mean);
        check(&name, "variance", &floats(var.clone()), &want.var);
        let grads = batch_norm_train_backward_default::<Inner>(p4(x), p1(g), p1(mean), p1(var), EPSILON, p4(r));
        check(&name, "dx", &floats(t4(grads.x_grad)), &want.dx);
        check(&name, "dgamma", &floats(t1(grads.gamma_grad)), &want.dgamma);
        check(&name, "dbeta", &floats(t1(grads.beta_grad)), &want.dbeta);
    }
}
