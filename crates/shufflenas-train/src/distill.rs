//! Knowledge distillation (Hinton et al., 2015, "Distilling the Knowledge in a Neural
//! Network"): the student also matches a fixed teacher's softened class distribution,
//!
//! `loss = (1 − w)·CE_smooth(student, y) + w·T²·KL(softmax(teacher/T) ‖ softmax(student/T))`.
//!
//! The T² factor keeps the soft term's gradients on the scale of the hard term's as T
//! changes. The teacher runs on the inference backend, so it takes no part in the
//! backward pass and its BN layers use their running statistics.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};
use shufflenas_model::NetworkPlan;
use shufflenas_model::nn::{ShuffleNasNet, Supernet};

/// Weight and temperature of the distillation term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distillation {
    /// Weight `w` of the soft term, in `[0, 1]`; the hard (label) term gets `1 − w`.
    pub weight: f64,
    /// Softmax temperature `T > 0` (1: plain probabilities; 2–4 are common).
    pub temperature: f64,
}

impl Default for Distillation {
    fn default() -> Self {
        Self { weight: 0.5, temperature: 4.0 }
    }
}

impl Distillation {
    /// Why the settings are unusable, if they are.
    pub fn problem(&self) -> Option<String> {
        if !(0.0..=1.0).contains(&self.weight) {
            return Some(format!("distillation weight must lie in [0, 1], got {}", self.weight));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Some(format!("distillation temperature must be positive, got {}", self.temperature));
        }
        None
    }
}

/// A fixed network whose predictions a student learns from.
pub trait Teacher<B: Backend> {
    /// Inference-mode logits.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, classes]`
    fn teacher_logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2>;

    /// Channels of the images the teacher takes, where known: each batch is checked
    /// against it before the teacher runs.
    fn input_channels(&self) -> Option<usize> {
        None
    }

    /// Why the teacher cannot run at all, if it cannot: checked before training starts.
    fn problem(&self) -> Option<String> {
        None
    }
}

impl<B: Backend> Teacher<B> for ShuffleNasNet<B> {
    fn teacher_logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward(images)
    }

    fn input_channels(&self) -> Option<usize> {
        Some(self.stem.in_channels())
    }
}

/// One path of a supernet as a teacher. Recalibrate the path's BN statistics
/// ([`crate::recalibrate::recalibrate_supernet`]) before using it: a supernet's running
/// statistics are shared by all paths.
#[derive(Debug, Clone, Copy)]
pub struct SupernetPath<'a, B: Backend> {
    /// The trained supernet (inference backend).
    pub supernet: &'a Supernet<B>,
    /// The path it runs.
    pub plan: &'a NetworkPlan,
}

impl<B: Backend> Teacher<B> for SupernetPath<'_, B> {
    fn teacher_logits(&self, images: Tensor<B, 4>) -> Tensor<B, 2> {
        self.supernet.forward_plan(images, self.plan, false)
    }

    fn input_channels(&self) -> Option<usize> {
        Some(self.supernet.stem.in_channels())
    }

    fn problem(&self) -> Option<String> {
        self.supernet.check_plan(self.plan).err().map(|e| e.to_string())
    }
}

/// The teacher's log-probabilities at temperature `temperature`, computed once per
/// batch on the inference backend.
pub fn soft_targets<B: Backend>(teacher_logits: Tensor<B, 2>, temperature: f64) -> Tensor<B, 2> {
    log_softmax(teacher_logits.div_scalar(temperature), 1)
}

/// `KL(softmax(teacher/T) ‖ softmax(student/T))`, summed over classes and averaged
/// over the batch, from the teacher's [`soft_targets`] (treated as constants).
///
/// # Shapes
/// student logits `[N, K]`, teacher log-probabilities `[N, K]` → `[1]`
///
/// # Panics
/// If the shapes differ.
pub fn distillation_kl<B: Backend>(
    student_logits: Tensor<B, 2>,
    teacher_log_probs: Tensor<B, 2>,
    temperature: f64,
) -> Tensor<B, 1> {
    assert_eq!(student_logits.dims(), teacher_log_probs.dims(), "student and teacher logits must have the same shape");
    let student_log_probs = log_softmax(student_logits.div_scalar(temperature), 1);
    let teacher_probs = teacher_log_probs.clone().exp();
    (teacher_probs * (teacher_log_probs - student_log_probs)).sum_dim(1).mean()
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    fn logits(values: [[f32; 3]; 2]) -> Tensor<Flex, 2> {
        Tensor::from_data(TensorData::from(values), &Default::default())
    }

    fn kl(student: [[f32; 3]; 2], teacher: [[f32; 3]; 2], t: f64) -> f64 {
        distillation_kl(logits(student), soft_targets(logits(teacher), t), t).into_scalar().elem::<f64>()
    }

    // A student that already predicts like its teacher gets no push from the soft term.
    #[test]
    fn the_kl_term_is_zero_when_student_equals_teacher() {
        let same = [[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]];
        for t in [1.0, 4.0] {
            assert!(kl(same, same, t).abs() < 1e-7, "T = {t}: {}", kl(same, same, t));
        }
        // Shifting logits by a constant per row leaves softmax unchanged.
        assert!(kl([[2.0, -1.0, 1.5], [4.0, 1.0, 0.0]], same, 2.0).abs() < 1e-6);
    }

    // Against the definition Σ p·ln(p/q), evaluated in f64.
    #[test]
    fn the_kl_term_matches_a_direct_computation() {
        let student = [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]];
        let teacher = [[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]];
        let t = 2.0;
        let softmax = |row: [f32; 3]| {
            let e: Vec<f64> = row.iter().map(|&v| (f64::from(v) / t).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect::<Vec<f64>>()
        };
        let expected = student
            .iter()
            .zip(&teacher)
            .map(|(&s, &te)| {
                let (q, p) = (softmax(s), softmax(te));
                p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum::<f64>()
            })
            .sum::<f64>()
            / 2.0;
        let got = kl(student, teacher, t);
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        assert!(got > 0.0);
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(Distillation::default().problem().is_none());
        assert!(Distillation { weight: 1.5, temperature: 1.0 }.problem().unwrap().contains("weight"));
        assert!(Distillation { weight: 0.5, temperature: 0.0 }.problem().unwrap().contains("temperature"));
    }
}
