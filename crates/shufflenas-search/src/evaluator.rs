//! Fitness evaluation of genomes. [`Evaluator`] is the plug-in point; the
//! [`SupernetEvaluator`] is the seed's: recalibrate BN of the genome's path on a fixed
//! set of training images, then measure top-1 on a validation split, with the
//! supernet's weights (on the genome's extracted network, batch norm folded).

use std::path::Path;

use burn::prelude::*;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use serde::{Deserialize, Serialize};
use shufflenas_model::nn::{Supernet, SupernetConfig};
use shufflenas_model::{Architecture, SearchSpace};
use shufflenas_train::checkpoint::{load_checked, tensor_shapes};
use shufflenas_train::data::BatchLoader;
use shufflenas_train::recalibrate::recalibrate_supernet;
use shufflenas_train::trainer::{TrainError, ValidNet};

use crate::SearchError;

/// What an evaluation measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Top-1 accuracy in [0, 1].
    pub top1: f64,
    /// Top-5 accuracy in [0, 1].
    pub top5: f64,
}

/// Measures genomes. Implement it to plug in your own fitness (a proxy, a latency
/// measurement, a short training run).
pub trait Evaluator {
    /// Text identifying everything the result depends on besides the genome (weights,
    /// data sample, settings): part of every cache key.
    fn context(&self) -> &str;

    /// How many genomes [`Evaluator::evaluate`] runs at once (the search hands it
    /// batches of this size, for progress reporting).
    fn parallelism(&self) -> usize {
        1
    }

    /// Evaluates every genome; results in the same order.
    ///
    /// # Errors
    /// [`SearchError`] when a genome cannot be built or data cannot be read.
    fn evaluate(&mut self, archs: &[Architecture]) -> Result<Vec<Evaluation>, SearchError>;
}

/// FNV-1a, 64 bit: a stable digest for cache keys.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>, mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Digest of the first `images` images (all when 0) and labels a loader yields in epoch 0.
///
/// # Errors
/// [`SearchError::Data`] when a batch cannot be read.
pub fn data_digest(data: &BatchLoader, images: usize) -> Result<(u64, usize), SearchError> {
    let (mut hash, mut seen) = (FNV_OFFSET, 0);
    for batch in data.epoch(0) {
        let batch = batch.map_err(|e| SearchError::Data(e.to_string()))?;
        let per_image = batch.images.len() / batch.labels.len().max(1);
        for (i, label) in batch.labels.iter().enumerate() {
            if images > 0 && seen >= images {
                return Ok((hash, seen));
            }
            let pixels = &batch.images[i * per_image..(i + 1) * per_image];
            hash = fnv1a(pixels.iter().flat_map(|v| v.to_le_bytes()), hash);
            hash = fnv1a(label.to_le_bytes(), hash);
            seen += 1;
        }
    }
    Ok((hash, seen))
}

/// Digest of a module's weights and running statistics (a supernet's, a fixed
/// network's): the same for the same checkpoint wherever its file lies.
pub fn weights_digest<B: Backend, M: Module<B>>(module: &M) -> Result<u64, SearchError> {
    materialize(module);
    let bytes = BinBytesRecorder::<FullPrecisionSettings>::new()
        .record(module.clone().into_record(), ())
        .map_err(|e| SearchError::Checkpoint(e.to_string()))?;
    Ok(fnv1a(bytes, FNV_OFFSET))
}

/// Loads a supernet of `space` from a checkpoint: a trainer run directory (its
/// `latest.json`), a checkpoint folder, or a `model.mpk` file.
///
/// # Errors
/// [`SearchError::Checkpoint`] when the file is missing or unreadable, or when its
/// tensors do not match the space (another layout, width or number of classes).
pub fn load_supernet<B: Backend>(
    path: &Path,
    space: &SearchSpace,
    device: &B::Device,
) -> Result<Supernet<B>, SearchError> {
    let fresh = SupernetConfig::new(space.clone()).init::<B>(device)?;
    load_checked(fresh, path, device).map_err(|e| match e {
        TrainError::Checkpoint { ref reason, .. } if reason.starts_with("does not match") => {
            SearchError::Checkpoint(format!("{e} (is it a supernet of this search space?)"))
        }
        other => SearchError::Checkpoint(other.to_string()),
    })
}

