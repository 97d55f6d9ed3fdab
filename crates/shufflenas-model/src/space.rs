//! The search space and the one decode step: genome + space → per-block plan.
//!
//! The supernet, the fixed subnet and the MicroNet cost counter all read the
//! [`NetworkPlan`] produced here, so channel rounding, strides, activations and SE
//! placement are decided in exactly one place.

use serde::{Deserialize, Serialize};

use crate::error::{ArchError, GeneKind, SpaceError};
use crate::genome::{Architecture, BlockChoice, ChannelChoice};

/// Stage output channels of the two layouts of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Layout {
    /// OneShot: stage outputs `[64, 160, 320, 640]`.
    OneShot,
    /// ShuffleNetV2+: stage outputs `[48, 128, 256, 512]`.
    ShuffleNetV2Plus,
}

impl Layout {
    /// Output channels of each of the four stages.
    pub fn stage_out_channels(self) -> Vec<usize> {
        match self {
            Layout::OneShot => vec![64, 160, 320, 640],
            Layout::ShuffleNetV2Plus => vec![48, 128, 256, 512],
        }
    }
}

/// How a scale turns into a block's mid channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MidChannelRule {
    /// `int(out / 2 · scale)`, as upstream's fixed networks and search (the default).
    Truncate,
    /// `make_divisible(out / 2 · scale, divisor)` with MobileNet/timm's rounding (the
    /// nearest multiple; see [`make_divisible`]), for hardware-friendly widths. Not the
    /// original code's rule, which truncates.
    MakeDivisible(usize),
}

/// Activation of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `x · relu6(x + 3) / 6`.
    HardSwish,
}

/// The network family and its searchable choices.
///
/// ```
/// use shufflenas_model::SearchSpace;
///
/// let space = SearchSpace::oneshot_plus();
/// assert_eq!(space.num_blocks(), 20);
/// assert_eq!(space.num_architectures(), 32u128.pow(20));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Choice blocks per stage; the first block of a stage has stride 2.
    pub stage_repeats: Vec<usize>,
    /// Output channels of each stage.
    pub stage_out_channels: Vec<usize>,
    /// Channels of the first 3×3 conv.
    pub first_conv_channels: usize,
    /// Channels of the last 1×1 conv of the head.
    pub last_conv_channels: usize,
    /// Candidate channel scales; channel genes index into this list.
    pub candidate_scales: Vec<f64>,
    /// Smallest channel id that sampling and search may choose.
    pub searchable_min_id: usize,
    /// Largest channel id that sampling and search may choose.
    pub searchable_max_id: usize,
    /// Squeeze-excitation in stages 2–3, hard-swish in the stem and stages 1–3 (the "+" models).
    pub use_se: bool,
    /// MobileNetV3 head (pool, then 1×1 conv with bias) instead of the original one
    /// (1×1 conv + BN + activation, then pool).
    pub last_conv_after_pooling: bool,
    /// Input side in pixels (square inputs).
    pub input_size: usize,
    /// Input channels (3 for RGB; 1 for grayscale data).
    pub input_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Stride of the first conv: 2 for ImageNet, 1 for 28/32-pixel inputs.
    pub stem_stride: usize,
    /// How scales map to mid channels.
    pub mid_channel_rule: MidChannelRule,
    /// Dropout rate before the classifier (0.2 MobileNetV3 head, 0.1 original head).
    pub dropout: f64,
}

impl Default for SearchSpace {
    fn default() -> Self {
        Self::oneshot_plus()
    }
}

impl SearchSpace {
    /// The seed's space for OneShot-S+: OneShot layout, SE, MobileNetV3 head, 224 px,
    /// 1000 classes, scales 0.2–2.0 with 0.6–2.0 searchable.
    pub fn oneshot_plus() -> Self {
        Self {
            stage_repeats: vec![4, 4, 8, 4],
            stage_out_channels: Layout::OneShot.stage_out_channels(),
            first_conv_channels: 16,
            last_conv_channels: 1024,
            candidate_scales: vec![0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0],
            searchable_min_id: 2,
            searchable_max_id: 9,
            use_se: true,
            last_conv_after_pooling: true,
            input_size: 224,
            input_channels: 3,
            num_classes: 1000,
            stem_stride: 2,
            mid_channel_rule: MidChannelRule::Truncate,
            dropout: 0.2,
        }
    }

