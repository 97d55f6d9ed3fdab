//! Evaluations already paid for: keyed by the evaluator's context (weights and data
//! sample) and the genome, so a repeat costs nothing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use shufflenas_model::Architecture;

use crate::SearchError;
use crate::evaluator::Evaluation;

/// A cache of evaluations for one evaluator context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalCache {
    /// The evaluator context the entries belong to.
    pub context: String,
    /// Evaluation per genome (`BLOCKS;CHANNELS` text).
    pub entries: BTreeMap<String, Evaluation>,
}

impl EvalCache {
    /// An empty cache for `context`.
    pub fn new(context: &str) -> Self {
        Self { context: context.to_string(), entries: BTreeMap::new() }
    }

    /// The cached evaluation of `arch`.
    pub fn get(&self, arch: &Architecture) -> Option<Evaluation> {
        self.entries.get(&arch.to_string()).copied()
    }

    /// Stores an evaluation.
    pub fn insert(&mut self, arch: &Architecture, evaluation: Evaluation) {
        self.entries.insert(arch.to_string(), evaluation);
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Loads the cache file at `path` if it exists and belongs to `context`; otherwise
    /// an empty cache (entries of another context are never used).
    ///
    /// # Errors
    /// [`SearchError::State`] for an unreadable or corrupt file.
    pub fn load_or_new(path: &Path, context: &str) -> Result<Self, SearchError> {
        if !path.is_file() {
            return Ok(Self::new(context));
        }
        let text = std::fs::read_to_string(path).map_err(|e| SearchError::State(format!("{}: {e}", path.display())))?;
        let cache: Self = serde_json::from_str(&text).map_err(|e| {
            SearchError::State(format!(
                "{}: corrupt cache: {e} (delete it to search without the cached evaluations)",
                path.display()
            ))
        })?;
        Ok(if cache.context == context { cache } else { Self::new(context) })
    }

    /// Merges the entries of `other` when it has the same context.
    pub fn merge(&mut self, other: &Self) {
        if other.context == self.context {
            self.entries.extend(other.entries.iter().map(|(k, v)| (k.clone(), *v)));
        }
    }

    /// Writes the cache atomically.
    ///
    /// # Errors
    /// [`SearchError::State`] when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), SearchError> {
        crate::write_json(path, self)
    }
}
