//! Channel shuffle and split of stride-1 ShuffleNetV2 blocks.

use burn::prelude::*;

/// Shuffles the channels of `x` in two groups and splits the result in halves, as the
/// original implementation: view `[N, 2, C/2, H, W]`, swap axes 1 and 2, view back;
/// new channel `2j + g` is old channel `g·C/2 + j`. The first half is passed through,
/// the second goes to the main branch.
///
/// Each half is gathered with one `select` along the channel axis (whole H×W planes
/// are copied), which CPU backends do with plain memory copies.
///
/// # Shapes
/// `[N, C, H, W]` (C even) → (`[N, C/2, H, W]`, `[N, C/2, H, W]`)
pub fn channel_shuffle_split<B: Backend>(x: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let c = x.dims()[1];
    let device = x.device();
    let source = |new: usize| ((new % 2) * (c / 2) + new / 2) as i64;
    let indices = |range: std::ops::Range<usize>| {
        let ids: Vec<i64> = range.map(source).collect();
        let n = ids.len();
        Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [n]), &device)
    };
    let first = x.clone().select(1, indices(0..c / 2));
    let second = x.select(1, indices(c / 2..c));
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::tests::TestBackend;

    // The golden logits depend on exactly this permutation.
    #[test]
    fn shuffle_matches_the_reference_permutation() {
        let device = Default::default();
        let c = 8;
        let x = Tensor::<TestBackend, 1, Int>::arange(0..c as i64, &device).float().reshape([1, c, 1, 1]);
        let (left, right) = channel_shuffle_split(x);
        let shuffled: Vec<f32> = Tensor::cat(vec![left, right], 1).into_data().into_vec().unwrap();
        let expected: Vec<f32> = (0..c).map(|new| ((new % 2) * c / 2 + new / 2) as f32).collect();
        assert_eq!(shuffled, expected);
    }

    // The backward pass routes each output gradient back to its source channel (a
    // `select_add` along the channel axis, with H×W planes and 1×1 planes alike).
    #[test]
    fn shuffle_gradient_is_the_inverse_permutation() {
        let device = Default::default();
        for [n, c, h, w] in [[2, 12, 3, 5], [3, 8, 1, 1]] {
            let x = Tensor::<TestBackend, 4>::random([n, c, h, w], burn::tensor::Distribution::Default, &device)
                .require_grad();
            let r = Tensor::<TestBackend, 4>::random([n, c, h, w], burn::tensor::Distribution::Default, &device);
            let (left, right) = channel_shuffle_split(x.clone());
            let grads = (Tensor::cat(vec![left, right], 1) * r.clone()).sum().backward();
            let grad: Vec<f32> = x.grad(&grads).unwrap().into_data().into_vec().unwrap();
            let r: Vec<f32> = r.into_data().into_vec().unwrap();
            let plane = h * w;
            for (index, &g) in grad.iter().enumerate() {
                let (item, old, at) = (index / (c * plane), (index / plane) % c, index % plane);
                // Old channel g·C/2 + j became new channel 2j + g.
                let new = 2 * (old % (c / 2)) + old / (c / 2);
                assert_eq!(g, r[(item * c + new) * plane + at], "item {item}, channel {old}, position {at}");
            }
        }
    }
}
