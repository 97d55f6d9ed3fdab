//! Trains a fixed (searched) network with the seed's recipe, from scratch or from its
//! weights in a trained supernet.
//!
//!     cargo run --release --example train_subnet -- --arch oneshot-s+ --epochs 5
//!     cargo run --release --example train_subnet -- --format idx --data /usr/share/datasets/fashion-mnist \
//!       --arch oneshot-s+ --epochs 30 --batch 128 --lr 0.2 --out runs/fmnist-oneshot
//!     # mixup, and distillation from the run above (same data, same --arch by default)
//!     cargo run --release --example train_subnet -- --format idx --data /usr/share/datasets/fashion-mnist \
//!       --arch oneshot-s+ --epochs 30 --batch 128 --lr 0.2 --mixup 0.2 \
//!       --teacher runs/fmnist-oneshot --distill-weight 0.5 --distill-temperature 4 --out runs/fmnist-distilled
//!     # fine-tune a searched genome from its weights in the supernet instead of from scratch
//!     cargo run --release --example train_subnet -- --space tiny --arch search/best-genetic.json \
//!       --init-from-supernet runs/sn --epochs 3 --out runs/finetuned
//!
//! Data: `--format embedded` (default, no files), `idx`, `cifar10`, `cifar100`, `folder`.

use std::path::PathBuf;
use std::process::ExitCode;

use burn::prelude::*;
use clap::Parser;
use shufflenas::backend::{self, Inference, Training};
use shufflenas::cli::architecture_for;
use shufflenas::data_args::DataArgs;
use shufflenas::model::Layout;
use shufflenas::model::nn::{ShuffleNasNet, ShuffleNasNetConfig};
use shufflenas::search::evaluator::weights_digest;
use shufflenas::search::load_supernet;
use shufflenas::train::trainer::{EpochMetrics, StepInfo, Trainer, holds_run};
use shufflenas::train_args::{DistillArgs, StepProgress, TrainArgs, epoch_line, load_subnet, record_epoch_csv};

