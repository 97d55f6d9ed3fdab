//! # shufflenas-model
//!
//! The ShuffleNAS search space (Single Path One Shot with ShuffleNetV2 choice blocks,
//! squeeze-excitation, hard-swish and a MobileNetV3 head), its genomes, the one decode
//! step from genome to per-block plan, and the MicroNet op list of any architecture.
//!
//! Flow: [`Architecture`] + [`SearchSpace`] → [`SearchSpace::decode`] → [`NetworkPlan`]
//! → [`cost::network_ops`] (MicroNet counts). The Burn modules are built from the same plan.
//!
//! ```
//! use micronet_score::{Baseline, Convention};
//! use shufflenas_model::{cost, Architecture, SearchSpace};
//!
//! let space = SearchSpace::oneshot_plus();
//! let net = cost::architecture_ops(&space, &Architecture::oneshot_s_plus()).unwrap();
//! let counts = net.counts(&Convention::default());
//! assert_eq!(counts.flops(), 587_943_232);
//! let scores = counts.scores(&Baseline::default());
//! assert_eq!(format!("{:.2} {:.2} {:.2}", scores.fp32, scores.fp16, scores.int8), "1.03 0.64 0.28");
//! ```

#![warn(missing_docs)]
// Burn slices take one range per dimension: `[0..c]` is a 1-D slice, not a mistake.
#![allow(clippy::single_range_in_vec_init)]

pub mod cost;
mod error;
mod genome;
pub mod nn;
mod space;
pub mod weights;

pub use cost::CostTable;
pub use error::{ArchError, GeneKind, SpaceError};
pub use genome::{Architecture, BlockChoice, ChannelChoice};
pub use space::{
    Activation, BlockPlan, BlockSlot, HeadPlan, Layout, MidChannelRule, NetworkPlan, SearchSpace, StemPlan,
    make_divisible,
};
