//! Architecture genes: one block choice and one channel choice per choice block.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{ArchError, GeneKind};
use crate::space::SearchSpace;

/// The four candidate blocks of each choice position (upstream ids 0..=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum BlockChoice {
    /// ShuffleNetV2 block with a 3×3 depthwise conv.
    Snb3 = 0,
    /// ShuffleNetV2 block with a 5×5 depthwise conv.
    Snb5 = 1,
    /// ShuffleNetV2 block with a 7×7 depthwise conv.
    Snb7 = 2,
    /// Shuffle-Xception block: three 3×3 depthwise + pointwise stages.
    Sxb3 = 3,
}

impl BlockChoice {
    /// All four choices, in id order.
    pub const ALL: [BlockChoice; 4] = [Self::Snb3, Self::Snb5, Self::Snb7, Self::Sxb3];

    /// Upstream id (0..=3).
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// Depthwise kernel side.
    pub const fn kernel(self) -> usize {
        match self {
            Self::Snb3 | Self::Sxb3 => 3,
            Self::Snb5 => 5,
            Self::Snb7 => 7,
        }
    }

    /// Whether this is the Xception-style block.
    pub const fn is_xception(self) -> bool {
        matches!(self, Self::Sxb3)
    }

    /// Name as in the seed's profile table, e.g. `SNB-5x5`.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Snb3 => "SNB-3x3",
            Self::Snb5 => "SNB-5x5",
            Self::Snb7 => "SNB-7x7",
            Self::Sxb3 => "SXB-3x3",
        }
    }
}

impl TryFrom<u8> for BlockChoice {
    type Error = ArchError;
    fn try_from(id: u8) -> Result<Self, ArchError> {
        Self::ALL.get(usize::from(id)).copied().ok_or(ArchError::BlockId(id))
    }
}

impl From<BlockChoice> for u8 {
    fn from(choice: BlockChoice) -> u8 {
        choice.id()
    }
}

/// An id into the search space's candidate scale list (upstream-compatible: with the
/// default list, 0 = 0.2, …, 9 = 2.0). Validated against a [`SearchSpace`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChannelChoice(pub u8);

impl ChannelChoice {
    /// The id as an index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A genome: one [`BlockChoice`] and one [`ChannelChoice`] per choice block
/// (20 each in the seed's space).
///
/// ```
/// use shufflenas_model::{Architecture, SearchSpace};
///
/// let arch: Architecture = "0,0,0,1,0,0,1,0,3,2,0,1,2,2,1,2,0,0,2,0;8,7,6,8,5,7,3,4,2,4,2,3,4,5,6,6,3,3,4,6"
///     .parse()
///     .unwrap();
/// assert_eq!(arch, Architecture::oneshot_s_plus());
/// assert!(SearchSpace::oneshot_plus().validate(&arch).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Architecture {
    /// Block choice per position.
    pub blocks: Vec<BlockChoice>,
    /// Channel choice per position.
    pub channels: Vec<ChannelChoice>,
}

