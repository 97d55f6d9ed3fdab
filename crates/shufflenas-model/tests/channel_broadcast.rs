//! Per-channel broadcasts on flex (`[N, C, H, W] ∘ [1, C, 1, 1]`, what batch norm's
//! scale and shift do in eval mode) against plain loops. The patched burn-flex runs them
//! through its per-row-scalar SIMD path with the scalars cycled over the batch
//! (vendor/burn-flex/PATCHED.md, item 8); this checks every op, a shared (non-unique)
//! left operand, a strided left operand, a scalar broadcast along a middle dim, and a
//! right operand that is a slice of a larger tensor.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;

type B = Flex;

fn floats<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

/// `op(x[n, c, p], s[c])` for every element of `x [n, c, plane]`.
fn reference(x: &[f32], s: &[f32], [n, c, plane]: [usize; 3], op: ScalarOp) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for i in 0..n {
        for (ch, &scalar) in s.iter().enumerate().take(c) {
            for p in 0..plane {
                out.push(op(x[(i * c + ch) * plane + p], scalar));
            }
        }
    }
    out
}

type TensorOp = fn(Tensor<B, 4>, Tensor<B, 4>) -> Tensor<B, 4>;
type ScalarOp = fn(f32, f32) -> f32;

const OPS: [(&str, TensorOp, ScalarOp); 4] = [
    ("add", |a, b| a + b, |a, b| a + b),
    ("sub", |a, b| a - b, |a, b| a - b),
    ("mul", |a, b| a * b, |a, b| a * b),
    ("div", |a, b| a / b, |a, b| a / b),
];

fn inputs(shape: [usize; 4], seed: u64) -> (Tensor<B, 4>, Tensor<B, 1>) {
    let device = Default::default();
    B::seed(&device, seed);
    let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let s = Tensor::<B, 1>::random([shape[1]], Distribution::Uniform(0.5, 2.0), &device);
    (x, s)
}

#[test]
fn per_channel_broadcast_over_the_batch_matches_loops() {
    for (shape, seed) in [([3, 57, 5, 7], 1), ([4, 51, 1, 1], 2), ([2, 44, 16, 16], 3), ([1, 8, 3, 3], 4)] {
        let [n, c, h, w] = shape;
        let (x, s) = inputs(shape, seed);
        let (xs, ss) = (floats(x.clone()), floats(s.clone()));
        for (name, op, scalar_op) in OPS {
            let got = floats(op(x.clone(), s.clone().reshape([1, c, 1, 1])));
            let want = reference(&xs, &ss, [n, c, h * w], scalar_op);
            assert_eq!(got, want, "{name} on {shape:?}");
        }
    }
}

#[test]
fn shared_left_operand_is_left_unchanged() {
    let (x, s) = inputs([3, 9, 4, 4], 5);
    let before = floats(x.clone());
    let kept = x.clone();
    let got = floats(x * s.clone().reshape([1, 9, 1, 1]));
    assert_eq!(floats(kept), before);
    assert_eq!(got, reference(&before, &floats(s), [3, 9, 16], |a, b| a * b));
}

#[test]
fn strided_left_operand_and_sliced_scalars() {
    let (x, _) = inputs([5, 3, 4, 6], 6);
    let (_, s) = inputs([1, 5, 1, 1], 7);
    // `[3, 5, 4, 6]` seen through swapped axes: a strided left operand.
    let swapped = x.swap_dims(0, 1);
    let wide = Tensor::cat(vec![s.clone(), s.clone() * 3.0], 0);
    let sliced = wide.narrow(0, 3, 5);
    let xs = floats(swapped.clone());
    let got = floats(swapped * sliced.clone().reshape([1, 5, 1, 1]));
    assert_eq!(got, reference(&xs, &floats(sliced), [3, 5, 24], |a, b| a * b));
}

#[test]
fn scalars_along_a_middle_dim() {
    // `[N, C, H, W] + [1, 1, H, 1]`: one scalar per row of each plane, cycled over N·C.
    let (x, _) = inputs([2, 3, 4, 5], 8);
    let device = Default::default();
    let rows = Tensor::<B, 1>::from_floats([10.0, 20.0, 30.0, 40.0], &device);
    let xs = floats(x.clone());
    let got = floats(x + rows.reshape([1, 1, 4, 1]));
    let want: Vec<f32> = xs.iter().enumerate().map(|(i, v)| v + 10.0 * ((i / 5) % 4 + 1) as f32).collect();
    assert_eq!(got, want);
}
