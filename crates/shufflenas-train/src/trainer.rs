//! Supernet and subnet training: one loop for both, with the seed's recipe (SGD
//! Nesterov, warm-up + cosine LR, label smoothing, decay on weights only), periodic
//! atomic checkpoints, exact resume, and a clear stop on a non-finite loss.
//!
//! A run directory holds `checkpoint-<epoch>/` folders (model, optimizer, state) and
//! `latest.json` naming the newest complete one. A checkpoint folder is written under
//! a temporary name and renamed when complete, and `latest.json` is replaced
//! atomically, so an interruption never leaves a half-written checkpoint as the latest;
//! the previous one is kept.
//!
//! Optional extras: mixup ([`TrainConfig::mixup_alpha`]), knowledge distillation from a
//! teacher ([`TrainConfig::distill`], [`Trainer::fit_with_teacher`]) and a per-step
//! callback for progress bars ([`Trainer::on_step`]).
//!
//! Data parallel: [`Trainer::fit_data_parallel`] splits every batch over several devices
//! (one model replica each) and averages the gradients on the first, with Burn's own
//! pieces (`Module::fork`, `GradientsParams::to_device`, `GradientsAccumulator`), as
//! burn-train's multi-device strategy does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::lr_scheduler::LrScheduler;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};
use shufflenas_model::nn::{ConvBnAct, ShuffleNasNet, Supernet};
use shufflenas_model::{NetworkPlan, SearchSpace, SpaceError};

use crate::data::{BatchLoader, DataError};
use crate::distill::{Distillation, Teacher, distillation_kl, soft_targets};
use crate::mixup::MixPlan;
use crate::optim::{SliceSgd, SliceSgdConfig};
use crate::sampler::{PathSampler, SamplerError};
use crate::schedule::WarmupCosineLr;

/// Hyper-parameters of a training run (the seed's defaults, scaled to small data).
///
/// The JSON form is part of a run's fingerprint (resume refuses another configuration).
/// Options added later are left out of it while they are off, so runs written before
/// they existed still resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs.
    pub epochs: usize,
    /// Peak learning rate (the seed: 1.3 at batch 1024).
    pub lr: f64,
    /// Linear warm-up epochs.
    pub warmup_epochs: usize,
    /// Weight decay on conv/linear weights (3e-5 subnet, 4e-5 supernet).
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub momentum: f64,
    /// Label smoothing.
    pub label_smoothing: f32,
    /// Seed of data order, augmentation and paths.
    pub seed: u64,
    /// Checkpoint every this many epochs (0: only at the end).
    pub checkpoint_every: usize,
    /// Images used to recalibrate BN before each supernet validation path.
    pub recalibration_images: usize,
    /// Paths evaluated per supernet validation.
    pub validation_paths: usize,
    /// Mixup α: each batch is blended with a permutation of itself with weight
    /// λ ~ Beta(α, α) (see [`crate::mixup`]). 0 turns it off; timm uses 0.2–0.8.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mixup_alpha: f64,
    /// Turn mixup off for the last this many epochs (timm's `--mixup-off-epoch`, counted
    /// from the end): the final epochs train on clean images.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub mixup_off_last_epochs: usize,
    /// Knowledge distillation from a teacher (see [`crate::distill`]); needs
    /// [`Trainer::fit_with_teacher`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<Distillation>,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn is_zero_usize(value: &usize) -> bool {
    *value == 0
}

impl TrainConfig {
    /// Checks the options that can be out of range.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first bad option.
    pub fn check(&self) -> Result<(), TrainError> {
        if self.epochs == 0 {
            return Err(TrainError::Config("epochs must be at least 1: a run of 0 epochs trains nothing".into()));
        }
        if !(self.mixup_alpha.is_finite() && self.mixup_alpha >= 0.0) {
            return Err(TrainError::Config(format!(
                "mixup alpha must be 0 (off) or positive, got {}",
                self.mixup_alpha
            )));
        }
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(TrainError::Config(format!("label smoothing must be in [0, 1], got {}", self.label_smoothing)));
        }
        let non_negative = [("learning rate", self.lr), ("weight decay", self.weight_decay)];
        if let Some((name, value)) = non_negative.into_iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
            return Err(TrainError::Config(format!("{name} must be finite and non-negative, got {value}")));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::Config(format!("momentum must be in [0, 1), got {}", self.momentum)));
        }
        if let Some(problem) = self.distill.as_ref().and_then(Distillation::problem) {
            return Err(TrainError::Config(problem));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            lr: 0.1,
            warmup_epochs: 1,
            weight_decay: 4e-5,
            momentum: 0.9,
            label_smoothing: 0.1,
            seed: 0,
            checkpoint_every: 1,
            recalibration_images: 1000,
            validation_paths: 2,
            mixup_alpha: 0.0,
            mixup_off_last_epochs: 0,
            distill: None,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training top-1 accuracy (on the augmented batches).
    pub train_top1: f64,
    /// Validation top-1 (mean over paths for a supernet), if validated.
    pub val_top1: Option<f64>,
    /// Validation top-5.
    pub val_top5: Option<f64>,
    /// Training images per second.
    pub images_per_s: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
}

/// Progress within an epoch, reported after every optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepInfo {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Epochs of the whole run.
    pub epochs: usize,
    /// Steps done in this epoch (1 after the first step).
    pub step: usize,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
    /// Steps done in the whole run, this one included.
    pub global_step: u64,
    /// Loss of this step.
    pub loss: f64,
    /// Mean loss of the epoch so far.
    pub mean_loss: f64,
    /// Training images per second in this epoch so far.
    pub images_per_s: f64,
    /// Learning rate this step used.
    pub lr: f64,
}

