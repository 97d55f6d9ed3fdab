//! Training flags and progress output shared by the training examples.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shufflenas_model::nn::{ShuffleNasNet, ShuffleNasNetConfig};
use shufflenas_model::{Architecture, SearchSpace};
use shufflenas_train::checkpoint::load_checked;
use shufflenas_train::distill::Distillation;
use shufflenas_train::trainer::{EpochMetrics, StepInfo, TrainConfig, TrainError};

/// Hyper-parameters (the seed's recipe; defaults scaled for small data on a CPU).
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Peak learning rate (after warm-up; cosine decay to 0).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Linear warm-up epochs.
    #[arg(long, default_value_t = 1)]
    pub warmup_epochs: usize,
    /// Weight decay on conv/linear weights (none on BN and biases).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Nesterov momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.1)]
    pub label_smoothing: f32,
    /// Mixup α (as timm's --mixup): each batch is blended with a shuffled copy of
    /// itself with weight λ ~ Beta(α, α), labels likewise; 0 turns it off.
    #[arg(long, default_value_t = 0.0)]
    pub mixup: f64,
    /// Train the last N epochs without mixup.
    #[arg(long, default_value_t = 0)]
    pub mixup_off_last_epochs: usize,
    /// Seed of weights, data order, augmentation and paths.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Checkpoint every N epochs.
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,
    /// Run directory (default: runs/JOB-UNIX_TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Resume from the latest checkpoint in --out.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Data-parallel training over this many devices (GPUs 0..N of the cuda or wgpu
    /// backend; each step's batch is split between them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub devices: u16,
    /// Distributed data parallel.
    #[cfg(feature = "ddp")]
    #[command(flatten)]
    pub ddp: DdpArgs,
}

impl TrainArgs {
    /// The devices of the single-process path: GPUs `0..--devices`, or only the default
    /// device with --ddp, where --devices counts the peer threads instead (`fit_ddp`, feature `ddp`).
    ///
    /// # Errors
    /// As [`crate::backend::devices`].
    pub fn local_devices(&self) -> Result<Vec<crate::backend::Device>, String> {
        #[cfg(feature = "ddp")]
        if self.ddp.ddp {
            return Ok(vec![crate::backend::device()?]);
        }
        crate::backend::devices(self.devices.into())
    }

    /// The trainer configuration, with `default_decay` when --weight-decay is not given.
    pub fn config(&self, default_decay: f64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            warmup_epochs: self.warmup_epochs,
            weight_decay: self.weight_decay.unwrap_or(default_decay),
            momentum: self.momentum,
            label_smoothing: self.label_smoothing,
            mixup_alpha: self.mixup,
            mixup_off_last_epochs: self.mixup_off_last_epochs,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            ..TrainConfig::default()
        }
    }

    /// The run directory.
    pub fn run_dir(&self, job: &str) -> PathBuf {
        crate::cli::run_dir_or_default(self.out.as_deref(), &format!("{job}-"))
    }
}

/// Knowledge distillation from a trained subnet (train_subnet).
#[derive(Debug, Clone, Args)]
pub struct DistillArgs {
    /// Teacher checkpoint: a train_subnet run directory (its latest checkpoint), a
    /// checkpoint folder or a model.mpk file, trained on the same data.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Genome of the teacher (preset, JSON genome file or BLOCKS;CHANNELS; default: --arch).
    #[arg(long, requires = "teacher")]
    pub teacher_arch: Option<String>,
    /// Weight w of the distillation term: (1 − w)·CE + w·T²·KL(teacher ‖ student) [default: 0.5].
    #[arg(long, requires = "teacher")]
    pub distill_weight: Option<f64>,
    /// Softmax temperature T of the distillation term [default: 4].
    #[arg(long, requires = "teacher")]
    pub distill_temperature: Option<f64>,
}

impl DistillArgs {
    /// The distillation settings when a teacher is given.
    pub fn distillation(&self) -> Option<Distillation> {
        let default = Distillation::default();
        self.teacher.as_ref().map(|_| Distillation {
            weight: self.distill_weight.unwrap_or(default.weight),
            temperature: self.distill_temperature.unwrap_or(default.temperature),
        })
    }
}

