//! # shufflenas-train
//!
//! Training for ShuffleNAS, generic over `B: AutodiffBackend`:
//! - [`data`]: loaders for IDX (MNIST / Fashion-MNIST), CIFAR-10/100 binaries and
//!   ImageNet-style folders, an embedded Fashion-MNIST subset, the seed's transforms and
//!   multi-threaded batching;
//! - [`trainer`]: one loop for supernets and subnets (SGD Nesterov, warm-up + cosine LR,
//!   label smoothing, no weight decay on BN and biases), atomic checkpoints and exact
//!   resume, data-parallel and (feature `ddp`) multi-node training;
//! - [`sampler`] and [`schedule`]: the supernet's single-path sampling and channel
//!   warm-up; [`recalibrate`]: BN recalibration of a candidate subnet;
//! - [`warmup`]: compiles a JIT backend's kernels ahead of a run, piece by piece, in
//!   as many processes as there are cores.
//!
//! Train a tiny supernet for one epoch on part of the embedded subset, with uniform
//! single-path sampling and the channel warm-up:
//!
//! ```
//! use std::sync::Arc;
//! use burn::backend::{Autodiff, Flex};
//! use shufflenas_model::SearchSpace;
//! use shufflenas_model::nn::SupernetConfig;
//! use shufflenas_train::data::{BatchLoader, Normalization, Transform, embedded_fashion_mnist};
//! use shufflenas_train::sampler::{PathSampler, Sampling};
//! use shufflenas_train::schedule::ChannelSchedule;
//! use shufflenas_train::trainer::{TrainConfig, Trainer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Default::default();
//! let space = SearchSpace::tiny(1, 10); // grey 32×32 images, 10 classes
//! let images = Arc::new(embedded_fashion_mnist(false)?.subset((0..32).collect())?);
//! let train = BatchLoader::new(images, Transform::SmallEval { size: 32, norm: Normalization::fashion_mnist() }, 16, 1)?;
//! let schedule = ChannelSchedule::WarmUp { epochs: 1, lowest: 2, highest: 9 };
//! let sampler = PathSampler::new(space.clone(), schedule, Sampling::Uniform, 0)?;
//! let trainer = Trainer {
//!     config: TrainConfig { epochs: 1, warmup_epochs: 0, ..TrainConfig::default() },
//!     train: &train,
//!     valid: None,
//!     sampler: Some(&sampler),
//!     dir: std::env::temp_dir().join(format!("shufflenas-doc-{}", std::process::id())),
//!     model_id: "tiny supernet".into(),
//!     stop_after: None,
//!     on_step: None,
//! };
//! let supernet = SupernetConfig::new(space).init::<Autodiff<Flex>>(&device)?;
//! let (_supernet, history) = trainer.fit(supernet, &device, false, &mut |_| {})?;
//! assert!(history[0].train_loss.is_finite());
//! # std::fs::remove_dir_all(&trainer.dir)?;
//! # Ok(())
//! # }
//! ```

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
pub mod warmup;
