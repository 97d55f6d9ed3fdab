//! Channel shuffle and split of stride-1 ShuffleNetV2 blocks.

use burn::prelude::*;

/// Shuffles the channels of `x` in two groups and splits the result in halves, as the
/// original implementation: view `[N, 2, C/2, H, W]`, swap axes 1 and 2, view back;
/// new channel `2j + g` is old channel `g·C/2 + j`. The first half is passed through,
/// the second goes to the main branch.
///
/// Only the half each branch needs is gathered: each half is one strided copy.
///
/// # Shapes
/// `[N, C, H, W]` (C divisible by 4) → (`[N, C/2, H, W]`, `[N, C/2, H, W]`)
pub fn channel_shuffle_split<B: Backend>(x: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let [n, c, h, w] = x.dims();
    let quarter = c / 4;
    // Groups of the two halves of the input, each [N, 2, C/4, H, W] after the view.
    let grouped = x.reshape([n, 2, c / 2, h, w]);
    let half = |start: usize| {
        grouped.clone().slice([0..n, 0..2, start..start + quarter]).swap_dims(1, 2).reshape([n, c / 2, h, w])
    };
    (half(0), half(quarter))
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
}