/// Loads a fixed network of `space` and `arch` from a checkpoint: a trainer run
/// directory (its `latest.json`), a checkpoint folder or a `model.mpk` file.
///
/// # Errors
/// A message naming the file when it is missing or unreadable, or when its tensors do
/// not fit `arch` in `space` (another genome, layout, width or number of classes).
pub fn load_subnet<B: Backend>(
    path: &Path,
    space: &SearchSpace,
    arch: &Architecture,
    device: &B::Device,
) -> Result<ShuffleNasNet<B>, String> {
    let fresh = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(device).map_err(|e| e.to_string())?;
    load_checked(fresh, path, device).map_err(|e| match e {
        TrainError::Checkpoint { path, reason } if reason.starts_with("does not match") => format!(
            "{path} does not hold a network of genome {arch} in this search space ({reason}); was it trained with \
             another --arch or on other data?"
        ),
        // A record of another module kind lacks the fixed network's fields.
        TrainError::Checkpoint { path, reason } if reason.contains("missing field") => format!(
            "{path} does not hold a fixed network ({reason}); a supernet checkpoint? This takes the run of a fixed \
             network, e.g. of train_subnet"
        ),
        other => other.to_string(),
    })
}

/// A progress bar over each epoch's steps with the running loss, images/s and LR, for
/// [`Trainer::on_step`](shufflenas_train::trainer::Trainer::on_step). It is drawn on
/// stdout and hidden when stdout is not a terminal, so logs keep only the per-epoch
/// lines; it is cleared after each epoch's last step, before that epoch's line.
#[derive(Default)]
pub struct StepProgress {
    bar: RefCell<Option<ProgressBar>>,
}