    /// The seed's space for the plain OneShot model: no SE, original head.
    pub fn oneshot_original() -> Self {
        Self { use_se: false, last_conv_after_pooling: false, dropout: 0.1, ..Self::oneshot_plus() }
    }

    /// A space of the given layout, otherwise as [`SearchSpace::oneshot_plus`].
    pub fn with_layout(self, layout: Layout) -> Self {
        Self { stage_out_channels: layout.stage_out_channels(), ..self }
    }

    /// Preset for 28/32-pixel data (Fashion-MNIST, CIFAR): 32-pixel input (28-pixel
    /// images are padded to 32), stem stride 1 (total stride 16, 2×2 final map),
    /// SE and the MobileNetV3 head, `input_channels` and `num_classes` as given.
    pub fn small_input(input_channels: usize, num_classes: usize) -> Self {
        Self { input_size: 32, input_channels, num_classes, stem_stride: 1, ..Self::oneshot_plus() }
    }

    /// A very small space for tests and quick experiments: the seed's topology with
    /// stage channels `[16, 32, 64, 128]`, 64-wide head, 32-pixel input.
    pub fn tiny(input_channels: usize, num_classes: usize) -> Self {
        Self {
            stage_out_channels: vec![16, 32, 64, 128],
            first_conv_channels: 8,
            last_conv_channels: 64,
            ..Self::small_input(input_channels, num_classes)
        }
    }

    /// Number of choice blocks (genes per list).
    pub fn num_blocks(&self) -> usize {
        self.stage_repeats.iter().sum()
    }

    /// Channel ids that sampling and search may choose.
    pub fn searchable_channel_ids(&self) -> Vec<usize> {
        (self.searchable_min_id..=self.searchable_max_id).collect()
    }

    /// Total stride from input to the last feature map.
    pub fn total_stride(&self) -> usize {
        self.stem_stride << self.stage_repeats.len()
    }

    /// Number of architectures sampling and search can reach:
    /// `(4 · searchable scales)^blocks`, saturating at `u128::MAX`.
    pub fn num_architectures(&self) -> u128 {
        let per_block = 4 * self.searchable_channel_ids().len() as u128;
        (0..self.num_blocks()).fold(1u128, |acc, _| acc.saturating_mul(per_block))
    }

