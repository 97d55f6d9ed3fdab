//! Single-path sampling for supernet training: a uniform block choice at every
//! position and channel choices from the schedule's allowed range, optionally
//! restricted to a FLOPs/params box (checked with the analytic cost) or spread
//! uniformly over FLOPs bins (as megvii's SPOS).
//!
//! Paths are a pure function of (seed, step): resuming needs no sampler state.

use micronet_score::Convention;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use shufflenas_model::{Architecture, BlockChoice, ChannelChoice, CostTable, SearchSpace, SpaceError};

use crate::schedule::ChannelSchedule;

/// Bounds on MicroNet FLOPs and params (16-bit units) of sampled paths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostBox {
    /// Inclusive FLOPs range.
    pub flops: (f64, f64),
    /// Inclusive params range.
    pub params: (f64, f64),
}

/// How paths are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Sampling {
    /// Uniform blocks and channels.
    Uniform,
    /// Uniform, resampled until the path's cost lies in the box.
    Constrained(CostBox),
    /// A FLOPs bin drawn uniformly among `bins` equal bins over the reachable range,
    /// then a uniform path in that bin (rejection sampling).
    FlopsUniform {
        /// Number of bins.
        bins: usize,
    },
}

/// Errors of path sampling.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// An invalid search space.
    #[error(transparent)]
    Space(#[from] SpaceError),
    /// No path found in the box after many tries.
    #[error(
        "no path with FLOPs in {flops:?} and params in {params:?} after {tries} tries (epoch {epoch}); reachable FLOPs {reachable:?}"
    )]
    Unsatisfiable {
        /// FLOPs box.
        flops: (f64, f64),
        /// Params box.
        params: (f64, f64),
        /// Tries made.
        tries: usize,
        /// Epoch.
        epoch: usize,
        /// Reachable FLOPs range of the space.
        reachable: (f64, f64),
    },
    /// A channel schedule whose ids are empty or not all ids of the space.
    #[error("the channel schedule's ids {lowest}..={highest} must be a non-empty range within the space's 0..={max}")]
    Schedule {
        /// Lowest id of the schedule.
        lowest: usize,
        /// Highest id of the schedule.
        highest: usize,
        /// Largest channel id of the space.
        max: usize,
    },
}

/// Draws training paths.
#[derive(Debug, Clone)]
pub struct PathSampler {
    space: SearchSpace,
    schedule: ChannelSchedule,
    sampling: Sampling,
    table: CostTable,
    seed: u64,
}

const MAX_TRIES: usize = 10_000;

impl PathSampler {
    /// A sampler over `space`.
    ///
    /// # Errors
    /// [`SamplerError::Space`] for an invalid space, [`SamplerError::Schedule`] for a
    /// schedule of ids the space does not have.
    pub fn new(
        space: SearchSpace,
        schedule: ChannelSchedule,
        sampling: Sampling,
        seed: u64,
    ) -> Result<Self, SamplerError> {
        let table = CostTable::new(&space, Convention::default())?;
        let (ChannelSchedule::WarmUp { lowest, highest, .. } | ChannelSchedule::FromStart { lowest, highest }) =
            schedule;
        let max = space.candidate_scales.len() - 1;
        if lowest > highest || highest > max {
            return Err(SamplerError::Schedule { lowest, highest, max });
        }
        Ok(Self { space, schedule, sampling, table, seed })
    }

    /// The search space.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// The channel schedule.
    pub fn schedule(&self) -> &ChannelSchedule {
        &self.schedule
    }

    fn uniform(&self, rng: &mut ChaCha8Rng, epoch: usize) -> Architecture {
        let allowed = self.schedule.allowed(epoch);
        let n = self.space.num_blocks();
        let blocks = (0..n).map(|_| BlockChoice::ALL[rng.random_range(0..4)]).collect();
        let channels = (0..n).map(|_| ChannelChoice(rng.random_range(allowed.clone()) as u8)).collect();
        Architecture { blocks, channels }
    }