impl Architecture {
    /// A genome from raw upstream ids. Block ids are checked here (0..=3); channel ids are
    /// checked against a space by [`SearchSpace::validate`].
    ///
    /// # Errors
    /// [`ArchError::ListLengths`] when the two lists differ in length,
    /// [`ArchError::OutOfRange`] for a block id above 3.
    pub fn from_ids(blocks: &[u8], channels: &[u8]) -> Result<Self, ArchError> {
        if blocks.len() != channels.len() {
            return Err(ArchError::ListLengths { blocks: blocks.len(), channels: channels.len() });
        }
        let blocks = blocks
            .iter()
            .enumerate()
            .map(|(index, &id)| {
                BlockChoice::try_from(id).map_err(|_| ArchError::OutOfRange {
                    kind: GeneKind::Block,
                    index,
                    value: i64::from(id),
                    min: 0,
                    max: 3,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { blocks, channels: channels.iter().map(|&c| ChannelChoice(c)).collect() })
    }

    /// Parses upstream's two comma strings, e.g. `"0, 0, 3, 1, ..."` and `"6, 5, 3, ..."`
    /// (brackets and spaces are allowed).
    ///
    /// # Errors
    /// [`ArchError::BadToken`] or [`ArchError::OutOfRange`] naming the gene index.
    pub fn parse_genes(blocks: &str, channels: &str) -> Result<Self, ArchError> {
        let blocks = parse_list(blocks, GeneKind::Block, 3)?;
        let channels = parse_list(channels, GeneKind::Channel, u8::MAX as usize)?;
        Self::from_ids(&blocks, &channels)
    }

    /// A genome with the same block and channel choice everywhere.
    pub fn uniform(len: usize, block: BlockChoice, channel: ChannelChoice) -> Self {
        Self { blocks: vec![block; len], channels: vec![channel; len] }
    }

    /// OneShot-S+, the seed's searched model (588M MicroNet FLOPs, 3.65M params with SE
    /// and the MobileNetV3 head).
    pub fn oneshot_s_plus() -> Self {
        Self::from_ids(
            &[0, 0, 0, 1, 0, 0, 1, 0, 3, 2, 0, 1, 2, 2, 1, 2, 0, 0, 2, 0],
            &[8, 7, 6, 8, 5, 7, 3, 4, 2, 4, 2, 3, 4, 5, 6, 6, 3, 3, 4, 6],
        )
        .expect("preset genes are valid")
    }

    /// The seed's "OneShot (our)" row: no SE, original head.
    pub fn oneshot() -> Self {
        Self::from_ids(
            &[0, 0, 3, 1, 1, 1, 0, 0, 2, 0, 2, 1, 1, 0, 2, 0, 2, 1, 3, 2],
            &[6, 5, 3, 5, 2, 6, 3, 4, 2, 5, 7, 5, 4, 6, 7, 4, 4, 5, 4, 3],
        )
        .expect("preset genes are valid")
    }

    /// The largest subnet of the seed's space ([`SearchSpace::oneshot_plus`]): the genome
    /// with the most MicroNet FLOPs (1706.6M), every block at scale 2.0 (id 9). It is
    /// found from the cost table, position by position: SNB-7 where the block has
    /// stride 2, SXB-3 elsewhere.
    pub fn supernet_max() -> Self {
        let space = SearchSpace::oneshot_plus();
        crate::CostTable::new(&space, micronet_score::Convention::default())
            .expect("the seed's space is valid")
            .argmax(|counts| counts.flops() as f64)
    }

    /// A named preset: `oneshot-s+`, `oneshot` or `supernet-max` (case-insensitive;
    /// `_` and `-` are interchangeable).
    ///
    /// # Errors
    /// [`ArchError::UnknownPreset`].
    pub fn preset(name: &str) -> Result<Self, ArchError> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "oneshot-s+" | "oneshot-s-plus" | "oneshot-splus" => Ok(Self::oneshot_s_plus()),
            "oneshot" => Ok(Self::oneshot()),
            "supernet-max" => Ok(Self::supernet_max()),
            _ => Err(ArchError::UnknownPreset(name.to_string())),
        }
    }

    /// A uniformly random genome over all block choices and the space's searchable
    /// channel ids.
    pub fn random<R: Rng + ?Sized>(space: &SearchSpace, rng: &mut R) -> Self {
        let n = space.num_blocks();
        let ids = space.searchable_channel_ids();
        let blocks = (0..n).map(|_| BlockChoice::ALL[rng.random_range(0..4)]).collect();
        let channels = (0..n).map(|_| ChannelChoice(ids[rng.random_range(0..ids.len())] as u8)).collect();
        Self { blocks, channels }
    }

    /// A uniformly random genome from a seed (ChaCha8: the same on every platform).
    pub fn random_seeded(space: &SearchSpace, seed: u64) -> Self {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Self::random(space, &mut rng)
    }

    /// Number of choice blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the genome has no genes.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Upstream-style block string, e.g. `0,0,3,1,...`.
    pub fn block_string(&self) -> String {
        join(self.blocks.iter().map(|b| b.id()))
    }

    /// Upstream-style channel string, e.g. `6,5,3,5,...`.
    pub fn channel_string(&self) -> String {
        join(self.channels.iter().map(|c| c.0))
    }
}

fn join(ids: impl Iterator<Item = u8>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

fn parse_list(text: &str, kind: GeneKind, max: usize) -> Result<Vec<u8>, ArchError> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']').trim();
    if inner.is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .enumerate()
        .map(|(index, token)| {
            let token = token.trim();
            let value: i64 =
                token.parse().map_err(|_| ArchError::BadToken { kind, index, token: token.to_string() })?;
            if value < 0 || value > max as i64 {
                // Channel ids are checked against a space's scale list later
                // (`SearchSpace::validate`); here only against what an id can hold.
                return Err(ArchError::OutOfRange { kind, index, value, min: 0, max });
            }
            Ok(value as u8)
        })
        .collect()
}