/// Errors of training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A genome or space problem.
    #[error(transparent)]
    Space(#[from] SpaceError),
    /// Sampling failed.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// The loss became NaN or infinite.
    #[error("loss is {loss} at epoch {epoch}, step {step}: training stopped; {kept}")]
    NonFinite {
        /// The loss value.
        loss: f64,
        /// Epoch.
        epoch: usize,
        /// Global step.
        step: u64,
        /// What the run directory keeps: its last good checkpoint, or none yet.
        kept: String,
    },
    /// A checkpoint that cannot be written or read.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file or folder.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An option out of range, or distillation without a teacher (or the reverse).
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// A supernet trained or evaluated without a path sampler.
    #[error("a supernet needs a path sampler to train or validate")]
    MissingPath,
    /// A collective operation of distributed training failed (a peer or node is
    /// unreachable, or the peers disagree).
    #[error("distributed training: {0}")]
    Distributed(String),
    /// Training from scratch into a run directory that already holds a run: its
    /// checkpoints would be overwritten one epoch at a time.
    #[error("{dir} already holds a training run (latest.json): resume it, or train into another directory")]
    RunExists {
        /// The run directory.
        dir: String,
    },
    /// A label that the network has no output for: the dataset has more classes than
    /// the network's classifier.
    #[error(
        "label {label} is outside the network's {classes} classes: the dataset and the network's num_classes differ"
    )]
    LabelOutOfRange {
        /// The label.
        label: i64,
        /// Outputs of the network's classifier.
        classes: usize,
    },
    /// A distillation teacher that does not fit the data or the student.
    #[error("the distillation teacher does not fit: {0}")]
    Teacher(String),
    /// Images with another number of channels than the network's first conv takes.
    #[error("the images have {got} channels, the network's first conv takes {expected}")]
    InputChannels {
        /// Channels of the images.
        got: usize,
        /// Input channels of the network.
        expected: usize,
    },
    /// Resuming a run with a different configuration or architecture.
    #[error("cannot resume from {path}: it was written by a different run configuration ({reason})")]
    Incompatible {
        /// The checkpoint.
        path: String,
        /// What differs.
        reason: String,
    },
}

/// A network the loop can train: a supernet (one sampled path per step) or a fixed net.
pub trait TrainNet<B: AutodiffBackend>: AutodiffModule<B> + Clone + Send + 'static {
    /// Training-mode logits, on `path` for a supernet.
    ///
    /// # Errors
    /// [`TrainError::MissingPath`] for a supernet without a path.
    fn train_logits(&self, x: Tensor<B, 4>, path: Option<&NetworkPlan>) -> Result<Tensor<B, 2>, TrainError>;

    /// Channels of the images the network takes.
    fn input_channels(&self) -> usize;

    /// The search space whose paths the network runs (a supernet); `None` for a fixed
    /// network.
    fn search_space(&self) -> Option<&SearchSpace> {
        None
    }
}

impl<B: AutodiffBackend> TrainNet<B> for Supernet<B> {
    fn train_logits(&self, x: Tensor<B, 4>, path: Option<&NetworkPlan>) -> Result<Tensor<B, 2>, TrainError> {
        let plan = path.ok_or(TrainError::MissingPath)?;
        self.check_plan(plan)?;
        Ok(self.forward_plan(x, plan, false))
    }

    fn input_channels(&self) -> usize {
        self.stem.in_channels()
    }

    fn search_space(&self) -> Option<&SearchSpace> {
        Some(self.space())
    }
}

impl<B: AutodiffBackend> TrainNet<B> for ShuffleNasNet<B> {
    fn train_logits(&self, x: Tensor<B, 4>, _path: Option<&NetworkPlan>) -> Result<Tensor<B, 2>, TrainError> {
        Ok(self.forward(x))
    }

    fn input_channels(&self) -> usize {
        self.stem.in_channels()
    }
}

/// Resume state saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    epochs_done: usize,
    global_step: u64,
    lr_iteration: usize,
    history: Vec<EpochMetrics>,
    fingerprint: String,
    /// The training data the run was started on (`None` in runs written before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<TrainingData>,
}

/// The size of a run's training data: resuming with another (a different `--batch`, a
/// different subset) would restart the LR schedule's steps per epoch at the old
/// iteration, and the data order at another place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct TrainingData {
    images: usize,
    batch_size: usize,
    steps_per_epoch: usize,
}

impl std::fmt::Display for TrainingData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} images in batches of {}, {} steps per epoch", self.images, self.batch_size, self.steps_per_epoch)
    }
}

/// What a run's first step starts from: fresh, or its latest checkpoint.
struct Start<'t, B: AutodiffBackend, M: AutodiffModule<B>> {
    model: M,
    optim: OptimizerAdaptor<SliceSgd, M, B>,
    lr: WarmupCosineLr,
    state: RunState,
    distill: Option<(Distillation, &'t dyn Teacher<B::InnerBackend>)>,
    steps_per_epoch: usize,
}

/// Where the shards of each training step run.
#[derive(Clone, Copy)]
enum Spread<'a, B: Backend> {
    /// Every shard in this process, one per device; the first device is the main one.
    Local(&'a [B::Device]),
    /// One shard, this DDP peer's, on its device.
    #[cfg(feature = "ddp")]
    Peer(&'a B::Device, &'a crate::ddp::DdpPeer),
}

