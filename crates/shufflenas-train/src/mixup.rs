//! Mixup (Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization"), as timm's
//! `--mixup`: each training batch is blended with a permutation of itself,
//! `x̃ = λ·x + (1−λ)·x[perm]`, with `λ ~ Beta(α, α)`, and the loss is
//! `λ·CE(y) + (1−λ)·CE(y[perm])`.
//!
//! λ and the permutation are a pure function of (seed, global step), like the sampled
//! paths, so a resumed run mixes exactly as an uninterrupted one.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution};

use crate::data::Batch;

/// ChaCha stream of the mixup draws: the path sampler uses stream 0 of the same
/// (seed, step) key, so the two never share random numbers.
const MIXUP_STREAM: u64 = 1;

/// How one batch is mixed: the weight of the original images and, for each image, the
/// index of the image it is blended with.
#[derive(Debug, Clone, PartialEq)]
pub struct MixPlan {
    /// λ, the weight of the original images and labels, in `[0, 1]`.
    pub lambda: f64,
    /// `partner[i]`: the image blended into image `i` with weight `1 − λ`.
    pub partner: Vec<usize>,
}

impl MixPlan {
    /// The plan of global step `step` for a batch of `n` images: `λ ~ Beta(α, α)` and a
    /// uniform permutation, both drawn from a generator keyed by (`seed`, `step`).
    ///
    /// # Panics
    /// If `alpha` is not positive and finite (the trainer checks it first).
    pub fn draw(alpha: f64, seed: u64, step: u64, n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.set_stream(MIXUP_STREAM);
        let beta = Beta::new(alpha, alpha).expect("mixup alpha must be positive and finite");
        let lambda = beta.sample(&mut rng).clamp(0.0, 1.0);
        let mut partner: Vec<usize> = (0..n).collect();
        partner.shuffle(&mut rng);
        Self { lambda, partner }
    }

    /// The batch with blended images and the original labels.
    ///
    /// # Panics
    /// If the plan was drawn for another batch size.
    pub fn mix_images(&self, batch: &Batch) -> Batch {
        let n = batch.labels.len();
        assert_eq!(self.partner.len(), n, "mix plan drawn for {} images, batch has {n}", self.partner.len());
        let per_image = batch.images.len() / n.max(1);
        let (a, b) = (self.lambda as f32, (1.0 - self.lambda) as f32);
        let mut images = Vec::with_capacity(batch.images.len());
        for (i, &j) in self.partner.iter().enumerate() {
            let own = &batch.images[i * per_image..(i + 1) * per_image];
            let other = &batch.images[j * per_image..(j + 1) * per_image];
            images.extend(own.iter().zip(other).map(|(&x, &y)| a * x + b * y));
        }
        Batch { images, shape: batch.shape, labels: batch.labels.clone() }
    }

    /// The labels of the partner images (weighted `1 − λ` in the loss).
    pub fn partner_labels(&self, labels: &[i64]) -> Vec<i64> {
        self.partner.iter().map(|&j| labels[j]).collect()
    }

    /// The label that weighs most in each mixed image: the original one when `λ ≥ ½`.
    /// Training accuracy under mixup is counted against it.
    pub fn dominant_labels(&self, labels: &[i64]) -> Vec<i64> {
        if self.lambda >= 0.5 { labels.to_vec() } else { self.partner_labels(labels) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        // Three 1×1×2 images with distinct values, so every blend is recognisable.
        Batch { images: vec![1.0, 2.0, 10.0, 20.0, 100.0, 200.0], shape: [3, 1, 1, 2], labels: vec![0, 1, 2] }
    }

    // Resume relies on this: the same (seed, step) must give the same λ and permutation.
    #[test]
    fn a_plan_is_a_pure_function_of_seed_and_step() {
        let a = MixPlan::draw(0.2, 7, 42, 16);
        assert_eq!(a, MixPlan::draw(0.2, 7, 42, 16));
        assert_ne!(a, MixPlan::draw(0.2, 7, 43, 16));
        assert_ne!(a, MixPlan::draw(0.2, 8, 42, 16));
        let mut sorted = a.partner.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());
    }

    // Beta(α, α) has mean ½ and variance 1 / (4(2α + 1)); α = 1 is uniform (variance 1/12).
    #[test]
    fn lambda_follows_beta_alpha_alpha() {
        for alpha in [0.2, 1.0, 4.0] {
            let draws: Vec<f64> = (0..4000).map(|step| MixPlan::draw(alpha, 3, step, 2).lambda).collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            let var = draws.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / draws.len() as f64;
            let expected = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.02, "alpha {alpha}: mean {mean}");
            assert!((var - expected).abs() < 0.1 * expected, "alpha {alpha}: variance {var} vs {expected}");
            assert!(draws.iter().all(|l| (0.0..=1.0).contains(l)));
        }
    }

    #[test]
    fn images_blend_with_their_partner_and_labels_follow() {
        let plan = MixPlan { lambda: 0.75, partner: vec![2, 0, 1] };
        let mixed = plan.mix_images(&batch());
        let expected = [
            0.75 * 1.0 + 0.25 * 100.0,
            0.75 * 2.0 + 0.25 * 200.0,
            0.75 * 10.0 + 0.25 * 1.0,
            0.75 * 20.0 + 0.25 * 2.0,
            0.75 * 100.0 + 0.25 * 10.0,
            0.75 * 200.0 + 0.25 * 20.0,
        ];
        for (got, want) in mixed.images.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        assert_eq!(mixed.labels, vec![0, 1, 2]);
        assert_eq!(plan.partner_labels(&mixed.labels), vec![2, 0, 1]);
        assert_eq!(plan.dominant_labels(&mixed.labels), vec![0, 1, 2]);
        let flipped = MixPlan { lambda: 0.25, ..plan };
        assert_eq!(flipped.dominant_labels(&[0, 1, 2]), vec![2, 0, 1]);
    }
}
