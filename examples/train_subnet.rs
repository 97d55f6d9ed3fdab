//! Trains a fixed (searched) network from scratch with the seed's recipe.
//!
//!     cargo run --release --example train_subnet -- --arch oneshot-s+ --epochs 5
//!     cargo run --release --example train_subnet -- --format idx --data /usr/share/datasets/fashion-mnist \
//!       --arch oneshot-s+ --epochs 30 --batch 128 --lr 0.2 --out runs/fmnist-oneshot
//!
//! Data: `--format embedded` (default, no files), `idx`, `cifar10`, `cifar100`, `folder`.

use std::process::ExitCode;

use burn::prelude::*;
use clap::Parser;
use shufflenas::backend::{self, Training};
use shufflenas::cli::architecture_for;
use shufflenas::data_args::DataArgs;
use shufflenas::model::Layout;
use shufflenas::model::nn::ShuffleNasNetConfig;
use shufflenas::train::trainer::Trainer;
use shufflenas::train_args::{TrainArgs, append_csv, epoch_line};

/// Train a ShuffleNAS subnet from scratch.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Preset, JSON genome file or BLOCKS;CHANNELS.
    #[arg(long, default_value = "oneshot-s+")]
    arch: String,
    /// Stage layout: oneshot or shufflenetv2plus.
    #[arg(long, default_value = "oneshot")]
    layout: String,
    /// Data.
    #[command(flatten)]
    data: DataArgs,
    /// Hyper-parameters.
    #[command(flatten)]
    train: TrainArgs,
}

fn main() -> ExitCode {
    shufflenas::cli::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let device = backend::device()?;
    let loaders = args.data.loaders(args.train.seed).map_err(|e| e.to_string())?;
    let layout = match args.layout.as_str() {
        "oneshot" => Layout::OneShot,
        "shufflenetv2plus" | "shufflenetv2+" => Layout::ShuffleNetV2Plus,
        other => return Err(format!("unknown layout '{other}' (oneshot, shufflenetv2plus)")),
    };
    let space = loaders.search_space().with_layout(layout);
    let arch = architecture_for(&space, &args.arch).map_err(|e| e.to_string())?;
    Training::seed(&device, args.train.seed);
    let net =
        ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<Training>(&device).map_err(|e| e.to_string())?;
    let dir = args.train.run_dir("subnet");
    let trainer = Trainer {
        config: args.train.config(3e-5),
        train: &loaders.train,
        valid: Some(&loaders.valid),
        sampler: None,
        dir: dir.clone(),
        model_id: format!("{}|{}", serde_json::to_string(&space).unwrap_or_default(), arch),
        stop_after: None,
    };
    println!(
        "training {arch} ({} trainable params) on {} images, {} validation, backend {}, run dir {}",
        net.trainable_params(),
        loaders.train.len(),
        loaders.valid.len(),
        backend::NAME,
        dir.display()
    );
    let epochs = args.train.epochs;
    let (_, history) = trainer
        .fit(net, &device, args.train.resume, &mut |m| {
            println!("{}", epoch_line(m, epochs));
            if let Err(e) = append_csv(&dir, m) {
                eprintln!("warning: cannot write metrics.csv: {e}");
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(last) = history.last() {
        println!(
            "done: val top-1 {:.2}%, top-5 {:.2}% after {} epochs; checkpoints in {}",
            100.0 * last.val_top1.unwrap_or(0.0),
            100.0 * last.val_top5.unwrap_or(0.0),
            history.len(),
            dir.display()
        );
    }
    Ok(())
}