impl<B: Backend> Spread<'_, B> {
    fn main_device(&self) -> Result<&B::Device, TrainError> {
        match self {
            Self::Local(devices) => devices
                .first()
                .ok_or_else(|| TrainError::Config("data-parallel training needs at least one device".into())),
            #[cfg(feature = "ddp")]
            Self::Peer(device, _) => Ok(device),
        }
    }

    /// Processes that each train a shard of every batch (devices of one process split
    /// a batch over at most as many shards as it has rows).
    fn peers(&self) -> usize {
        match self {
            Self::Local(_) => 1,
            #[cfg(feature = "ddp")]
            Self::Peer(_, peer) => peer.world_size,
        }
    }

    /// Whether this process validates and writes checkpoints.
    fn is_main(&self) -> bool {
        match self {
            Self::Local(_) => true,
            #[cfg(feature = "ddp")]
            Self::Peer(_, peer) => peer.rank == 0,
        }
    }

    /// Whether every shard runs in this process.
    fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    /// Whether replicas are forked from the model in this process.
    fn forks(&self) -> bool {
        matches!(self, Self::Local(devices) if devices.len() > 1)
    }

    /// Shards of an `n`-row batch that run here, with their devices.
    fn shards(&self, n: usize) -> Vec<(std::ops::Range<usize>, &B::Device)> {
        match self {
            Self::Local(devices) => shard_ranges(n, devices.len()).into_iter().zip(devices.iter()).collect(),
            #[cfg(feature = "ddp")]
            Self::Peer(device, peer) => vec![(peer.shard(n), *device)],
        }
    }

    /// Number of shards of an `n`-row batch over all processes.
    fn parts(&self, n: usize) -> usize {
        match self {
            Self::Local(devices) => shard_count(n, devices.len()),
            #[cfg(feature = "ddp")]
            Self::Peer(_, peer) => shard_count(n, peer.world_size),
        }
    }
}

/// How many shards `n` rows split into over `parts` devices: `min(parts, n)`, at least 1.
fn shard_count(n: usize, parts: usize) -> usize {
    parts.clamp(1, n.max(1))
}

/// `n` rows split into `min(parts, n)` contiguous, nearly equal ranges (the first ones
/// one longer), for the devices of a data-parallel step.
pub(crate) fn shard_ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = shard_count(n, parts);
    let (size, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = size + usize::from(i < extra);
            start += len;
            start - len..start
        })
        .collect()
}

fn checkpoint_error(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint { path: path.display().to_string(), reason: e.to_string() }
}

/// Top-1 and top-5 correct counts of `logits` against `labels`.
pub fn correct_counts<B: Backend>(logits: Tensor<B, 2>, labels: &[i64]) -> (usize, usize) {
    let [n, classes] = logits.dims();
    let values: Vec<f32> = logits.into_data().convert::<f32>().into_vec().unwrap_or_default();
    let (mut top1, mut top5) = (0, 0);
    for (row, &label) in values.chunks_exact(classes).zip(labels).take(n) {
        // A label without an output, or a NaN logit for it, is a miss (NaN compares false
        // with everything: it would rank first).
        let Some(&target) = usize::try_from(label).ok().and_then(|label| row.get(label)) else { continue };
        if target.is_nan() {
            continue;
        }
        let higher = row.iter().filter(|&&v| v > target || v.is_nan()).count();
        top1 += usize::from(higher == 0);
        top5 += usize::from(higher < 5);
    }
    (top1, top5)
}

/// Checks that images of shape `[n, c, h, w]` fit a network taking `channels` before
/// they reach Burn's first conv, which panics.
///
/// # Errors
/// [`TrainError::InputChannels`].
pub(crate) fn check_channels(shape: [usize; 4], channels: usize) -> Result<(), TrainError> {
    match shape[1] == channels {
        true => Ok(()),
        false => Err(TrainError::InputChannels { got: shape[1], expected: channels }),
    }
}

/// Checks that every label has one of the network's `classes` outputs before the loss
/// (Burn's cross-entropy panics on one that has not).
///
/// # Errors
/// [`TrainError::LabelOutOfRange`] for the first label outside `0..classes`.
fn check_labels(labels: &[i64], classes: usize) -> Result<(), TrainError> {
    match labels.iter().find(|&&label| !usize::try_from(label).is_ok_and(|label| label < classes)) {
        Some(&label) => Err(TrainError::LabelOutOfRange { label, classes }),
        None => Ok(()),
    }
}

/// The training loop. `sampler` must be given for a supernet and `None` for a fixed net.
pub struct Trainer<'a> {
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Training batches.
    pub train: &'a BatchLoader,
    /// Validation batches (`None`: no validation).
    pub valid: Option<&'a BatchLoader>,
    /// Path sampler (supernets only).
    pub sampler: Option<&'a PathSampler>,
    /// Run directory for checkpoints and metrics.
    pub dir: PathBuf,
    /// Text identifying the model (space, genome): resuming a different one is refused.
    pub model_id: String,
    /// Stop after this many epochs in total (as if the process were killed right after
    /// that epoch's checkpoint); `None` trains to the end.
    pub stop_after: Option<usize>,
    /// Called after every optimizer step (e.g. to draw a progress bar); `None`: silent.
    pub on_step: Option<&'a dyn Fn(&StepInfo)>,
}

/// What differs between a saved run's fingerprint and this run's, in words: the
/// hyper-parameters that changed (`epochs 3 → 5`), and whether the model did
/// (architecture, search space, teacher or starting weights, all in the model id).
fn fingerprint_difference(saved: &str, current: &str) -> String {
    // `model_id|config`, where the config is the JSON of `TrainConfig` (its first field
    // is `epochs`) and the model id may hold `|` and JSON itself.
    let split = |fingerprint: &str| -> Option<(String, serde_json::Map<String, serde_json::Value>)> {
        let at = fingerprint.rfind("|{\"epochs\":")?;
        let config = serde_json::from_str::<serde_json::Value>(&fingerprint[at + 1..]).ok()?;
        Some((fingerprint[..at].to_string(), config.as_object()?.clone()))
    };
    let (Some((saved_model, saved_config)), Some((model, config))) = (split(saved), split(current)) else {
        return "model or hyper-parameters differ".into();
    };
    let shown = |value: Option<&serde_json::Value>| value.map_or("unset".to_string(), |v| v.to_string());
    let mut keys: Vec<&String> = saved_config.keys().chain(config.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|key| saved_config.get(*key) != config.get(*key))
        .map(|key| format!("{key} {} → {}", shown(saved_config.get(key)), shown(config.get(key))))
        .collect();
    let mut parts = Vec::new();
    if saved_model != model {
        parts.push("the model differs (architecture, search space, teacher or starting weights)".to_string());
    }
    if !changed.is_empty() {
        parts.push(format!("hyper-parameters differ: {}", changed.join(", ")));
    }
    if parts.is_empty() {
        return "model or hyper-parameters differ".into();
    }
    parts.join("; ")
}