    /// The path of global step `step` in `epoch`.
    ///
    /// # Errors
    /// [`SamplerError::Unsatisfiable`] when no path fits the box.
    pub fn sample(&self, epoch: usize, step: u64) -> Result<Architecture, SamplerError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (lo, hi) = self.table.range(|c| c.flops() as f64);
        let (box_flops, box_params) = match self.sampling {
            Sampling::Uniform => return Ok(self.uniform(&mut rng, epoch)),
            Sampling::Constrained(b) => (b.flops, b.params),
            Sampling::FlopsUniform { bins } => {
                let bins = bins.max(1);
                let bin = rng.random_range(0..bins);
                let width = (hi - lo) / bins as f64;
                ((lo + width * bin as f64, lo + width * (bin + 1) as f64), (0.0, f64::INFINITY))
            }
        };
        for _ in 0..MAX_TRIES {
            let arch = self.uniform(&mut rng, epoch);
            let cost = self.table.cost(&arch).map_err(SpaceError::from)?;
            let (f, p) = (cost.flops() as f64, cost.params());
            if (box_flops.0..=box_flops.1).contains(&f) && (box_params.0..=box_params.1).contains(&p) {
                return Ok(arch);
            }
        }
        // FLOPs bins may be unreachable under the current channel range: fall back to
        // a uniform path rather than stall training.
        if matches!(self.sampling, Sampling::FlopsUniform { .. }) {
            return Ok(self.uniform(&mut rng, epoch));
        }
        Err(SamplerError::Unsatisfiable {
            flops: box_flops,
            params: box_params,
            tries: MAX_TRIES,
            epoch,
            reachable: (lo, hi),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> SearchSpace {
        SearchSpace::small_input(1, 10)
    }

    #[test]
    fn paths_follow_the_schedule_and_are_reproducible() {
        let schedule = ChannelSchedule::WarmUp { epochs: 10, lowest: 2, highest: 9 };
        let sampler = PathSampler::new(space(), schedule, Sampling::Uniform, 3).unwrap();
        let early = sampler.sample(0, 5).unwrap();
        assert!(early.channels.iter().all(|c| c.0 == 9), "first half: maximum channels only");
        assert_eq!(early, sampler.sample(0, 5).unwrap());
        assert_ne!(early.blocks, sampler.sample(0, 6).unwrap().blocks);
        let late = sampler.sample(9, 7).unwrap();
        assert!(late.channels.iter().all(|c| (2..=9).contains(&c.0)));
        assert!(late.channels.iter().any(|c| c.0 < 9));
    }

    #[test]
    fn a_schedule_of_ids_the_space_lacks_is_refused() {
        for (lowest, highest) in [(5, 4), (2, 10)] {
            let schedule = ChannelSchedule::FromStart { lowest, highest };
            let err = PathSampler::new(space(), schedule, Sampling::Uniform, 0).unwrap_err();
            assert!(matches!(err, SamplerError::Schedule { max: 9, .. }), "{err}");
        }
        let warm_up = ChannelSchedule::WarmUp { epochs: 4, lowest: 2, highest: 12 };
        assert!(PathSampler::new(space(), warm_up, Sampling::Uniform, 0).is_err());
        assert!(
            PathSampler::new(space(), ChannelSchedule::FromStart { lowest: 0, highest: 9 }, Sampling::Uniform, 0)
                .is_ok()
        );
    }

    #[test]
    fn constrained_sampling_stays_in_the_box_or_says_why() {
        let table = CostTable::new(&space(), Convention::default()).unwrap();
        let (lo, hi) = table.range(|c| c.flops() as f64);
        let mid = (lo + hi) / 2.0;
        let cost_box = CostBox { flops: (lo, mid), params: (0.0, f64::INFINITY) };
        let schedule = ChannelSchedule::FromStart { lowest: 2, highest: 9 };
        let sampler = PathSampler::new(space(), schedule.clone(), Sampling::Constrained(cost_box), 1).unwrap();
        for step in 0..20 {
            let f = table.cost(&sampler.sample(0, step).unwrap()).unwrap().flops() as f64;
            assert!(f <= mid);
        }
        let impossible = CostBox { flops: (0.0, lo / 2.0), params: (0.0, f64::INFINITY) };
        let sampler = PathSampler::new(space(), schedule, Sampling::Constrained(impossible), 1).unwrap();
        let err = sampler.sample(0, 0).unwrap_err();
        assert!(err.to_string().contains("reachable FLOPs"), "{err}");
    }
}