/// `BLOCKS;CHANNELS`, two comma lists.
impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};{}", self.block_string(), self.channel_string())
    }
}

/// Parses `BLOCKS;CHANNELS` (two comma lists, as printed by `Display`).
impl FromStr for Architecture {
    type Err = ArchError;
    fn from_str(s: &str) -> Result<Self, ArchError> {
        let parts: Vec<&str> = s.split(';').collect();
        if parts.len() != 2 {
            let shown: String = s.chars().take(80).collect();
            return Err(ArchError::Malformed {
                input: shown,
                reason: format!(
                    "expected two comma lists separated by ';' (BLOCKS;CHANNELS), found {} part(s)",
                    parts.len()
                ),
            });
        }
        Self::parse_genes(parts[0], parts[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let arch = Architecture::oneshot();
        let text = arch.to_string();
        assert!(text.starts_with("0,0,3,1,1,1"));
        assert_eq!(text.parse::<Architecture>().unwrap(), arch);
    }

    // Upstream prints genes as Python lists with spaces: the parser must take them as-is.
    #[test]
    fn parses_upstream_comma_strings_with_spaces_and_brackets() {
        let arch = Architecture::parse_genes(
            "[0, 0, 3, 1, 1, 1, 0, 0, 2, 0, 2, 1, 1, 0, 2, 0, 2, 1, 3, 2]",
            "6, 5, 3, 5, 2, 6, 3, 4, 2, 5, 7, 5, 4, 6, 7, 4, 4, 5, 4, 3",
        )
        .unwrap();
        assert_eq!(arch, Architecture::oneshot());
    }

    #[test]
    fn serde_json_round_trip_uses_upstream_ids() {
        let arch = Architecture::oneshot_s_plus();
        let json = serde_json::to_string(&arch).unwrap();
        assert!(json.starts_with("{\"blocks\":[0,0,0,1,0,0,1,0,3,2"));
        assert_eq!(serde_json::from_str::<Architecture>(&json).unwrap(), arch);
        let bad = json.replacen("[0,", "[7,", 1);
        let err = serde_json::from_str::<Architecture>(&bad).unwrap_err().to_string();
        assert!(err.contains("block id 7 names no block"), "{err}");
    }

    #[test]
    fn a_bad_block_id_names_the_gene_and_the_range() {
        let err = "0,0,4;1,1,1".parse::<Architecture>().unwrap_err();
        assert_eq!(err, ArchError::OutOfRange { kind: GeneKind::Block, index: 2, value: 4, min: 0, max: 3 });
        assert_eq!(err.to_string(), "block gene 2 is 4, allowed range is 0..=3");
        let err = "0,0,0;1,300,1".parse::<Architecture>().unwrap_err();
        assert_eq!(err.to_string(), "channel gene 1 is 300, allowed range is 0..=255");
    }

    #[test]
    fn malformed_strings_get_typed_errors() {
        assert!(matches!("0,1,2".parse::<Architecture>(), Err(ArchError::Malformed { .. })));
        assert!(matches!(
            "0,x,2;1,1,1".parse::<Architecture>(),
            Err(ArchError::BadToken { kind: GeneKind::Block, index: 1, .. })
        ));
        assert!(matches!(
            "0,1;1,-1".parse::<Architecture>(),
            Err(ArchError::OutOfRange { kind: GeneKind::Channel, index: 1, value: -1, .. })
        ));
        let err = "0,1;1".parse::<Architecture>().unwrap_err();
        assert_eq!(err, ArchError::ListLengths { blocks: 2, channels: 1 });
        assert!(err.to_string().contains("got 2 block genes and 1 channel genes"), "{err}");
    }

    #[test]
    fn presets_are_found_by_name() {
        assert_eq!(Architecture::preset("OneShot-S+").unwrap(), Architecture::oneshot_s_plus());
        assert_eq!(Architecture::preset("supernet_max").unwrap(), Architecture::supernet_max());
        assert!(matches!(Architecture::preset("resnet"), Err(ArchError::UnknownPreset(_))));
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_stays_in_the_searchable_subset() {
        let space = SearchSpace::oneshot_plus();
        let a = Architecture::random_seeded(&space, 7);
        assert_eq!(a, Architecture::random_seeded(&space, 7));
        assert_ne!(a, Architecture::random_seeded(&space, 8));
        for seed in 0..200 {
            let arch = Architecture::random_seeded(&space, seed);
            space.validate_searchable(&arch).unwrap();
        }
    }
}