impl StepProgress {
    /// No bar yet: the first step draws one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Shows step `s`.
    pub fn update(&self, s: &StepInfo) {
        let mut bar = self.bar.borrow_mut();
        if s.step <= 1 || bar.is_none() {
            if let Some(old) = bar.take() {
                old.finish_and_clear();
            }
            let new = ProgressBar::with_draw_target(Some(s.steps_per_epoch as u64), ProgressDrawTarget::stdout());
            new.set_style(
                ProgressStyle::with_template("{prefix} [{bar:20}] {pos}/{len} {msg} {elapsed}<{eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            new.set_prefix(format!("epoch {}/{}", s.epoch + 1, s.epochs));
            *bar = Some(new);
        }
        if let Some(current) = bar.as_ref() {
            current.set_message(format!("loss {:.4}, {:.1} img/s, lr {:.4}", s.mean_loss, s.images_per_s, s.lr));
            current.set_position(s.step as u64);
        }
        if s.step >= s.steps_per_epoch
            && let Some(done) = bar.take()
        {
            done.finish_and_clear();
        }
    }
}

impl Drop for StepProgress {
    /// Clears a bar left by an interrupted epoch (e.g. a non-finite loss).
    fn drop(&mut self) {
        if let Some(bar) = self.bar.get_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// One progress line for an epoch.
pub fn epoch_line(m: &EpochMetrics, epochs: usize) -> String {
    let val = match (m.val_top1, m.val_top5) {
        (Some(a), Some(b)) => format!(" val top-1 {:.2}% top-5 {:.2}%", 100.0 * a, 100.0 * b),
        _ => String::new(),
    };
    format!(
        "epoch {}/{epochs}: loss {:.4} train top-1 {:.2}%{val} | {:.1} img/s, lr {:.4}, {:.1} s",
        m.epoch + 1,
        m.train_loss,
        100.0 * m.train_top1,
        m.images_per_s,
        m.lr,
        m.seconds
    )
}

/// The header of `metrics.csv`.
const CSV_HEADER: &str = "epoch,train_loss,train_top1,val_top1,val_top5,images_per_s,lr,seconds";

/// Records epoch `m` in `metrics.csv` in `dir` (header on first write), written
/// atomically. Rows of epoch `m.epoch` and later are replaced: a run resumed from an
/// earlier checkpoint trains them again, and the interrupted run's rows would stay as
/// duplicates.
pub fn record_epoch_csv(dir: &Path, m: &EpochMetrics) -> std::io::Result<()> {
    let path = dir.join("metrics.csv");
    let old = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let earlier = old.lines().skip(1).filter(|line| {
        line.split(',').next().and_then(|epoch| epoch.parse::<usize>().ok()).is_some_and(|epoch| epoch < m.epoch)
    });
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    let row = format!(
        "{},{:.6},{:.6},{},{},{:.2},{:.6},{:.2}",
        m.epoch,
        m.train_loss,
        m.train_top1,
        opt(m.val_top1),
        opt(m.val_top5),
        m.images_per_s,
        m.lr,
        m.seconds
    );
    let mut text = String::from(CSV_HEADER);
    for line in earlier.chain(std::iter::once(row.as_str())) {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    crate::io::write_atomic(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
    use shufflenas_train::checkpoint::tensor_shapes;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("shufflenas-teacher-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    // An interrupted run resumed from the checkpoint of epoch 1 trains epochs 1 and 2
    // again: the CSV keeps one row per epoch, the new ones.
    #[test]
    fn a_resumed_run_replaces_the_rows_it_trains_again() {
        let dir = dir("csv");
        let epoch = |epoch: usize, train_loss: f64| EpochMetrics {
            epoch,
            train_loss,
            train_top1: 0.5,
            val_top1: None,
            val_top5: Some(0.9),
            images_per_s: 100.0,
            lr: 0.1,
            seconds: 1.0,
        };
        for e in 0..3 {
            record_epoch_csv(&dir, &epoch(e, 1.0)).unwrap();
        }
        for e in 1..4 {
            record_epoch_csv(&dir, &epoch(e, 2.0)).unwrap();
        }
        let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        let rows: Vec<(&str, &str)> =
            lines[1..].iter().map(|l| (l.split(',').next().unwrap(), l.split(',').nth(1).unwrap())).collect();
        assert_eq!(rows, [("0", "1.000000"), ("1", "2.000000"), ("2", "2.000000"), ("3", "2.000000")]);
        assert!(lines[1].ends_with(",0.500000,,0.900000,100.00,0.100000,1.00"), "{}", lines[1]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // A teacher must load exactly as saved, and a wrong path or genome must be an error
    // that names the file, never a panic.
    #[test]
    fn a_teacher_loads_from_a_run_directory_and_mismatches_are_errors() {
        let device = Default::default();
        let space = SearchSpace::tiny(1, 10);
        let arch = Architecture::random_seeded(&space, 1);
        let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<Flex>(&device).unwrap();
        // Parameters are drawn on first use: draw them before cloning for the save.
        let _ = tensor_shapes(&net);
        let run = dir("run");
        let folder = run.join("checkpoint-0003");
        std::fs::create_dir_all(&folder).unwrap();
        let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        net.clone().save_file(folder.join("model"), &recorder).unwrap();
        std::fs::write(run.join("latest.json"), "\"checkpoint-0003\"").unwrap();

        let loaded = load_subnet::<Flex>(&run, &space, &arch, &device).unwrap();
        let values = |m: &ShuffleNasNet<Flex>| -> Vec<f32> {
            let x = Tensor::<Flex, 4>::ones([1, 1, 32, 32], &device);
            m.forward(x).into_data().into_vec().unwrap()
        };
        assert_eq!(values(&loaded), values(&net));

        let err = load_subnet::<Flex>(&run.join("nowhere"), &space, &arch, &device).unwrap_err();
        assert!(err.contains("no such checkpoint"), "{err}");
        for seed in 2..6 {
            let other = Architecture::random_seeded(&space, seed);
            if other == arch {
                continue;
            }
            let err = load_subnet::<Flex>(&run, &space, &other, &device).unwrap_err();
            assert!(err.contains("model.mpk") && err.contains("does not hold"), "{err}");
        }
        // Same blocks, other widths: the layers line up but the tensor shapes do not.
        let text = arch.to_string();
        let (blocks, channels) = text.split_once(';').unwrap();
        let narrower: Vec<String> =
            channels.split(',').map(|c| (c.parse::<usize>().unwrap().saturating_sub(1)).max(1).to_string()).collect();
        let other: Architecture = format!("{blocks};{}", narrower.join(",")).parse().unwrap();
        assert_ne!(other, arch);
        let err = load_subnet::<Flex>(&run, &space, &other, &device).unwrap_err();
        assert!(err.contains("first difference at tensor"), "{err}");
        let _ = std::fs::remove_dir_all(run);
    }

    #[test]
    fn distillation_flags_apply_only_with_a_teacher() {
        let none = DistillArgs { teacher: None, teacher_arch: None, distill_weight: None, distill_temperature: None };
        assert_eq!(none.distillation(), None);
        let some = DistillArgs { teacher: Some("runs/t".into()), distill_weight: Some(0.3), ..none };
        assert_eq!(some.distillation(), Some(Distillation { weight: 0.3, temperature: 4.0 }));
    }
}

/// Distributed data parallel over `burn-collective` (feature `ddp`): one peer per local
/// device, as threads of this process, on one node or several.
#[cfg(feature = "ddp")]
#[derive(Debug, Clone, Args)]
pub struct DdpArgs {
    /// Train with DDP: one thread per --devices device, each on its own shard of every
    /// batch, gradients summed over all peers of all nodes. On flex the peers share the
    /// CPU (useful across nodes).
    #[arg(long)]
    pub ddp: bool,
    /// Number of nodes; every node runs the same command with its own --node-rank.
    #[arg(long, default_value_t = 1, requires = "ddp")]
    pub nodes: usize,
    /// This node's index, 0..nodes. Node 0 holds rank 0, which validates and checkpoints.
    #[arg(long, default_value_t = 0, requires = "ddp")]
    pub node_rank: usize,
    /// The orchestrator all nodes connect to, e.g. ws://10.0.0.1:3000 (start it with
    /// `cargo run --release --features ddp --example ddp_orchestrator -- --port 3000`).
    #[arg(long, requires = "ddp")]
    pub orchestrator: Option<String>,
    /// This node as the others reach it, e.g. ws://10.0.0.2:3001 (the port serves tensors).
    #[arg(long, requires = "ddp")]
    pub node_address: Option<String>,
}

#[cfg(feature = "ddp")]
impl DdpArgs {
    /// The local peers, one per device.
    ///
    /// # Errors
    /// A message when a multi-node run misses an address, or an index is out of range.
    pub fn peers(&self, devices: usize) -> Result<Vec<shufflenas_train::ddp::DdpPeer>, String> {
        use shufflenas_train::ddp::{DdpPeer, NodeAddresses};
        let nodes = match (self.nodes, &self.orchestrator, &self.node_address) {
            (1, None, None) => None,
            (nodes, Some(orchestrator), Some(node)) => Some(NodeAddresses {
                nodes,
                node_rank: self.node_rank,
                orchestrator: orchestrator.clone(),
                node: node.clone(),
            }),
            _ => return Err("--ddp over several nodes needs --nodes, --orchestrator and --node-address".into()),
        };
        (0..devices)
            .map(|local| match &nodes {
                None => DdpPeer::single_node(local, devices),
                Some(nodes) => DdpPeer::multi_node(local, devices, nodes),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())
    }
}

/// Trains with DDP: one peer thread per device of `--devices`, each with its own network
/// from `make_net`, seeded with --seed (rank 0's weights are then sent to all) and its own copy of
/// `template`'s settings; the first peer of each node draws the progress bar. Returns the
/// first local peer's result (rank 0's on node 0). `on_epoch` sees every peer's epochs
/// with the peer and whether it is its node's first.
///
/// # Errors
/// Bad DDP flags or devices, a peer's training error, or a panicked peer thread.
#[cfg(feature = "ddp")]
pub fn fit_ddp<M>(
    train: &TrainArgs,
    template: &shufflenas_train::trainer::Trainer<'_>,
    make_net: impl Fn(&crate::backend::Device) -> Result<M, TrainError>,
    on_epoch: impl Fn(&EpochMetrics, &shufflenas_train::ddp::DdpPeer, bool) + Sync,
) -> Result<(M, Vec<EpochMetrics>), String>
where
    M: shufflenas_train::trainer::TrainNet<crate::backend::Training>,
    M::InnerModule: shufflenas_train::trainer::ValidNet<crate::backend::Inference>,
{
    use crate::backend::Training;
    use shufflenas_train::trainer::Trainer;
    let devices = crate::backend::peer_devices(train.devices.into())?;
    let peers = train.ddp.peers(devices.len())?;
    // The template's step callback is not shareable between threads: take the rest.
    let Trainer { config, train: data, valid, sampler, dir, model_id, stop_after, .. } = template;
    // Built and initialised one after the other here: the backend's seeded RNG is global,
    // and peers drawing from it at once would give rank 0 different weights on every run.
    let nets = devices
        .iter()
        .map(|device| {
            Training::seed(device, train.seed);
            let net = make_net(device)?;
            shufflenas_train::checkpoint::tensor_shapes(&net);
            Ok(net)
        })
        .collect::<Result<Vec<M>, TrainError>>()
        .map_err(|e| e.to_string())?;
    let fit = |peer: &shufflenas_train::ddp::DdpPeer, device: &crate::backend::Device, net: M| {
        let first_here = peer.rank.is_multiple_of(devices.len());
        let progress = StepProgress::new();
        let show_step = |s: &StepInfo| progress.update(s);
        let trainer = Trainer {
            config: config.clone(),
            train: data,
            valid: *valid,
            sampler: *sampler,
            dir: dir.clone(),
            model_id: model_id.clone(),
            stop_after: *stop_after,
            on_step: first_here.then_some(&show_step as &dyn Fn(&StepInfo)),
        };
        trainer.fit_distributed(net, device, peer, train.resume, &mut |m| on_epoch(m, peer, first_here))
    };
    let fit = &fit;
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = peers
            .iter()
            .zip(&devices)
            .zip(nets)
            .map(|((peer, device), net)| scope.spawn(move || fit(peer, device, net)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut first = None;
    for (result, peer) in results.into_iter().zip(&peers) {
        let result = result.map_err(|_| format!("the thread of DDP peer rank {} panicked", peer.rank))?;
        let result = result.map_err(|e| format!("DDP peer rank {}: {e}", peer.rank))?;
        first.get_or_insert(result);
    }
    first.ok_or_else(|| "no DDP peer ran".to_string())
}
