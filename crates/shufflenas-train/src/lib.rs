//! # shufflenas-train
//!
//! Data pipeline for ShuffleNAS training: loaders for IDX (MNIST / Fashion-MNIST),
//! CIFAR-10/100 binaries and ImageNet-style folders, an embedded Fashion-MNIST subset,
//! the seed's transforms and multi-threaded batching.

pub mod data;
