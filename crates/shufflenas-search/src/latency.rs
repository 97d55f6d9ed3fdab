//! Latency lookup table: the measured time of every (position, block, channel) choice
//! on the user's own backend and device, so that a genome's latency is predicted as
//! the fixed part (stem + head) plus one entry per position.

use serde::{Deserialize, Serialize};
use shufflenas_model::{Architecture, BlockChoice, ChannelChoice};

use crate::SearchError;

/// Mean, standard deviation and number of timed runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStat {
    /// Mean time in milliseconds.
    pub mean_ms: f64,
    /// Standard deviation in milliseconds.
    pub std_ms: f64,
    /// Timed runs.
    pub count: usize,
}

/// A measured latency table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyTable {
    /// Backend name (`flex`, `wgpu`, `cuda`).
    pub backend: String,
    /// Device description.
    pub device: String,
    /// Batch size of the timed runs.
    pub batch: usize,
    /// Input side of the network.
    pub input_size: usize,
    /// Stem and head together.
    pub fixed: LatencyStat,
    /// `blocks[position][block id][channel id]`; `None` for channel ids not measured.
    pub blocks: Vec<[Vec<Option<LatencyStat>>; 4]>,
}

impl LatencyTable {
    /// Mean time of one choice, if measured.
    pub fn block_ms(&self, position: usize, block: BlockChoice, channel: ChannelChoice) -> Option<f64> {
        self.blocks.get(position)?[block.id() as usize].get(channel.index())?.map(|s| s.mean_ms)
    }

    /// Predicted latency of `arch` in milliseconds.
    ///
    /// # Errors
    /// [`SearchError::Latency`] when the table has another number of positions or
    /// lacks one of the genome's choices.
    pub fn predict(&self, arch: &Architecture) -> Result<f64, SearchError> {
        if arch.len() != self.blocks.len() {
            return Err(SearchError::Latency(format!(
                "the table has {} positions, the genome {}",
                self.blocks.len(),
                arch.len()
            )));
        }
        let mut total = self.fixed.mean_ms;
        for (position, (&block, &channel)) in arch.blocks.iter().zip(&arch.channels).enumerate() {
            total += self.block_ms(position, block, channel).ok_or_else(|| {
                SearchError::Latency(format!(
                    "no entry for position {position}, block {}, channel id {}",
                    block.id(),
                    channel.0
                ))
            })?;
        }
        Ok(total)
    }
}