    /// Checks that the space describes a buildable network.
    ///
    /// # Errors
    /// A [`SpaceError`] naming the bad setting.
    pub fn check(&self) -> Result<(), SpaceError> {
        let stages = self.stage_repeats.len();
        if stages == 0 || stages != self.stage_out_channels.len() {
            return Err(SpaceError::StageMismatch { repeats: stages, channels: self.stage_out_channels.len() });
        }
        for (name, value) in [
            ("first_conv_channels", self.first_conv_channels),
            ("last_conv_channels", self.last_conv_channels),
            ("input_size", self.input_size),
            ("input_channels", self.input_channels),
            ("num_classes", self.num_classes),
            ("stem_stride", self.stem_stride),
        ] {
            if value == 0 {
                return Err(SpaceError::Zero(name));
            }
        }
        if self.mid_channel_rule == MidChannelRule::MakeDivisible(0) {
            return Err(SpaceError::Zero("mid_channel_rule's divisor"));
        }
        let mut input = self.first_conv_channels;
        for (stage, (&repeats, &channels)) in self.stage_repeats.iter().zip(&self.stage_out_channels).enumerate() {
            if repeats == 0 {
                return Err(SpaceError::EmptyStage(stage));
            }
            if !channels.is_multiple_of(2) || channels <= input {
                return Err(SpaceError::BadStageChannels { stage, channels, input });
            }
            input = channels;
        }
        let scales = &self.candidate_scales;
        if scales.is_empty() || scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(SpaceError::BadScales(format!("scales must be positive and finite, got {scales:?}")));
        }
        if self.searchable_min_id > self.searchable_max_id || self.searchable_max_id >= scales.len() {
            return Err(SpaceError::BadScales(format!(
                "searchable ids {}..={} must lie within 0..={}",
                self.searchable_min_id,
                self.searchable_max_id,
                scales.len() - 1
            )));
        }
        // The smallest scale gives the fewest mid channels (the list need not be sorted).
        let smallest = scales.iter().copied().fold(f64::INFINITY, f64::min);
        for &channels in &self.stage_out_channels {
            if self.mid_channels(channels, smallest) == 0 {
                return Err(SpaceError::BadScales(format!(
                    "scale {smallest} gives 0 mid channels for a {channels}-channel stage"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(SpaceError::BadDropout(self.dropout));
        }
        self.check_sizes()?;
        let total_stride = self.total_stride();
        if !self.input_size.is_multiple_of(total_stride) {
            return Err(SpaceError::InputSizeNotDivisible {
                input_size: self.input_size,
                total_stride,
                stem_stride: self.stem_stride,
                stages,
            });
        }
        Ok(())
    }

    /// Bounds that keep channel ids in a byte and sizes within what the networks and
    /// their u64 operation counts are built for.
    fn check_sizes(&self) -> Result<(), SpaceError> {
        let too_large = |message: String| Err(SpaceError::TooLarge(message));
        if self.candidate_scales.len() > MAX_SCALES {
            return too_large(format!(
                "{} candidate scales, at most {MAX_SCALES} (channel ids are one byte)",
                self.candidate_scales.len()
            ));
        }
        if self.stage_repeats.len() > MAX_STAGES {
            return too_large(format!("{} stages, at most {MAX_STAGES}", self.stage_repeats.len()));
        }
        if self.input_size > MAX_INPUT_SIZE {
            return too_large(format!("input size {} px, at most {MAX_INPUT_SIZE}", self.input_size));
        }
        if self.num_classes > MAX_CLASSES {
            return too_large(format!("{} classes, at most {MAX_CLASSES}", self.num_classes));
        }
        let largest_scale = self.candidate_scales[self.max_channel_id()];
        let widest = self.stage_out_channels.iter().map(|&c| self.mid_channels(c, largest_scale)).max().unwrap_or(0);
        let channels = [
            ("input_channels", self.input_channels),
            ("first_conv_channels", self.first_conv_channels),
            ("last_conv_channels", self.last_conv_channels),
            ("a stage's output channels", self.stage_out_channels.iter().copied().max().unwrap_or(0)),
            ("the widest block's mid channels", widest),
        ];
        match channels.into_iter().find(|(_, c)| *c > MAX_CHANNELS) {
            Some((name, c)) => too_large(format!("{name} {c}, at most {MAX_CHANNELS}")),
            None => Ok(()),
        }
    }

    /// Checks a genome against the space: gene counts and channel ids within the
    /// candidate scale list (any id may be built and profiled).
    ///
    /// # Errors
    /// [`ArchError::GeneCount`] or [`ArchError::OutOfRange`] naming the gene.
    pub fn validate(&self, arch: &Architecture) -> Result<(), ArchError> {
        let expected = self.num_blocks();
        for (kind, got) in [(GeneKind::Block, arch.blocks.len()), (GeneKind::Channel, arch.channels.len())] {
            if got != expected {
                return Err(ArchError::GeneCount { kind, expected, got });
            }
        }
        let max = self.candidate_scales.len().saturating_sub(1);
        for (index, channel) in arch.channels.iter().enumerate() {
            if channel.index() >= self.candidate_scales.len() {
                return Err(ArchError::OutOfRange {
                    kind: GeneKind::Channel,
                    index,
                    value: i64::from(channel.0),
                    min: 0,
                    max,
                });
            }
        }
        Ok(())
    }

    /// As [`SearchSpace::validate`], and every channel id must be searchable.
    ///
    /// # Errors
    /// As `validate`, plus [`ArchError::NotSearchable`].
    pub fn validate_searchable(&self, arch: &Architecture) -> Result<(), ArchError> {
        self.validate(arch)?;
        let (min, max) = (self.searchable_min_id, self.searchable_max_id);
        match arch.channels.iter().position(|c| !(min..=max).contains(&c.index())) {
            Some(index) => Err(ArchError::NotSearchable { index, value: arch.channels[index].index(), min, max }),
            None => Ok(()),
        }
    }

    /// Mid channels of a block with `out_channels` outputs at `scale`.
    pub fn mid_channels(&self, out_channels: usize, scale: f64) -> usize {
        let raw = out_channels as f64 / 2.0 * scale;
        match self.mid_channel_rule {
            // The same IEEE arithmetic as upstream's Python `int(out / 2 * scale)`.
            MidChannelRule::Truncate => raw as usize,
            MidChannelRule::MakeDivisible(divisor) => make_divisible(raw, divisor),
        }
    }

    /// The choice-block positions with everything that does not depend on the genome.
    ///
    /// # Errors
    /// A [`SpaceError`] when the space itself is invalid.
    pub fn slots(&self) -> Result<Vec<BlockSlot>, SpaceError> {
        self.check()?;
        let se_act = |stage: usize| {
            if self.use_se && stage >= 1 { Activation::HardSwish } else { Activation::Relu }
        };
        let mut slots = Vec::with_capacity(self.num_blocks());
        let mut in_channels = self.first_conv_channels;
        let mut spatial = self.input_size / self.stem_stride;
        for (stage, (&repeats, &out_channels)) in self.stage_repeats.iter().zip(&self.stage_out_channels).enumerate() {
            for repeat in 0..repeats {
                let stride = if repeat == 0 { 2 } else { 1 };
                slots.push(BlockSlot {
                    index: slots.len(),
                    stage,
                    stride,
                    in_channels,
                    out_channels,
                    input_size: spatial,
                    activation: se_act(stage),
                    use_se: self.use_se && stage >= 2,
                });
                spatial = spatial.div_ceil(stride);
                in_channels = out_channels;
            }
        }
        Ok(slots)
    }

    /// The one decode step: genome → per-block plan.
    ///
    /// # Errors
    /// [`SpaceError`] for an invalid space, or [`SpaceError::Arch`] for a genome that
    /// does not fit it.
    pub fn decode(&self, arch: &Architecture) -> Result<NetworkPlan, SpaceError> {
        let slots = self.slots()?;
        self.validate(arch)?;
        let blocks = slots
            .into_iter()
            .map(|slot| {
                let choice = arch.blocks[slot.index];
                let channel = arch.channels[slot.index];
                let scale = self.candidate_scales[channel.index()];
                let mid_channels = self.mid_channels(slot.out_channels, scale);
                BlockPlan { slot, choice, channel, mid_channels }
            })
            .collect();
        Ok(self.plan_with(blocks))
    }

    /// The supernet's plan: every position with each block at its maximum mid channels
    /// (the largest candidate scale). Returned per position as the four block plans.
    ///
    /// # Errors
    /// [`SpaceError`] for an invalid space.
    pub fn supernet_slots(&self) -> Result<Vec<[BlockPlan; 4]>, SpaceError> {
        let slots = self.slots()?;
        let max_id = self.max_channel_id();
        let scale = self.candidate_scales[max_id];
        Ok(slots
            .into_iter()
            .map(|slot| {
                BlockChoice::ALL.map(|choice| BlockPlan {
                    slot: slot.clone(),
                    choice,
                    channel: ChannelChoice(max_id as u8),
                    mid_channels: self.mid_channels(slot.out_channels, scale),
                })
            })
            .collect())
    }

    /// Id of the largest candidate scale.
    pub fn max_channel_id(&self) -> usize {
        let scales = &self.candidate_scales;
        (0..scales.len()).max_by(|&a, &b| scales[a].total_cmp(&scales[b])).unwrap_or(0)
    }

    /// Stem, head and the given blocks as one plan.
    pub(crate) fn plan_with(&self, blocks: Vec<BlockPlan>) -> NetworkPlan {
        let activation = if self.use_se { Activation::HardSwish } else { Activation::Relu };
        let stem = StemPlan {
            in_channels: self.input_channels,
            out_channels: self.first_conv_channels,
            stride: self.stem_stride,
            input_size: self.input_size,
            activation,
        };
        let last = self.stage_out_channels.last().copied().unwrap_or(0);
        let head = HeadPlan {
            in_channels: last,
            last_conv_channels: self.last_conv_channels,
            num_classes: self.num_classes,
            input_size: self.input_size / self.total_stride(),
            after_pooling: self.last_conv_after_pooling,
            activation,
            dropout: self.dropout,
        };
        NetworkPlan { stem, blocks, head }
    }
}

/// Most candidate scales: a channel id is one byte.
const MAX_SCALES: usize = 256;
/// Most stages (the total stride is `stem_stride · 2^stages`).
const MAX_STAGES: usize = 16;
/// Largest input side in pixels.
const MAX_INPUT_SIZE: usize = 8192;
/// Most channels of any layer.
const MAX_CHANNELS: usize = 1 << 16;
/// Most classes (ImageNet-21k has 21,841).
const MAX_CLASSES: usize = 1 << 20;

/// `make_divisible` of MobileNet/timm: round to the nearest multiple of `divisor`, at
/// least `divisor`, and never more than 10% below `value`.
pub fn make_divisible(value: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut rounded = ((value + d / 2.0) / d).floor() * d;
    rounded = rounded.max(d);
    if rounded < 0.9 * value {
        rounded += d;
    }
    rounded as usize
}

/// A choice-block position: everything but the block and channel choice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockSlot {
    /// Position among all choice blocks (0-based).
    pub index: usize,
    /// Stage (0-based).
    pub stage: usize,
    /// 2 for the first block of a stage, else 1.
    pub stride: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input side in pixels.
    pub input_size: usize,
    /// Activation after the pointwise convs.
    pub activation: Activation,
    /// Squeeze-excitation on the main branch output.
    pub use_se: bool,
}

impl BlockSlot {
    /// Output side in pixels.
    pub fn output_size(&self) -> usize {
        self.input_size.div_ceil(self.stride)
    }

    /// Channels entering the main branch: all inputs for stride 2, half for stride 1.
    pub fn main_in_channels(&self) -> usize {
        if self.stride == 2 { self.in_channels } else { self.in_channels / 2 }
    }

    /// Channels leaving the main branch: `out − in` for stride 2, half for stride 1.
    pub fn main_out_channels(&self) -> usize {
        if self.stride == 2 { self.out_channels - self.in_channels } else { self.out_channels / 2 }
    }
}

/// One decoded choice block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockPlan {
    /// Position, stride, channels, activation and SE.
    pub slot: BlockSlot,
    /// Which of the four blocks.
    pub choice: BlockChoice,
    /// The channel gene.
    pub channel: ChannelChoice,
    /// Width of the main branch's inner layers.
    pub mid_channels: usize,
}

impl BlockPlan {
    /// Depthwise kernel side.
    pub fn kernel(&self) -> usize {
        self.choice.kernel()
    }
}

/// The first conv: 3×3, BN, activation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StemPlan {
    /// Image channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride.
    pub stride: usize,
    /// Input side in pixels.
    pub input_size: usize,
    /// Activation.
    pub activation: Activation,
}