/// Initialises every lazily initialised parameter in place (see [`tensor_shapes`]):
/// replicas and digests of a fresh supernet would otherwise all differ.
fn materialize<B: Backend, M: Module<B>>(module: &M) {
    let _ = tensor_shapes(module);
}

/// The seed's evaluator: per genome, exact BN recalibration of its path on a fixed set
/// of training images, then top-1/top-5 on the validation loader, measured on the
/// genome's network extracted from the supernet with its batch norms folded. Genomes
/// are spread over supernet replicas, one thread each (one replica per device, or
/// several on one CPU when the backend runs each op on one thread).
pub struct SupernetEvaluator<'a, B: Backend> {
    replicas: Vec<Supernet<B>>,
    recalibration: &'a BatchLoader,
    images: usize,
    validation: &'a BatchLoader,
    context: String,
}

impl<'a, B: Backend> SupernetEvaluator<'a, B> {
    /// An evaluator with one replica of `supernet` per entry of `devices` (repeat a
    /// device to run several threads on it). `recalibration` should yield training
    /// images with the evaluation transform; its first `images` are used.
    ///
    /// # Errors
    /// [`SearchError::EmptyValidation`] for an empty validation split or no
    /// recalibration images, [`SearchError::Data`] when data cannot be read.
    pub fn new(
        supernet: &Supernet<B>,
        devices: &[B::Device],
        recalibration: &'a BatchLoader,
        images: usize,
        validation: &'a BatchLoader,
    ) -> Result<Self, SearchError> {
        if validation.is_empty() {
            return Err(SearchError::EmptyValidation("the validation split has no images".into()));
        }
        if recalibration.is_empty() || images == 0 {
            return Err(SearchError::EmptyValidation("BN recalibration needs at least one training image".into()));
        }
        let (recal_hash, recal_seen) = data_digest(recalibration, images)?;
        let (valid_hash, valid_seen) = data_digest(validation, 0)?;
        let context = format!(
            "weights {:016x} | recalibration {recal_seen} images {recal_hash:016x} | validation {valid_seen} images \
             {valid_hash:016x} | BN folded",
            weights_digest(supernet)?
        );
        let space = supernet.space().clone();
        let replicas = if devices.is_empty() { vec![supernet.stem.conv.weight.device()] } else { devices.to_vec() }
            .iter()
            .map(|device| {
                let fresh = SupernetConfig::new(space.clone()).init::<B>(device)?;
                Ok(fresh.load_record(supernet.clone().into_record()))
            })
            .collect::<Result<Vec<_>, SearchError>>()?;
        Ok(Self { replicas, recalibration, images, validation, context })
    }

    /// Recalibrates the BN of `arch`'s path in `replica`, then measures the genome's fixed
    /// network, extracted with those statistics and its batch norms folded into the
    /// convolutions: the path's outputs to float rounding, with contiguous weights and
    /// no batch-norm pass.
    fn evaluate_on(&self, replica: &Supernet<B>, arch: &Architecture) -> Result<Evaluation, SearchError> {
        let plan = replica.space().decode(arch)?;
        recalibrate_supernet(replica, &plan, self.recalibration, self.images)?;
        let (top1, top5) = replica.extract(arch)?.fuse_bn().accuracy(self.validation, None)?;
        Ok(Evaluation { top1, top5 })
    }
}

impl<B: Backend> Evaluator for SupernetEvaluator<'_, B> {
    fn context(&self) -> &str {
        &self.context
    }

    fn parallelism(&self) -> usize {
        self.replicas.len()
    }

    fn evaluate(&mut self, archs: &[Architecture]) -> Result<Vec<Evaluation>, SearchError> {
        let n = self.replicas.len();
        let this = &*self;
        let per_replica: Vec<Result<Vec<(usize, Evaluation)>, SearchError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = this
                .replicas
                .iter()
                .enumerate()
                .map(|(r, replica)| {
                    scope.spawn(move || {
                        (r..archs.len())
                            .step_by(n)
                            .map(|i| this.evaluate_on(replica, &archs[i]).map(|e| (i, e)))
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .enumerate()
                .map(|(r, h)| {
                    h.join().unwrap_or_else(|_| {
                        Err(SearchError::Data(format!("the evaluation thread of supernet replica {r} panicked")))
                    })
                })
                .collect()
        });
        let mut out = vec![Evaluation { top1: 0.0, top5: 0.0 }; archs.len()];
        for part in per_replica {
            for (i, e) in part? {
                out[i] = e;
            }
        }
        Ok(out)
    }
}