/// The file of a run directory that names its newest complete checkpoint.
pub(crate) const LATEST_FILE: &str = "latest.json";

/// Whether `dir` holds a training run (a checkpoint named by its `latest.json`): what
/// [`Trainer::fit`] resumes with `resume`, and refuses to train over without it.
pub fn holds_run(dir: &Path) -> bool {
    dir.join(LATEST_FILE).is_file()
}

impl Trainer<'_> {
    fn fingerprint(&self) -> String {
        let config = serde_json::to_string(&self.config).unwrap_or_default();
        format!("{}|{}", self.model_id, config)
    }

    fn latest(&self) -> PathBuf {
        self.dir.join(LATEST_FILE)
    }

    /// Trains `model` from scratch, or from the latest checkpoint in the run directory
    /// when `resume` is set (and one exists). `on_epoch` sees each epoch's metrics.
    ///
    /// # Errors
    /// [`TrainError`]: data, checkpoint, incompatible resume, non-finite loss, bad
    /// options ([`TrainError::Config`], also when `config.distill` is set: distillation
    /// needs [`Trainer::fit_with_teacher`]).
    pub fn fit<B, M>(
        &self,
        model: M,
        device: &B::Device,
        resume: bool,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<(M, Vec<EpochMetrics>), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        M::InnerModule: ValidNet<B::InnerBackend>,
    {
        self.run(model, None, Spread::Local(std::slice::from_ref(device)), resume, on_epoch)
    }

    /// [`Trainer::fit`], data parallel over `devices`; the first is the main device, which
    /// holds the model, the optimizer and the checkpoints.
    ///
    /// Each step splits the batch into one contiguous shard per device, runs forward and
    /// backward on a replica of the model there (`Module::fork`), weights each shard's
    /// loss by its share of the batch, sums the gradients on the main device (Burn's
    /// `GradientsAccumulator`) and steps the optimizer once: the update of one device on
    /// the whole batch, except that batch norm sees per-shard statistics (as PyTorch's
    /// DDP without SyncBN) and updates its running statistics once per shard. The replicas
    /// run one after the other from this thread; on the asynchronous GPU backends their
    /// kernels overlap. One device is exactly [`Trainer::fit`].
    ///
    /// # Errors
    /// As [`Trainer::fit`]; [`TrainError::Config`] for an empty device list.
    pub fn fit_data_parallel<B, M>(
        &self,
        model: M,
        devices: &[B::Device],
        resume: bool,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<(M, Vec<EpochMetrics>), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        M::InnerModule: ValidNet<B::InnerBackend>,
    {
        self.run(model, None, Spread::Local(devices), resume, on_epoch)
    }

    /// [`Trainer::fit`] as one peer of a distributed data-parallel (DDP) run over
    /// `burn-collective` (see [`crate::ddp`]): every peer calls this with its own device
    /// and [`DdpPeer`](crate::ddp::DdpPeer), trains on its shard of every batch and
    /// sums the gradients with the others before each step. Rank 0's weights are
    /// broadcast first. Only rank 0 validates and writes checkpoints; to resume, every
    /// peer must find rank 0's run directory (shared storage, or a copy on each node).
    /// The peers agree before the first step: when one cannot start, all return errors.
    /// The returned model is the same on every peer except for batch-norm running
    /// statistics, which are rank 0's in its checkpoints.
    ///
    /// # Errors
    /// As [`Trainer::fit`]; [`TrainError::Distributed`] when a collective operation fails,
    /// another peer could not start, or the peers would resume from different epochs.
    #[cfg(feature = "ddp")]
    pub fn fit_distributed<B, M>(
        &self,
        model: M,
        device: &B::Device,
        peer: &crate::ddp::DdpPeer,
        resume: bool,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<(M, Vec<EpochMetrics>), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        M::InnerModule: ValidNet<B::InnerBackend>,
    {
        peer.register::<B::InnerBackend>(device)?;
        let result = self.run(model, None, Spread::Peer(device, peer), resume, on_epoch);
        peer.finish::<B::InnerBackend>()?;
        result
    }

    /// [`Trainer::fit`] with knowledge distillation from `teacher` (a trained network
    /// on the inference backend, run in inference mode), weighted as `config.distill`
    /// says. The teacher is not part of the checkpoint: give the same one on resume.
    ///
    /// # Errors
    /// As [`Trainer::fit`]; [`TrainError::Config`] when `config.distill` is `None`.
    pub fn fit_with_teacher<B, M>(
        &self,
        model: M,
        teacher: &dyn Teacher<B::InnerBackend>,
        device: &B::Device,
        resume: bool,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<(M, Vec<EpochMetrics>), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        M::InnerModule: ValidNet<B::InnerBackend>,
    {
        self.run(model, Some(teacher), Spread::Local(std::slice::from_ref(device)), resume, on_epoch)
    }

    fn run<B, M>(
        &self,
        model: M,
        teacher: Option<&dyn Teacher<B::InnerBackend>>,
        spread: Spread<'_, B>,
        resume: bool,
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<(M, Vec<EpochMetrics>), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        M::InnerModule: ValidNet<B::InnerBackend>,
    {
        let device = spread.main_device()?;
        let start = self.start(model, teacher, device, spread.peers(), spread.is_main(), resume);
        // DDP peers agree on their starts before the first collective operation, so that
        // one peer's error (a run directory that exists, a checkpoint missing or corrupt
        // on its node) stops them all instead of leaving the others waiting forever.
        #[cfg(feature = "ddp")]
        if let Spread::Peer(device, peer) = spread {
            let epochs_done = start.as_ref().ok().map(|start| start.state.epochs_done);
            peer.agree_to_start::<B::InnerBackend>(epochs_done, device)?;
        }
        let Start { mut model, mut optim, mut lr, mut state, distill, steps_per_epoch } = start?;
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        if spread.forks() || !spread.is_local() {
            // A clone of a fresh module initialises its parameters on its own draw: give
            // the model its values before replicas are forked from it or rank 0's are sent.
            crate::checkpoint::tensor_shapes(&model);
        }
        #[cfg(feature = "ddp")]
        if let Spread::Peer(_, peer) = spread {
            model = peer.broadcast_module(model)?;
        }
        let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(self.config.label_smoothing)).init(device);
        for epoch in state.epochs_done..self.config.epochs {
            // The backend RNG (dropout) restarts from a per-epoch seed, so a resumed run
            // draws the same masks as an uninterrupted one.
            B::seed(device, self.config.seed ^ (epoch as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let start = Instant::now();
            let (mut loss_sum, mut seen, mut correct) = (0.0, 0usize, 0usize);
            for (step, batch) in self.train.epoch(epoch).enumerate() {
                let batch = batch?;
                check_channels(batch.shape, model.input_channels())?;
                let n = batch.labels.len();
                let mixup_on = epoch + self.config.mixup_off_last_epochs < self.config.epochs;
                let mix = (self.config.mixup_alpha > 0.0 && mixup_on)
                    .then(|| MixPlan::draw(self.config.mixup_alpha, self.config.seed, state.global_step, n));
                let mixed = mix.as_ref().map(|mix| mix.mix_images(&batch));
                let images = mixed.as_ref().unwrap_or(&batch);
                let partner = mix.as_ref().map(|mix| mix.partner_labels(&batch.labels));
                let scored = match &mix {
                    Some(mix) => mix.dominant_labels(&batch.labels),
                    None => batch.labels.clone(),
                };
                let plan = match self.sampler {
                    Some(sampler) => {
                        let arch = sampler.sample(epoch, state.global_step)?;
                        Some(sampler.space().decode(&arch)?)
                    }
                    None => None,
                };
                let shards = spread.shards(n);
                let parts = spread.parts(n);
                let mut shard_losses = Vec::with_capacity(shards.len());
                let mut accumulated = GradientsAccumulator::<M>::new();
                let mut single = None;
                for (range, shard_device) in shards.iter().cloned() {
                    let forked;
                    let replica = match shards.len() {
                        1 => &model,
                        _ => {
                            forked = model.clone().fork(shard_device);
                            &forked
                        }
                    };
                    let (x, y) = images.rows(range.clone()).to_tensors::<B>(shard_device);
                    // The teacher lives on the main device and sees the same (mixed) images,
                    // without gradient; a zero weight skips it, so w = 0 is exactly plain
                    // training.
                    let soft = match distill {
                        Some((d, teacher)) if d.weight > 0.0 => {
                            if let Some(channels) = teacher.input_channels().filter(|&c| c != batch.shape[1]) {
                                return Err(TrainError::Teacher(format!(
                                    "the images have {} channels, the teacher's first conv takes {channels}",
                                    batch.shape[1]
                                )));
                            }
                            let on_main = x.clone().inner().to_device(device);
                            let targets = soft_targets(teacher.teacher_logits(on_main), d.temperature);
                            Some((d, Tensor::<B, 2>::from_inner(targets).to_device(shard_device)))
                        }
                        _ => None,
                    };
                    let logits = replica.train_logits(x, plan.as_ref())?;
                    // The whole batch, which every DDP peer sees: all stop at the same step.
                    check_labels(&batch.labels, logits.dims()[1])?;
                    let hard = match (&mix, &partner) {
                        (Some(mix), Some(partner)) => {
                            let partner = partner[range.clone()].to_vec();
                            let partner = Tensor::from_data(TensorData::new(partner, [range.len()]), shard_device);
                            loss_fn.forward(logits.clone(), y).mul_scalar(mix.lambda)
                                + loss_fn.forward(logits.clone(), partner).mul_scalar(1.0 - mix.lambda)
                        }
                        _ => loss_fn.forward(logits.clone(), y),
                    };
                    let loss = match soft {
                        Some((d, targets)) => {
                            if targets.dims() != logits.dims() {
                                return Err(TrainError::Teacher(format!(
                                    "it gives {} classes, the student {}",
                                    targets.dims()[1],
                                    logits.dims()[1]
                                )));
                            }
                            let kl = distillation_kl(logits.clone(), targets, d.temperature);
                            hard.mul_scalar(1.0 - d.weight) + kl.mul_scalar(d.weight * d.temperature * d.temperature)
                        }
                        None => hard,
                    };
                    let loss = match parts {
                        1 => loss,
                        _ => loss.mul_scalar(range.len() as f64 / n as f64),
                    };
                    let grads = GradientsParams::from_grads(loss.backward(), replica);
                    if shards.len() == 1 {
                        single = Some(grads);
                    } else {
                        accumulated.accumulate(&model, grads.to_device(device, &model));
                    }
                    shard_losses.push((loss, logits, range.clone()));
                }
                let (mut loss_value, mut step_correct) = (0.0, 0usize);
                for (loss, logits, range) in shard_losses {
                    loss_value += loss.into_scalar().elem::<f64>();
                    step_correct += correct_counts(logits, &scored[range]).0;
                }
                #[cfg(feature = "ddp")]
                if let Spread::Peer(device, peer) = spread {
                    let sums = peer.sum::<B::InnerBackend>(&[loss_value, step_correct as f64], device)?;
                    (loss_value, step_correct) = (sums[0], sums[1].round() as usize);
                }
                correct += step_correct;
                if !loss_value.is_finite() {
                    let kept = match holds_run(&self.dir) {
                        true => format!("the last good checkpoint is kept in {}", self.dir.display()),
                        false => format!("no checkpoint was written yet (none in {})", self.dir.display()),
                    };
                    return Err(TrainError::NonFinite { loss: loss_value, epoch, step: state.global_step, kept });
                }
                let grads = single.unwrap_or_else(|| accumulated.grads());
                #[cfg(feature = "ddp")]
                let grads = match spread {
                    Spread::Peer(_, peer) => peer.all_reduce_gradients(&model, grads)?,
                    Spread::Local(_) => grads,
                };
                let rate = lr.step();
                model = optim.step(rate, model, grads);
                loss_sum += loss_value * n as f64;
                seen += n;
                state.global_step += 1;
                if let Some(on_step) = self.on_step {
                    on_step(&StepInfo {
                        epoch,
                        epochs: self.config.epochs,
                        step: step + 1,
                        steps_per_epoch,
                        global_step: state.global_step,
                        loss: loss_value,
                        mean_loss: loss_sum / seen.max(1) as f64,
                        images_per_s: seen as f64 / start.elapsed().as_secs_f64().max(1e-9),
                        lr: rate,
                    });
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            let (val_top1, val_top5) = match self.valid {
                Some(valid) if spread.is_main() => {
                    let (a, b) = self.validate(&model, valid, epoch)?;
                    (Some(a), Some(b))
                }
                _ => (None, None),
            };
            let metrics = EpochMetrics {
                epoch,
                train_loss: loss_sum / seen.max(1) as f64,
                train_top1: correct as f64 / seen.max(1) as f64,
                val_top1,
                val_top5,
                images_per_s: seen as f64 / seconds.max(1e-9),
                lr: lr.rate_at(lr.iteration.saturating_sub(1)),
                seconds,
            };
            on_epoch(&metrics);
            state.history.push(metrics);
            state.epochs_done = epoch + 1;
            state.lr_iteration = lr.iteration;
            let every = self.config.checkpoint_every;
            let due = state.epochs_done == self.config.epochs || (every > 0 && state.epochs_done.is_multiple_of(every));
            if due && spread.is_main() {
                self.write_checkpoint(&model, &optim, &state, &recorder)?;
            }
            if self.stop_after.is_some_and(|stop| state.epochs_done >= stop) {
                break;
            }
        }
        Ok((model, state.history))
    }

    /// Checks the configuration and the run directory, and builds what the first step
    /// starts from: fresh, or (with `resume`) the latest checkpoint. Only the `main`
    /// process (which writes checkpoints) refuses an existing run or creates the
    /// directory; every process of a resumed run reads it.
    fn start<'t, B, M>(
        &self,
        model: M,
        teacher: Option<&'t dyn Teacher<B::InnerBackend>>,
        device: &B::Device,
        peers: usize,
        main: bool,
        resume: bool,
    ) -> Result<Start<'t, B, M>, TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
    {
        self.config.check()?;
        if let (Some(sampler), Some(space)) = (self.sampler, model.search_space())
            && sampler.space() != space
        {
            return Err(TrainError::Config(
                "the path sampler's search space is not the supernet's: its paths would not fit the supernet".into(),
            ));
        }
        let distill = match (self.config.distill, teacher) {
            (Some(d), Some(teacher)) => {
                if let Some(problem) = teacher.problem() {
                    return Err(TrainError::Teacher(problem));
                }
                Some((d, teacher))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(TrainError::Config("distillation is configured but no teacher was given".into()));
            }
            (None, Some(_)) => {
                return Err(TrainError::Config("a teacher was given but distillation is not configured".into()));
            }
        };
        let steps_per_epoch = self.train.batches_per_epoch();
        let data = TrainingData { images: self.train.len(), batch_size: self.train.batch_size(), steps_per_epoch };
        if steps_per_epoch == 0 {
            return Err(TrainError::Config(format!(
                "the training split has {} images, fewer than one batch of {}: no step would run",
                self.train.len(),
                self.train.batch_size()
            )));
        }
        if self.train.smallest_batch() < peers {
            return Err(TrainError::Config(format!(
                "a batch of {} images cannot be split over {peers} peers (each needs at least one image): use a \
                 larger batch, or drop the last incomplete batch",
                self.train.smallest_batch()
            )));
        }
        if main {
            if !resume && holds_run(&self.dir) {
                return Err(TrainError::RunExists { dir: self.dir.display().to_string() });
            }
            if self.dir.exists() && !self.dir.is_dir() {
                return Err(checkpoint_error(&self.dir, "exists and is not a directory: the run needs a folder"));
            }
            std::fs::create_dir_all(&self.dir).map_err(|e| checkpoint_error(&self.dir, e))?;
        }
        let mut start = Start {
            model,
            optim: SliceSgdConfig::new()
                .with_momentum(self.config.momentum)
                .with_weight_decay(self.config.weight_decay)
                .init::<B, M>(),
            lr: WarmupCosineLr::new(
                self.config.lr,
                self.config.warmup_epochs * steps_per_epoch,
                self.config.epochs * steps_per_epoch,
            ),
            state: RunState {
                epochs_done: 0,
                global_step: 0,
                lr_iteration: 0,
                history: Vec::new(),
                fingerprint: self.fingerprint(),
                data: Some(data),
            },
            distill,
            steps_per_epoch,
        };
        if resume && holds_run(&self.dir) {
            let (dir, saved) = self.read_latest()?;
            if saved.fingerprint != start.state.fingerprint {
                return Err(TrainError::Incompatible {
                    path: dir.display().to_string(),
                    reason: fingerprint_difference(&saved.fingerprint, &start.state.fingerprint),
                });
            }
            // Runs written before the data was recorded resume unchecked.
            if let Some(saved_data) = saved.data.filter(|saved_data| *saved_data != data) {
                return Err(TrainError::Incompatible {
                    path: dir.display().to_string(),
                    reason: format!("the training data differ: it was trained on {saved_data}, this run has {data}"),
                });
            }
            start.model = crate::checkpoint::load_checked(start.model, &dir.join("model.mpk"), device)?;
            let record = crate::checkpoint::read_record::<B, _>(&dir.join("optim.mpk"), device)?;
            start.optim = start.optim.load_record(record);
            start.lr = start.lr.load_record::<B>(saved.lr_iteration);
            // A run written before the data was recorded records it from now on.
            start.state = RunState { data: Some(data), ..saved };
        }
        Ok(start)
    }

    fn validate<B, M>(&self, model: &M, valid: &BatchLoader, epoch: usize) -> Result<(f64, f64), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        M::InnerModule: ValidNet<B::InnerBackend>,
    {
        let eval = model.valid();
        let paths: Vec<Option<NetworkPlan>> = match self.sampler {
            Some(sampler) => (0..self.config.validation_paths.max(1))
                .map(|i| {
                    let arch = sampler.sample(epoch, u64::MAX - i as u64)?;
                    Ok(Some(sampler.space().decode(&arch)?))
                })
                .collect::<Result<_, TrainError>>()?,
            None => vec![None],
        };
        // BN is recalibrated on training images as the search does: in the training
        // order of epoch 0 (a fixed, class-mixed set), with the validation transform.
        let recalibration = self.train.clone().with_transform(valid.transform().clone())?;
        let (mut top1, mut top5) = (0.0, 0.0);
        for plan in &paths {
            if let Some(plan) = plan {
                eval.recalibrate(plan, &recalibration, self.config.recalibration_images)?;
            }
            let (a, b) = eval.accuracy(valid, plan.as_ref())?;
            top1 += a;
            top5 += b;
        }
        Ok((top1 / paths.len() as f64, top5 / paths.len() as f64))
    }

    fn read_latest(&self) -> Result<(PathBuf, RunState), TrainError> {
        let dir = crate::checkpoint::latest_checkpoint(&self.dir)?;
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path).map_err(|e| checkpoint_error(&state_path, e))?;
        let state = serde_json::from_str(&text).map_err(|e| checkpoint_error(&state_path, e))?;
        Ok((dir, state))
    }

    fn write_checkpoint<B, M, O>(
        &self,
        model: &M,
        optim: &O,
        state: &RunState,
        recorder: &NamedMpkFileRecorder<FullPrecisionSettings>,
    ) -> Result<(), TrainError>
    where
        B: AutodiffBackend,
        M: TrainNet<B>,
        O: Optimizer<M, B>,
    {
        let name = format!("checkpoint-{:04}", state.epochs_done);
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| checkpoint_error(&tmp, e))?;
        model.clone().save_file(tmp.join("model"), recorder).map_err(|e| checkpoint_error(&tmp, e))?;
        Recorder::<B>::record(recorder, optim.to_record(), tmp.join("optim")).map_err(|e| checkpoint_error(&tmp, e))?;
        let json = serde_json::to_string_pretty(state).map_err(|e| checkpoint_error(&tmp, e))?;
        std::fs::write(tmp.join("state.json"), json).map_err(|e| checkpoint_error(&tmp, e))?;
        let history = serde_json::to_string_pretty(&state.history).map_err(|e| checkpoint_error(&tmp, e))?;
        crate::io::sync_folder(&tmp).map_err(|e| checkpoint_error(&tmp, e))?;
        let final_dir = self.dir.join(&name);
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(|e| checkpoint_error(&final_dir, e))?;
        crate::io::sync_parent(&final_dir).map_err(|e| checkpoint_error(&self.dir, e))?;
        let latest = serde_json::to_string(&name).map_err(|e| checkpoint_error(&final_dir, e))?;
        write_atomic(&self.latest(), latest.as_bytes())?;
        write_atomic(&self.dir.join("metrics.json"), history.as_bytes())?;
        Ok(())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    crate::io::write_atomic(path, bytes).map_err(|e| checkpoint_error(path, e))
}

/// Evaluation of a network on an inference backend.
pub trait ValidNet<B: Backend> {
    /// Recalibrates BN on `path` with `images` training images (supernets only).
    ///
    /// # Errors
    /// [`TrainError::Data`].
    fn recalibrate(&self, path: &NetworkPlan, data: &BatchLoader, images: usize) -> Result<(), TrainError>;
    /// Top-1 and top-5 accuracy on `data`.
    ///
    /// # Errors
    /// [`TrainError::Data`].
    fn accuracy(&self, data: &BatchLoader, path: Option<&NetworkPlan>) -> Result<(f64, f64), TrainError>;
}

fn accuracy_with<B: Backend>(
    data: &BatchLoader,
    stem: &ConvBnAct<B>,
    forward: impl Fn(Tensor<B, 4>) -> Tensor<B, 2>,
) -> Result<(f64, f64), TrainError> {
    let device = stem.conv.weight.device();
    let (mut top1, mut top5, mut seen) = (0, 0, 0);
    for batch in data.epoch(0) {
        let batch = batch?;
        check_channels(batch.shape, stem.in_channels())?;
        let (x, _) = batch.to_tensors::<B>(&device);
        let logits = forward(x);
        check_labels(&batch.labels, logits.dims()[1])?;
        let (a, b) = correct_counts(logits, &batch.labels);
        top1 += a;
        top5 += b;
        seen += batch.labels.len();
    }
    Ok((top1 as f64 / seen.max(1) as f64, top5 as f64 / seen.max(1) as f64))
}

impl<B: Backend> ValidNet<B> for Supernet<B> {
    fn recalibrate(&self, path: &NetworkPlan, data: &BatchLoader, images: usize) -> Result<(), TrainError> {
        crate::recalibrate::recalibrate_supernet(self, path, data, images)
    }

    fn accuracy(&self, data: &BatchLoader, path: Option<&NetworkPlan>) -> Result<(f64, f64), TrainError> {
        match path {
            Some(plan) => {
                self.check_plan(plan)?;
                accuracy_with(data, &self.stem, |x| self.forward_plan(x, plan, false))
            }
            None => Err(TrainError::MissingPath),
        }
    }
}

impl<B: Backend> ValidNet<B> for ShuffleNasNet<B> {
    fn recalibrate(&self, _path: &NetworkPlan, _data: &BatchLoader, _images: usize) -> Result<(), TrainError> {
        Ok(())
    }

    fn accuracy(&self, data: &BatchLoader, _path: Option<&NetworkPlan>) -> Result<(f64, f64), TrainError> {
        accuracy_with(data, &self.stem, |x| self.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A refused resume says what changed.
    #[test]
    fn a_refused_resume_names_what_differs() {
        let fingerprint =
            |model: &str, config: &TrainConfig| format!("{model}|{}", serde_json::to_string(config).unwrap());
        let base = TrainConfig::default();
        let longer = TrainConfig { epochs: 20, lr: 0.2, ..TrainConfig::default() };
        let text =
            fingerprint_difference(&fingerprint("{\"a\":1}|arch", &base), &fingerprint("{\"a\":1}|arch", &longer));
        assert_eq!(text, "hyper-parameters differ: epochs 10 → 20, lr 0.1 → 0.2");
        let text = fingerprint_difference(&fingerprint("arch-a", &base), &fingerprint("arch-b", &base));
        assert!(text.starts_with("the model differs"), "{text}");
        assert_eq!(fingerprint_difference("garbage", "other"), "model or hyper-parameters differ");
    }

    // Runs written before mixup and distillation existed must still resume: with both
    // off, the configuration's JSON (part of the fingerprint) is what it was, and the old
    // JSON still reads.
    #[test]
    fn options_that_are_off_leave_the_fingerprint_as_before() {
        let old = concat!(
            r#"{"epochs":10,"lr":0.1,"warmup_epochs":1,"weight_decay":0.00004,"momentum":0.9,"label_smoothing":0.1,"#,
            r#""seed":0,"checkpoint_every":1,"recalibration_images":1000,"validation_paths":2}"#
        );
        assert_eq!(serde_json::to_string(&TrainConfig::default()).unwrap(), old);
        let read: TrainConfig = serde_json::from_str(old).unwrap();
        assert_eq!(read, TrainConfig::default());

        let on = TrainConfig {
            mixup_alpha: 0.2,
            distill: Some(Distillation { weight: 0.5, temperature: 2.0 }),
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&on).unwrap();
        assert!(json.contains("\"mixup_alpha\":0.2") && json.contains("\"temperature\":2.0"), "{json}");
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), on);
    }

    #[test]
    fn a_nan_or_missing_target_logit_is_a_miss() {
        let nan = f32::NAN;
        let rows = vec![
            1.0, 2.0, 3.0, // label 2: the highest
            nan, 0.0, 0.0, // label 0: NaN, which compares false with everything
            5.0, nan, 1.0, // label 0: a NaN output elsewhere ranks above it (as argmax)
            1.0, 0.0, 0.0, // label 7: no such output
        ];
        let logits = Tensor::<burn::backend::Flex, 2>::from_data(TensorData::new(rows, [4, 3]), &Default::default());
        assert_eq!(correct_counts(logits, &[2, 0, 0, 7]), (1, 2));
        assert!(check_labels(&[0, 2], 3).is_ok());
        assert!(matches!(check_labels(&[0, 3], 3), Err(TrainError::LabelOutOfRange { label: 3, classes: 3 })));
        assert!(matches!(check_labels(&[-1], 3), Err(TrainError::LabelOutOfRange { label: -1, .. })));
    }

    #[test]
    fn shards_cover_the_batch_in_order() {
        assert_eq!(shard_ranges(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(shard_ranges(2, 4), vec![0..1, 1..2]);
        assert_eq!(shard_ranges(5, 1), vec![0..5]);
    }

    #[test]
    fn out_of_range_options_are_refused() {
        let bad_alpha = TrainConfig { mixup_alpha: -0.1, ..TrainConfig::default() };
        assert!(matches!(bad_alpha.check(), Err(TrainError::Config(m)) if m.contains("mixup")));
        let bad_weight =
            TrainConfig { distill: Some(Distillation { weight: 2.0, temperature: 1.0 }), ..TrainConfig::default() };
        assert!(matches!(bad_weight.check(), Err(TrainError::Config(m)) if m.contains("weight")));
        assert!(TrainConfig { mixup_alpha: 0.4, ..TrainConfig::default() }.check().is_ok());
        // Burn's loss asserts on smoothing outside [0, 1]: the check names it first.
        for smoothing in [1.5, -0.1, f32::NAN] {
            let bad = TrainConfig { label_smoothing: smoothing, ..TrainConfig::default() };
            assert!(matches!(bad.check(), Err(TrainError::Config(m)) if m.contains("label smoothing")));
        }
        let bad_lr = TrainConfig { lr: f64::INFINITY, ..TrainConfig::default() };
        assert!(matches!(bad_lr.check(), Err(TrainError::Config(m)) if m.contains("learning rate")));
        let bad_momentum = TrainConfig { momentum: 1.0, ..TrainConfig::default() };
        assert!(matches!(bad_momentum.check(), Err(TrainError::Config(m)) if m.contains("momentum")));
        let no_epochs = TrainConfig { epochs: 0, ..TrainConfig::default() };
        assert!(matches!(no_epochs.check(), Err(TrainError::Config(m)) if m.contains("epochs must be at least 1")));
    }
}
