//! # shufflenas
//!
//! Weight-sharing one-shot neural architecture search (Single Path One Shot with
//! ShuffleNetV2 choice blocks, squeeze-excitation, hard-swish and a MobileNetV3 head)
//! in pure Rust on [Burn](https://burn.dev).
//!
//! This package re-exports the workspace crates and holds what the examples share:
//! - [`micronet_score`]: MicroNet Challenge counting;
//! - [`model`]: search space, genomes, plans, op lists (and the Burn modules);
//! - [`train`](crate::train): training;
//! - [`search`](crate::search): architecture search.
//!
//! The tensor backend is chosen with a cargo feature: `flex` (CPU, default), `wgpu`
//! or `cuda`.

#![warn(missing_docs)]

pub use micronet_score;
pub use shufflenas_model as model;
pub use shufflenas_search as search;
pub use shufflenas_train as train;

/// mimalloc as the global allocator (feature `mimalloc`, on by default). CPU training
/// and inference allocate and free many large tensors; glibc's allocator returns them
/// to the OS and page-faults them back in, which costs more than the arithmetic
/// (e.g. a `cat` of two 25 MB tensors: 38 ms with glibc, 3.8 ms with mimalloc).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod backend;
pub mod cli;
pub mod data_args;
/// File helpers (atomic writes), shared with the training crate.
pub use shufflenas_train::io;
pub mod npy;
pub mod pipeline;
pub mod search_args;
pub mod train_args;
