//! # shufflenas-train
//!
//! Data pipeline for ShuffleNAS training: loaders for IDX (MNIST / Fashion-MNIST),
//! CIFAR-10/100 binaries and ImageNet-style folders, an embedded Fashion-MNIST subset,
//! the seed's transforms and multi-threaded batching.

#![warn(missing_docs)]
// Burn slices take one range per dimension: `[0..c]` is a 1-D slice, not a mistake.
#![allow(clippy::single_range_in_vec_init)]

pub mod checkpoint;
pub mod data;
#[cfg(feature = "ddp")]
pub mod ddp;
pub mod distill;
pub mod io;
pub mod mixup;
pub mod optim;
pub mod recalibrate;
pub mod sampler;
pub mod schedule;
pub mod trainer;
