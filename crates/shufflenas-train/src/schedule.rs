//! Learning-rate and channel-selection schedules.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::LrScheduler;
use burn::prelude::Backend;
use serde::{Deserialize, Serialize};

/// Linear warm-up from 0 to `peak` over `warmup_iters`, then cosine decay to 0 at
/// `total_iters`. Any peak (the seed uses 1.3; Burn's own schedulers reject > 1), and
/// no restart: past the end the rate stays 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosineLr {
    /// Peak learning rate.
    pub peak: f64,
    /// Warm-up iterations.
    pub warmup_iters: usize,
    /// Total iterations.
    pub total_iters: usize,
    /// Iterations done.
    pub iteration: usize,
}

impl WarmupCosineLr {
    /// A schedule at iteration 0.
    pub fn new(peak: f64, warmup_iters: usize, total_iters: usize) -> Self {
        Self { peak, warmup_iters: warmup_iters.min(total_iters), total_iters: total_iters.max(1), iteration: 0 }
    }

    /// The rate at iteration `i` (0-based).
    pub fn rate_at(&self, i: usize) -> f64 {
        if i < self.warmup_iters {
            return self.peak * (i + 1) as f64 / self.warmup_iters as f64;
        }
        let span = (self.total_iters - self.warmup_iters).max(1) as f64;
        let progress = ((i - self.warmup_iters) as f64 / span).min(1.0);
        0.5 * self.peak * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

impl LrScheduler for WarmupCosineLr {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> LearningRate {
        let rate = self.rate_at(self.iteration);
        self.iteration += 1;
        rate
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.iteration
    }

    fn load_record<B: Backend>(mut self, record: usize) -> Self {
        self.iteration = record;
        self
    }
}

/// The seed's channel-selection warm-up: channels at the maximum for the first half
/// of supernet training, then the allowed range widens one scale at a time (epochs 61,
/// 62, 63, 64, 65–66, 67–69, 70–73 of 120) down to the lowest searchable scale.
/// For other epoch counts the boundaries scale proportionally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChannelSchedule {
    /// Warm-up as the seed (channel ids `lowest..=highest`).
    WarmUp {
        /// Total supernet epochs.
        epochs: usize,
        /// Lowest channel id reached (2 = scale 0.6).
        lowest: usize,
        /// Highest channel id (9 = scale 2.0).
        highest: usize,
    },
    /// Every id in `lowest..=highest` from the start (the seed's "from scratch",
    /// e.g. 0..=9 with SE).
    FromStart {
        /// Lowest channel id.
        lowest: usize,
        /// Highest channel id.
        highest: usize,
    },
}

/// Seed boundaries (1-based, of 120 epochs): the epoch at which the range gains its
/// 1st, 2nd, … extra scale.
const SEED_STEPS: [usize; 7] = [61, 62, 63, 64, 65, 67, 70];

impl ChannelSchedule {
    /// Allowed channel ids during `epoch` (0-based).
    pub fn allowed(&self, epoch: usize) -> std::ops::RangeInclusive<usize> {
        match *self {
            Self::FromStart { lowest, highest } => lowest..=highest,
            Self::WarmUp { epochs, lowest, highest } => {
                let one_based = epoch + 1;
                let widened = SEED_STEPS
                    .iter()
                    .filter(|&&step| {
                        // Scale the seed's 1-based boundary to `epochs`.
                        let scaled = ((step - 1) as f64 * epochs as f64 / 120.0).round() as usize + 1;
                        one_based >= scaled
                    })
                    .count();
                highest.saturating_sub(widened).max(lowest)..=highest
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_to_zero_with_any_peak() {
        let mut lr = WarmupCosineLr::new(1.3, 5, 105);
        let rates: Vec<f64> = (0..106).map(|_| lr.step()).collect();
        assert!((rates[0] - 0.26).abs() < 1e-12);
        assert!((rates[4] - 1.3).abs() < 1e-12);
        assert!((rates[5] - 1.3).abs() < 1e-12);
        assert!((rates[55] - 0.65).abs() < 1e-12);
        assert!(rates[104] < 1e-3 && rates[105] == 0.0);
        let resumed = WarmupCosineLr::new(1.3, 5, 105).load_record::<burn::backend::Flex>(55);
        assert_eq!(resumed.clone().step(), rates[55]);
    }

    // The seed's table for 120 epochs.
    #[test]
    fn channel_warmup_follows_the_seed_table() {
        let s = ChannelSchedule::WarmUp { epochs: 120, lowest: 2, highest: 9 };
        let lowest_at = |epoch_one_based: usize| *s.allowed(epoch_one_based - 1).start();
        assert_eq!(lowest_at(1), 9);
        assert_eq!(lowest_at(60), 9);
        assert_eq!(lowest_at(61), 8);
        assert_eq!(lowest_at(62), 7);
        assert_eq!(lowest_at(63), 6);
        assert_eq!(lowest_at(64), 5);
        assert_eq!(lowest_at(65), 4);
        assert_eq!(lowest_at(66), 4);
        assert_eq!(lowest_at(67), 3);
        assert_eq!(lowest_at(69), 3);
        assert_eq!(lowest_at(70), 2);
        assert_eq!(lowest_at(120), 2);
        // Scaled to 12 epochs: max channels for the first 6.
        let short = ChannelSchedule::WarmUp { epochs: 12, lowest: 2, highest: 9 };
        assert_eq!(*short.allowed(5).start(), 9);
        assert_eq!(*short.allowed(6).start(), 4); // boundaries 61..65 of 120 all round to epoch 7 of 12
        assert_eq!(*short.allowed(7).start(), 2);
        assert_eq!(*short.allowed(11).start(), 2);
        assert_eq!(ChannelSchedule::FromStart { lowest: 0, highest: 9 }.allowed(0), 0..=9);
    }
}