/// The classification head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadPlan {
    /// Channels of the last stage.
    pub in_channels: usize,
    /// Width of the last 1×1 conv.
    pub last_conv_channels: usize,
    /// Classes.
    pub num_classes: usize,
    /// Side of the last feature map.
    pub input_size: usize,
    /// MobileNetV3 head (pool → 1×1 conv with bias → act) vs original (1×1 conv → BN →
    /// act → pool).
    pub after_pooling: bool,
    /// Activation after the last conv.
    pub activation: Activation,
    /// Dropout before the classifier.
    pub dropout: f64,
}

/// A whole decoded network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPlan {
    /// First conv.
    pub stem: StemPlan,
    /// The choice blocks in order.
    pub blocks: Vec<BlockPlan>,
    /// Head.
    pub head: HeadPlan,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The golden README lists the fixed-net mid channels of OneShot-S+.
    #[test]
    fn oneshot_s_plus_decodes_to_the_upstream_mid_channels() {
        let plan = SearchSpace::oneshot_plus().decode(&Architecture::oneshot_s_plus()).unwrap();
        let mids: Vec<usize> = plan.blocks.iter().map(|b| b.mid_channels).collect();
        assert_eq!(mids, [57, 51, 44, 57, 96, 128, 64, 80, 96, 160, 96, 128, 160, 192, 224, 224, 256, 256, 320, 448]);
        assert_eq!(plan.blocks[0].slot.in_channels, 16);
        assert_eq!(plan.blocks[0].slot.input_size, 112);
        assert_eq!(plan.blocks[19].slot.output_size(), 7);
        assert_eq!(plan.head.input_size, 7);
    }

    #[test]
    fn activations_and_se_follow_the_seed_layout() {
        let plan = SearchSpace::oneshot_plus().decode(&Architecture::oneshot_s_plus()).unwrap();
        for block in &plan.blocks {
            let stage = block.slot.stage;
            let act = if stage == 0 { Activation::Relu } else { Activation::HardSwish };
            assert_eq!(block.slot.activation, act, "block {}", block.slot.index);
            assert_eq!(block.slot.use_se, stage >= 2, "block {}", block.slot.index);
        }
        assert_eq!(plan.stem.activation, Activation::HardSwish);
        let plain = SearchSpace::oneshot_original().decode(&Architecture::oneshot()).unwrap();
        assert!(plain.blocks.iter().all(|b| b.slot.activation == Activation::Relu && !b.slot.use_se));
        assert_eq!(plain.stem.activation, Activation::Relu);
    }

    #[test]
    fn the_seed_space_has_32_to_the_20_architectures() {
        let space = SearchSpace::oneshot_plus();
        assert_eq!(space.num_architectures(), 1u128 << 100);
        let full = SearchSpace { searchable_min_id: 0, ..space };
        assert_eq!(full.num_architectures(), 40u128.pow(20));
    }

    #[test]
    fn an_input_size_not_divisible_by_the_total_stride_is_rejected() {
        let space = SearchSpace { input_size: 28, ..SearchSpace::small_input(1, 10) };
        let err = space.check().unwrap_err();
        assert!(matches!(err, SpaceError::InputSizeNotDivisible { input_size: 28, total_stride: 16, .. }));
        assert!(err.to_string().contains("input size 28 is not divisible by the total stride 16"));
        assert!(SearchSpace::small_input(1, 10).check().is_ok());
    }

    #[test]
    fn wrong_gene_counts_and_ids_name_the_gene() {
        let space = SearchSpace::oneshot_plus();
        let short = Architecture::uniform(19, BlockChoice::Snb3, ChannelChoice(9));
        assert_eq!(
            space.validate(&short).unwrap_err(),
            ArchError::GeneCount { kind: GeneKind::Block, expected: 20, got: 19 }
        );
        let mut arch = Architecture::oneshot_s_plus();
        arch.channels[5] = ChannelChoice(10);
        assert_eq!(space.validate(&arch).unwrap_err().to_string(), "channel gene 5 is 10, allowed range is 0..=9");
        let mut small = Architecture::oneshot_s_plus();
        small.channels[3] = ChannelChoice(1);
        assert!(space.validate(&small).is_ok(), "any id can be built and profiled");
        assert_eq!(
            space.validate_searchable(&small).unwrap_err(),
            ArchError::NotSearchable { index: 3, value: 1, min: 2, max: 9 }
        );
        assert!(matches!(space.decode(&short), Err(SpaceError::Arch(ArchError::GeneCount { .. }))));
    }

    #[test]
    fn invalid_spaces_are_rejected_with_the_setting_named() {
        let odd = SearchSpace { stage_out_channels: vec![64, 161, 320, 640], ..SearchSpace::oneshot_plus() };
        assert!(matches!(odd.check(), Err(SpaceError::BadStageChannels { stage: 1, channels: 161, .. })));
        let bad_ids = SearchSpace { searchable_max_id: 10, ..SearchSpace::oneshot_plus() };
        assert!(matches!(bad_ids.check(), Err(SpaceError::BadScales(_))));
        let mismatch = SearchSpace { stage_repeats: vec![4, 4, 8], ..SearchSpace::oneshot_plus() };
        assert!(matches!(mismatch.check(), Err(SpaceError::StageMismatch { .. })));
        for (bad, expected) in [
            (SearchSpace { input_size: 1 << 20, ..SearchSpace::oneshot_plus() }, "input size 1048576 px"),
            (SearchSpace { candidate_scales: vec![1.0; 300], ..SearchSpace::oneshot_plus() }, "300 candidate scales"),
            (SearchSpace { num_classes: 1_000_000_000, ..SearchSpace::oneshot_plus() }, "1000000000 classes"),
            (SearchSpace { input_channels: 1 << 20, ..SearchSpace::oneshot_plus() }, "input_channels 1048576"),
            (SearchSpace { candidate_scales: vec![1e30; 10], ..SearchSpace::oneshot_plus() }, "widest block's mid"),
        ] {
            let err = bad.check().unwrap_err();
            assert!(matches!(err, SpaceError::TooLarge(_)) && err.to_string().contains(expected), "{err}");
        }
        for dropout in [1.0, -0.1, f64::NAN] {
            let bad = SearchSpace { dropout, ..SearchSpace::oneshot_plus() };
            assert!(matches!(bad.check(), Err(SpaceError::BadDropout(_))), "{dropout}");
        }
        // The smallest scale need not come first: 0.01 of a 64-channel stage is 0 channels.
        let unsorted = SearchSpace {
            candidate_scales: vec![1.0, 0.01],
            searchable_min_id: 0,
            searchable_max_id: 1,
            ..SearchSpace::oneshot_plus()
        };
        assert!(matches!(unsorted.check(), Err(SpaceError::BadScales(m)) if m.contains("scale 0.01 gives 0")));
        // No scales at all: errors, not an index panic.
        let empty = SearchSpace { candidate_scales: Vec::new(), ..SearchSpace::oneshot_plus() };
        assert!(matches!(empty.supernet_slots(), Err(SpaceError::BadScales(_))));
        assert!(empty.validate(&Architecture::oneshot_s_plus()).is_err());
    }

    #[test]
    fn make_divisible_rounds_like_mobilenet() {
        assert_eq!(make_divisible(40.0, 8), 40);
        assert_eq!(make_divisible(57.6, 8), 56);
        assert_eq!(make_divisible(3.0, 8), 8);
        assert_eq!(make_divisible(20.0, 8), 24);
        let space = SearchSpace { mid_channel_rule: MidChannelRule::MakeDivisible(8), ..SearchSpace::oneshot_plus() };
        assert_eq!(space.mid_channels(64, 1.8), 56);
        let zero = SearchSpace { mid_channel_rule: MidChannelRule::MakeDivisible(0), ..SearchSpace::oneshot_plus() };
        assert!(matches!(zero.check(), Err(SpaceError::Zero(what)) if what.contains("divisor")));
    }

    #[test]
    fn the_supernet_holds_every_block_at_maximum_width() {
        let slots = SearchSpace::oneshot_plus().supernet_slots().unwrap();
        assert_eq!(slots.len(), 20);
        for (position, blocks) in slots.iter().enumerate() {
            for (choice, block) in BlockChoice::ALL.iter().zip(blocks) {
                assert_eq!(block.choice, *choice);
                assert_eq!(block.mid_channels, block.slot.out_channels, "position {position}");
            }
        }
    }
}
