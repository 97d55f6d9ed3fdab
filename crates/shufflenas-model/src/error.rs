//! Errors of the search space, genomes and plans.

use std::fmt;

/// Which of the two gene lists an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneKind {
    /// Block-choice genes (0 = SNB-3, 1 = SNB-5, 2 = SNB-7, 3 = SXB-3).
    Block,
    /// Channel-choice genes (ids into the candidate scale list).
    Channel,
}

impl fmt::Display for GeneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GeneKind::Block => "block",
            GeneKind::Channel => "channel",
        })
    }
}

/// A genome or search-space configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArchError {
    /// The genome does not have one gene per choice block.
    #[error("expected {expected} {kind} genes, got {got}")]
    GeneCount {
        /// Which list.
        kind: GeneKind,
        /// Number of choice blocks of the search space.
        expected: usize,
        /// Number of genes given.
        got: usize,
    },
    /// Block and channel lists of different lengths.
    #[error("a genome has one channel gene per block gene: got {blocks} block genes and {channels} channel genes")]
    ListLengths {
        /// Block genes given.
        blocks: usize,
        /// Channel genes given.
        channels: usize,
    },
    /// A gene value outside the allowed ids.
    #[error("{kind} gene {index} is {value}, allowed range is {min}..={max}")]
    OutOfRange {
        /// Which list.
        kind: GeneKind,
        /// Position of the gene (0-based).
        index: usize,
        /// The value found.
        value: i64,
        /// Smallest allowed id.
        min: usize,
        /// Largest allowed id.
        max: usize,
    },
    /// A block id that names no block (read without its position, e.g. from JSON).
    #[error("block id {0} names no block: the ids are 0 (SNB-3), 1 (SNB-5), 2 (SNB-7) and 3 (SXB-3)")]
    BlockId(u8),
    /// A channel id that exists but is outside the searchable subset (only checked when a
    /// sampler or search asks for it).
    #[error("channel gene {index} is {value}, outside the searchable ids {min}..={max}")]
    NotSearchable {
        /// Position of the gene (0-based).
        index: usize,
        /// The value found.
        value: usize,
        /// Smallest searchable id.
        min: usize,
        /// Largest searchable id.
        max: usize,
    },
    /// A gene token that is not an integer.
    #[error("{kind} gene {index} is not an integer: '{token}'")]
    BadToken {
        /// Which list.
        kind: GeneKind,
        /// Position of the gene (0-based).
        index: usize,
        /// The offending text.
        token: String,
    },
    /// An architecture string that does not have the `BLOCKS;CHANNELS` shape.
    #[error("malformed architecture string '{input}': {reason}")]
    Malformed {
        /// The input (possibly shortened).
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Unknown preset name.
    #[error("unknown architecture preset '{0}' (known: oneshot-s+, oneshot, supernet-max)")]
    UnknownPreset(String),
}

/// A search-space configuration that cannot describe a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpaceError {
    /// The input side must be a multiple of the network's total stride.
    #[error(
        "input size {input_size} is not divisible by the total stride {total_stride} (stem stride {stem_stride} × 2^{stages} stages)"
    )]
    InputSizeNotDivisible {
        /// The configured input side.
        input_size: usize,
        /// Stem stride times 2 per stage.
        total_stride: usize,
        /// The stem stride.
        stem_stride: usize,
        /// The number of stages.
        stages: usize,
    },
    /// Stage lists of different lengths, or none.
    #[error(
        "stage_repeats has {repeats} entries but stage_out_channels has {channels}; both need the same non-zero length"
    )]
    StageMismatch {
        /// Length of `stage_repeats`.
        repeats: usize,
        /// Length of `stage_out_channels`.
        channels: usize,
    },
    /// Channels must be even (blocks split them in two) and grow between stages.
    #[error(
        "stage {stage} has {channels} output channels; each stage needs an even count larger than its input ({input})"
    )]
    BadStageChannels {
        /// Stage index.
        stage: usize,
        /// Its output channels.
        channels: usize,
        /// Its input channels.
        input: usize,
    },
    /// A stage without blocks.
    #[error("stage {0} has zero repeats")]
    EmptyStage(usize),
    /// A bad scale list or searchable subset.
    #[error("invalid channel scales: {0}")]
    BadScales(String),
    /// A zero-sized setting.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// A setting beyond what the networks and their counts are built for (channel ids
    /// are one byte; sizes far past any real network).
    #[error("{0}")]
    TooLarge(String),
    /// A dropout probability outside `[0, 1)` (1 would zero the classifier's input).
    #[error("dropout must lie in [0, 1), got {0}")]
    BadDropout(f64),
    /// A genome that does not fit the space.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// A decoded network plan given to a supernet of another space.
    #[error("the network plan was not decoded from this supernet's search space: {0}")]
    ForeignPlan(String),
}
