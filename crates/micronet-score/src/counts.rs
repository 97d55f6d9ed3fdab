//! Totals with the quantizable split, counting conventions and the three MicroNet scores.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use crate::op::RawCounts;

/// Counting conventions that differ between counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Convention {
    /// Multiplications per element for a clip (`min(max(x, a), b)`): the seed's table
    /// total uses 1, its profile total 2 (a min and a max).
    pub clip_mults: u8,
    /// Count the multiplication of a block's output by its squeeze-excitation gate.
    /// The seed's counter leaves it out.
    pub count_attention_gate: bool,
}

impl Default for Convention {
    /// The seed's headline convention: clip = 1 mult, SE gate multiplication not counted.
    fn default() -> Self {
        Self { clip_mults: 1, count_attention_gate: false }
    }
}

impl Convention {
    /// Clip counted as two multiplications (the seed's profile-table total).
    pub fn clip2() -> Self {
        Self { clip_mults: 2, ..Self::default() }
    }

    /// Counts the SE gate multiplication too (a strict count).
    pub fn strict() -> Self {
        Self { count_attention_gate: true, ..Self::default() }
    }
}

/// One quantity split into its quantizable and non-quantizable parts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Split {
    /// The part that an int8 model quantizes.
    pub quantizable: u64,
    /// The part that stays in full precision.
    pub other: u64,
}

impl Split {
    /// Both parts together.
    pub const fn total(self) -> u64 {
        self.quantizable + self.other
    }

    const fn of(value: u64, quantizable: bool) -> Self {
        if quantizable { Self { quantizable: value, other: 0 } } else { Self { quantizable: 0, other: value } }
    }
}

impl Add for Split {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self { quantizable: self.quantizable + rhs.quantizable, other: self.other + rhs.other }
    }
}

/// MicroNet counts of an op, a layer or a whole network, for one image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Counts {
    /// Parameter storage in bits (16 per dense weight). Divide by 16 for "params".
    pub param_bits: Split,
    /// Multiplications.
    pub mults: Split,
    /// Additions.
    pub adds: Split,
    /// Multiply-accumulates: one per weight use in conv/FC layers, plus bias adds and
    /// pooling inputs (the "FLOPs" of most NAS papers).
    pub macs: u64,
    /// Trainable parameters of the real network: conv/FC weights and biases, BN gamma
    /// and beta.
    pub trainable_params: u64,
}

impl Counts {
    pub(crate) fn from_op(raw: RawCounts, quantizable: bool) -> Self {
        Self {
            param_bits: Split::of(raw.param_bits, quantizable),
            mults: Split::of(raw.mults, quantizable),
            adds: Split::of(raw.adds, quantizable),
            macs: raw.macs,
            trainable_params: raw.trainable,
        }
    }

    /// Parameters in 16-bit units (bits / 16), the challenge's "params".
    pub fn params(&self) -> f64 {
        self.param_bits.total() as f64 / 16.0
    }

    /// Quantizable parameters in 16-bit units.
    pub fn quant_params(&self) -> f64 {
        self.param_bits.quantizable as f64 / 16.0
    }

    /// Non-quantizable parameters in 16-bit units.
    pub fn other_params(&self) -> f64 {
        self.param_bits.other as f64 / 16.0
    }

    /// Mults + adds: the challenge's FLOPs.
    pub fn flops(&self) -> u64 {
        self.mults.total() + self.adds.total()
    }

    /// FLOPs in millions.
    pub fn mflops(&self) -> f64 {
        self.flops() as f64 / 1e6
    }

    /// The three MicroNet scores against `baseline`.
    pub fn scores(&self, baseline: &Baseline) -> Scores {
        let p = baseline.params;
        let f = baseline.flops;
        let fp32 = self.params() / p + self.flops() as f64 / f;
        let fp16 = self.params() / 2.0 / p + (self.mults.total() as f64 / 2.0 + self.adds.total() as f64) / f;
        let int8_params = self.quant_params() / 4.0 + self.other_params();
        let int8_ops = self.mults.quantizable as f64 / 4.0
            + self.mults.other as f64
            + self.adds.quantizable as f64 / 4.0
            + self.adds.other as f64;
        let int8 = int8_params / p + int8_ops / f;
        Scores { fp32, fp16, int8 }
    }
}

impl Add for Counts {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        Self {
            param_bits: self.param_bits + rhs.param_bits,
            mults: self.mults + rhs.mults,
            adds: self.adds + rhs.adds,
            macs: self.macs + rhs.macs,
            trainable_params: self.trainable_params + rhs.trainable_params,
        }
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, rhs: Self) {
        *self = *self + rhs;
    }
}

impl Sum for Counts {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), Add::add)
    }
}

/// The reference model the scores are normalised by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Parameters (16-bit units).
    pub params: f64,
    /// FLOPs (mults + adds).
    pub flops: f64,
}

impl Default for Baseline {
    /// The challenge's ImageNet baseline, MobileNetV2-1.4: 6.9M params, 1170M FLOPs.
    fn default() -> Self {
        Self::MOBILENET_V2_1_4
    }
}

impl Baseline {
    /// MobileNetV2 at width 1.4: 6.9M parameters, 1170M FLOPs.
    pub const MOBILENET_V2_1_4: Self = Self { params: 6.9e6, flops: 1170e6 };

    /// The float32 score of a model given only its totals: `flops/F + params/P`
    /// (the Σ column of the seed's comparison table).
    pub fn score_from_totals(&self, flops: f64, params: f64) -> f64 {
        flops / self.flops + params / self.params
    }
}

/// The three MicroNet scores: lower is better, the baseline scores 2.0 in float32.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// All params and ops in 32 bits.
    pub fp32: f64,
    /// Params and multiplications in 16 bits (additions are counted in full).
    pub fp16: f64,
    /// Quantizable params and ops in 8 bits, the rest in 32.
    pub int8: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The scores are ratios of the counts: a model equal to the baseline in every
    // respect must score exactly 2 in float32.
    #[test]
    fn a_model_with_the_baseline_totals_scores_two_in_fp32() {
        let counts = Counts {
            param_bits: Split { quantizable: 6_900_000 * 16, other: 0 },
            mults: Split { quantizable: 585_000_000, other: 0 },
            adds: Split { quantizable: 585_000_000, other: 0 },
            ..Counts::default()
        };
        let scores = counts.scores(&Baseline::default());
        assert!((scores.fp32 - 2.0).abs() < 1e-12);
        assert!((scores.fp16 - (0.5 + 0.25 + 0.5)).abs() < 1e-12);
        assert!((scores.int8 - 0.5).abs() < 1e-12);
    }

    #[test]
    fn non_quantizable_parts_keep_full_weight_in_int8() {
        let counts = Counts {
            param_bits: Split { quantizable: 0, other: 6_900_000 * 16 },
            mults: Split { quantizable: 0, other: 1_170_000_000 },
            ..Counts::default()
        };
        assert!((counts.scores(&Baseline::default()).int8 - 2.0).abs() < 1e-12);
    }
}
