//! Trains a weight-sharing supernet: one uniformly sampled path per step, with the
//! seed's channel-selection warm-up (maximum channels for the first half, then the
//! range widens down to scale 0.6).
//!
//!     cargo run --release --example train_supernet -- --epochs 4
//!     cargo run --release --example train_supernet -- --format idx --data /usr/share/datasets/fashion-mnist \
//!       --epochs 20 --batch 128 --out runs/fmnist-supernet [--resume]

use std::process::ExitCode;

use burn::prelude::*;
use clap::{Parser, ValueEnum};
use shufflenas::backend::{self, Training};
use shufflenas::data_args::DataArgs;
use shufflenas::model::nn::SupernetConfig;
use shufflenas::train::sampler::{CostBox, PathSampler, Sampling};
use shufflenas::train::schedule::ChannelSchedule;
use shufflenas::train::trainer::{EpochMetrics, StepInfo, Trainer};
use shufflenas::train_args::{StepProgress, TrainArgs, epoch_line, record_epoch_csv};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ChannelMode {
    /// The seed's warm-up.
    Warmup,
    /// Searchable range (0.6–2.0) from the start.
    FromStart,
    /// Full range 0.2–2.0 from the start (works with SE, per the seed).
    Full,
}

/// Train a ShuffleNAS supernet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Channel selection schedule.
    #[arg(long, value_enum, default_value = "warmup")]
    channels: ChannelMode,
    /// Only train paths with MicroNet FLOPs at most this (millions).
    #[arg(long)]
    flops_max: Option<f64>,
    /// Only train paths with params at most this (millions).
    #[arg(long)]
    params_max: Option<f64>,
    /// Spread paths uniformly over this many FLOPs bins of the whole range (megvii SPOS
    /// style); not combined with --flops-max / --params-max.
    #[arg(long, conflicts_with_all = ["flops_max", "params_max"])]
    flops_bins: Option<usize>,
    /// Data.
    #[command(flatten)]
    data: DataArgs,
    /// Hyper-parameters.
    #[command(flatten)]
    train: TrainArgs,
}

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    shufflenas::cli::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let device = backend::device()?;
    let devices = args.train.local_devices()?;
    let loaders = args.data.loaders(args.train.seed).map_err(|e| e.to_string())?;
    let space = loaders.search_space();
    let (lo, hi) = (space.searchable_min_id, space.searchable_max_id);
    let schedule = match args.channels {
        ChannelMode::Warmup => ChannelSchedule::WarmUp { epochs: args.train.epochs, lowest: lo, highest: hi },
        ChannelMode::FromStart => ChannelSchedule::FromStart { lowest: lo, highest: hi },
        ChannelMode::Full => ChannelSchedule::FromStart { lowest: 0, highest: hi },
    };
    let sampling = match (args.flops_bins, args.flops_max, args.params_max) {
        (Some(bins), _, _) => Sampling::FlopsUniform { bins },
        (None, None, None) => Sampling::Uniform,
        (None, f, p) => Sampling::Constrained(CostBox {
            flops: (0.0, f.map_or(f64::INFINITY, |m| m * 1e6)),
            params: (0.0, p.map_or(f64::INFINITY, |m| m * 1e6)),
        }),
    };
    let sampler = PathSampler::new(space.clone(), schedule, sampling, args.train.seed).map_err(|e| e.to_string())?;
    Training::seed(&device, args.train.seed);
    let net = SupernetConfig::new(space.clone())
        .with_bn_momentum(0.1)
        .init::<Training>(&device)
        .map_err(|e| e.to_string())?;
    let dir = args.train.run_dir("supernet");
    let progress = StepProgress::new();
    let show_step = |s: &StepInfo| progress.update(s);
    let trainer = Trainer {
        config: args.train.config(4e-5),
        train: &loaders.train,
        valid: Some(&loaders.valid),
        sampler: Some(&sampler),
        dir: dir.clone(),
        model_id: format!(
            "supernet|{}|{:?}|{:?}",
            serde_json::to_string(&space).unwrap_or_default(),
            args.channels,
            sampling
        ),
        stop_after: None,
        on_step: Some(&show_step),
    };
    println!(
        "training the supernet ({} trainable params) on {} images, backend {}, run dir {}",
        net.trainable_params(),
        loaders.train.len(),
        backend::NAME,
        dir.display()
    );
    let epochs = args.train.epochs;
    let log_epoch = |m: &EpochMetrics, print: bool, record: bool| {
        let allowed = sampler.schedule().allowed(m.epoch);
        if print {
            println!("{} | channel ids {}..={}", epoch_line(m, epochs), allowed.start(), allowed.end());
        }
        if record && let Err(e) = record_epoch_csv(&dir, m) {
            eprintln!("warning: cannot write metrics.csv: {e}");
        }
    };
    #[cfg(feature = "ddp")]
    if args.train.ddp.ddp {
        let make_net =
            |device: &backend::Device| Ok(SupernetConfig::new(space.clone()).with_bn_momentum(0.1).init(device)?);
        shufflenas::train_args::fit_ddp(&args.train, &trainer, make_net, |m, peer, first| {
            log_epoch(m, first, peer.rank == 0)
        })?;
        match args.train.ddp.node_rank {
            0 => println!("done; checkpoints and metrics in {}", dir.display()),
            _ => println!("done; checkpoints and metrics are on node 0"),
        }
        return Ok(());
    }
    trainer
        .fit_data_parallel(net, &devices, args.train.resume, &mut |m| log_epoch(m, true, true))
        .map_err(|e| e.to_string())?;
    println!("done; checkpoints and metrics in {}", dir.display());
    Ok(())
}