/// Train a ShuffleNAS subnet from scratch, or fine-tune it from a supernet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Preset, JSON genome file or BLOCKS;CHANNELS.
    #[arg(long, default_value = "oneshot-s+")]
    arch: String,
    /// Stage layout, overriding the space's: oneshot or shufflenetv2plus (default: the
    /// --space's own widths).
    #[arg(long)]
    layout: Option<String>,
    /// Start from the weights and batch-norm statistics this genome has in a trained
    /// supernet (its run directory or a checkpoint folder) instead of a random init:
    /// fine-tuning, as once-for-all does, instead of the seed's retraining from scratch.
    /// `--resume` needs the same supernet (wherever it lies now): its weights are compared.
    #[arg(long, value_name = "DIR")]
    init_from_supernet: Option<PathBuf>,
    /// Data.
    #[command(flatten)]
    data: DataArgs,
    /// Hyper-parameters.
    #[command(flatten)]
    train: TrainArgs,
    /// Knowledge distillation.
    #[command(flatten)]
    distill: DistillArgs,
}

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    shufflenas::cli::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let device = backend::device()?;
    let devices = args.train.local_devices()?;
    let loaders = args.data.loaders(args.train.seed).map_err(|e| e.to_string())?;
    let space = match args.layout.as_deref() {
        None => loaders.search_space(),
        Some("oneshot") => loaders.search_space().with_layout(Layout::OneShot),
        Some("shufflenetv2plus" | "shufflenetv2+") => loaders.search_space().with_layout(Layout::ShuffleNetV2Plus),
        Some(other) => return Err(format!("unknown layout '{other}' (oneshot, shufflenetv2plus)")),
    };
    let arch = architecture_for(&space, &args.arch).map_err(|e| e.to_string())?;
    Training::seed(&device, args.train.seed);
    let dir = args.train.run_dir("subnet");
    // A resumed run reads every weight from its checkpoint; the supernet is still read,
    // once, for the digest of its weights that the resume check compares.
    let resuming = args.train.resume && holds_run(&dir);
    let init = match &args.init_from_supernet {
        Some(path) => {
            let supernet = load_supernet::<Training>(path, &space, &device);
            Some(supernet.map_err(|e| format!("--init-from-supernet: {e}"))?)
        }
        None => None,
    };
    let make_net = |device: &backend::Device| -> Result<ShuffleNasNet<Training>, String> {
        match &init {
            Some(supernet) if !resuming => {
                supernet.extract(&arch).map(|net| net.fork(device)).map_err(|e| format!("--init-from-supernet: {e}"))
            }
            _ => ShuffleNasNetConfig::new(space.clone(), arch.clone()).init(device).map_err(|e| e.to_string()),
        }
    };
    let net = make_net(&device)?;
    let mut config = args.train.config(3e-5);
    config.distill = args.distill.distillation();
    config.check().map_err(|e| e.to_string())?;
    let teacher = match &args.distill.teacher {
        Some(path) => {
            let teacher_arch = match &args.distill.teacher_arch {
                Some(spec) => architecture_for(&space, spec).map_err(|e| format!("--teacher-arch: {e}"))?,
                None => arch.clone(),
            };
            let net = load_subnet::<Inference>(path, &space, &teacher_arch, &device)
                .map_err(|e| format!("cannot use the teacher: {e}"))?;
            Some((net, teacher_arch, path))
        }
        None => None,
    };
    // The fingerprint names the teacher and the starting supernet by their weights,
    // not their paths: resuming with another one (or none) is refused, and resuming after
    // moving the files is not.
    let mut model_id = format!("{}|{}", serde_json::to_string(&space).unwrap_or_default(), arch);
    if let Some((net, teacher_arch, _)) = &teacher {
        let digest = weights_digest(net).map_err(|e| format!("--teacher: {e}"))?;
        model_id.push_str(&format!("|teacher {teacher_arch} weights {digest:016x}"));
    }
    if let Some(supernet) = &init {
        let digest = weights_digest(supernet).map_err(|e| format!("--init-from-supernet: {e}"))?;
        model_id.push_str(&format!("|init from supernet weights {digest:016x}"));
    }
    let progress = StepProgress::new();
    let show_step = |s: &StepInfo| progress.update(s);
    let trainer = Trainer {
        config,
        train: &loaders.train,
        valid: Some(&loaders.valid),
        sampler: None,
        dir: dir.clone(),
        model_id,
        stop_after: None,
        on_step: Some(&show_step),
    };
    if let Some(path) = args.init_from_supernet.as_ref().filter(|_| !resuming) {
        println!("starting from the supernet weights of {}", path.display());
    }
    println!(
        "training {arch} ({} trainable params) on {} images, {} validation, backend {}, run dir {}",
        net.trainable_params(),
        loaders.train.len(),
        loaders.valid.len(),
        backend::NAME,
        dir.display()
    );
    if let (Some((_, teacher_arch, path)), Some(d)) = (&teacher, trainer.config.distill) {
        println!(
            "distilling from {teacher_arch} ({}): weight {}, temperature {}",
            path.display(),
            d.weight,
            d.temperature
        );
    }
    let epochs = args.train.epochs;
    let mut on_epoch = |m: &EpochMetrics| {
        println!("{}", epoch_line(m, epochs));
        if let Err(e) = record_epoch_csv(&dir, m) {
            eprintln!("warning: cannot write metrics.csv: {e}");
        }
    };
    #[cfg(feature = "ddp")]
    if args.train.ddp.ddp {
        if teacher.is_some() {
            return Err("distillation runs on one device: drop --ddp".into());
        }
        let make_net =
            |device: &backend::Device| make_net(device).map_err(shufflenas::train::trainer::TrainError::Config);
        let (_, history) = shufflenas::train_args::fit_ddp(&args.train, &trainer, make_net, |m, peer, first| {
            if first {
                println!("{} (DDP rank {} of {})", epoch_line(m, epochs), peer.rank, peer.world_size);
            }
            if peer.rank == 0
                && let Err(e) = record_epoch_csv(&dir, m)
            {
                eprintln!("warning: cannot write metrics.csv: {e}");
            }
        })?;
        if args.train.ddp.node_rank != 0 {
            println!("done after {} epochs; validation and checkpoints are on node 0", history.len());
            return Ok(());
        }
        return report(&history, &dir);
    }
    let fitted = match &teacher {
        Some(_) if devices.len() > 1 => return Err("distillation runs on one device: drop --devices".into()),
        Some((teacher, _, _)) => trainer.fit_with_teacher(net, teacher, &device, args.train.resume, &mut on_epoch),
        None => trainer.fit_data_parallel(net, &devices, args.train.resume, &mut on_epoch),
    };
    let (_, history) = fitted.map_err(|e| e.to_string())?;
    report(&history, &dir)
}

fn report(history: &[EpochMetrics], dir: &std::path::Path) -> Result<(), String> {
    let Some(last) = history.last() else { return Ok(()) };
    match (last.val_top1, last.val_top5) {
        (Some(top1), Some(top5)) => println!(
            "done: val top-1 {:.2}%, top-5 {:.2}% after {} epochs; checkpoints in {}",
            100.0 * top1,
            100.0 * top5,
            history.len(),
            dir.display()
        ),
        _ => println!("done after {} epochs (no validation data); checkpoints in {}", history.len(), dir.display()),
    }
    Ok(())
}
