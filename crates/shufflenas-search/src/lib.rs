//! # shufflenas-search
//!
//! Architecture search over a trained ShuffleNAS supernet: the seed's genetic
//! algorithm over 20 block genes and 20 channel genes, a random-search baseline with
//! the same budget, hard caps on FLOPs / MACs / params / MicroNet score / predicted
//! latency checked with the analytic cost, an evaluation cache, per-generation atomic
//! checkpoints with exact resume, Pareto fronts, and markdown/SVG reports.
//!
//! ```
//! use micronet_score::Convention;
//! use shufflenas_model::{Architecture, CostTable, SearchSpace};
//! use shufflenas_search::{
//!     Constraints, CostModel, Evaluation, Evaluator, GeneticConfig, GenomeDomain, NoObserver, Objective, Search,
//!     SearchError,
//! };
//!
//! // A toy fitness: prefer wide channels (a real search uses `SupernetEvaluator`).
//! struct Wide;
//! impl Evaluator for Wide {
//!     fn context(&self) -> &str { "wide" }
//!     fn evaluate(&mut self, archs: &[Architecture]) -> Result<Vec<Evaluation>, SearchError> {
//!         Ok(archs.iter().map(|a| {
//!             let top1 = a.channels.iter().map(|c| f64::from(c.0)).sum::<f64>() / 180.0;
//!             Evaluation { top1, top5: top1 }
//!         }).collect())
//!     }
//! }
//!
//! let space = SearchSpace::oneshot_plus();
//! let cost = CostModel { table: CostTable::new(&space, Convention::default()).unwrap(), latency: None };
//! let search = Search {
//!     cost: &cost,
//!     domain: GenomeDomain::of(&space),
//!     constraints: Constraints { max_flops: Some(600e6), ..Constraints::default() },
//!     objective: Objective::Accuracy,
//!     dir: None,
//!     stop_after: None,
//! };
//! let config = GeneticConfig { population: 12, retain: 4, iterations: 3, ..GeneticConfig::default() };
//! let result = search.genetic(&config, &mut Wide, &mut NoObserver).unwrap();
//! assert!(result.best().cost.flops <= 600e6);
//! ```

#![warn(missing_docs)]

pub mod cache;
pub mod constraint;
pub mod domain;
pub mod evaluator;
pub mod latency;
pub mod pareto;
pub mod plot;
pub mod ranking;
pub mod report;
pub mod search;

use std::path::Path;

pub use cache::EvalCache;
pub use constraint::{Comparison, Constraints, Cost, CostModel};
pub use domain::GenomeDomain;
pub use evaluator::{Evaluation, Evaluator, SupernetEvaluator, load_supernet};
pub use latency::{LatencyStat, LatencyTable};
pub use search::{
    Candidate, GenerationSummary, GeneticConfig, NoObserver, Objective, Observer, RandomConfig, Search, SearchResult,
};
use shufflenas_model::{ArchError, SpaceError};
use shufflenas_train::trainer::TrainError;

/// Errors of search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// No genome of the domain meets the constraints.
    #[error("impossible constraints: {0}")]
    Impossible(String),
    /// Bad search settings (population smaller than the retained count, …).
    #[error("invalid search settings: {0}")]
    Settings(String),
    /// A fixed genome or domain that does not fit the space.
    #[error("invalid genome domain: {0}")]
    Domain(String),
    /// Nothing to validate on.
    #[error("empty data: {0}")]
    EmptyValidation(String),
    /// A supernet checkpoint that is missing, corrupt or for another space.
    #[error("supernet checkpoint: {0}")]
    Checkpoint(String),
    /// Reading data failed.
    #[error("data: {0}")]
    Data(String),
    /// Search state or output files.
    #[error("search state: {0}")]
    State(String),
    /// A latency table problem.
    #[error("latency table: {0}")]
    Latency(String),
    /// An invalid genome.
    #[error(transparent)]
    Arch(#[from] ArchError),
    /// An invalid space.
    #[error(transparent)]
    Space(#[from] SpaceError),
    /// Training or recalibration failed.
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// Writes `value` as pretty JSON, atomically (temp file + rename).
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), SearchError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| SearchError::State(format!("{}: {e}", path.display())))?;
    write_text(path, &text)
}

/// Writes text atomically (temp file + rename).
pub(crate) fn write_text(path: &Path, text: &str) -> Result<(), SearchError> {
    shufflenas_train::io::write_atomic(path, text.as_bytes())
        .map_err(|e| SearchError::State(format!("{}: {e}", path.display())))
}
