//! The flags that say what a timed run executes, shared by `latency` and `warm_kernels`,
//! so that a warm-up with the same flags meets exactly the kernels the run meets.

use clap::Args;
use rand::SeedableRng;
use shufflenas_model::{Architecture, MidChannelRule, SearchSpace, SpaceError};

use crate::cli::{CliError, architecture_for};

/// Network, input shape and paths of a run.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Preset, JSON genome file or BLOCKS;CHANNELS (ignored with --supernet).
    #[arg(long, default_value = "oneshot-s+")]
    pub arch: String,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Number of classes.
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    /// Stride of the first conv (2 as the seed; 1 for the small-input preset).
    #[arg(long, default_value_t = 2)]
    pub stem_stride: usize,
    /// A training step (forward, cross-entropy, backward, SGD Nesterov) instead of inference.
    #[arg(long)]
    pub train_step: bool,
    /// The supernet with a random path per iteration (seeded).
    #[arg(long)]
    pub supernet: bool,
    /// Seed of the weights, inputs and paths.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Mid channels as make_divisible(out/2 · scale, N) instead of int(out/2 · scale)
    /// (upstream's supernet rule; changes the architecture).
    #[arg(long)]
    pub mid_divisor: Option<usize>,
}

impl WorkloadArgs {
    /// The OneShot-S+ space at this input size, class count, stem stride and mid rule.
    ///
    /// # Errors
    /// [`SpaceError`] when these make an invalid space.
    pub fn space(&self) -> Result<SearchSpace, SpaceError> {
        let space = SearchSpace {
            input_size: self.size,
            num_classes: self.classes,
            stem_stride: self.stem_stride,
            mid_channel_rule: self.mid_divisor.map_or(MidChannelRule::Truncate, MidChannelRule::MakeDivisible),
            ..SearchSpace::oneshot_plus()
        };
        space.check()?;
        Ok(space)
    }

    /// The fixed network's genome (`--arch`), checked against `space`.
    ///
    /// # Errors
    /// [`CliError`] for an unknown preset or a genome that does not fit.
    pub fn architecture(&self, space: &SearchSpace) -> Result<Architecture, CliError> {
        architecture_for(space, &self.arch)
    }

    /// The first `n` seeded random paths: those a `--supernet` run takes, in order.
    pub fn paths(&self, space: &SearchSpace, n: usize) -> Vec<Architecture> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        (0..n).map(|_| Architecture::random(space, &mut rng)).collect()
    }
}
