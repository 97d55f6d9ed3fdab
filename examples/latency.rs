//! Latency and throughput of a ShuffleNAS network on the selected backend: the
//! interface the project's performance is tracked with.
//!
//!     cargo run --release --example latency -- --arch oneshot-s+ --batch 1 --size 224 --iters 30
//!     cargo run --release --example latency -- --batch 32 --size 32 --classes 10 --train-step
//!     cargo run --release --example latency -- --batch 32 --size 32 --classes 10 --train-step --supernet
//!
//! Prints one JSON object on its last line: `median_ms`, `p10_ms`, `p90_ms`,
//! `images_per_s`, `backend`, `threads` (and the workload).

use std::process::ExitCode;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::backend::AutodiffBackend;
use clap::Parser;
use shufflenas::backend::{self, Training};
use shufflenas::model::nn::{ShuffleNasNetConfig, SupernetConfig};
use shufflenas::model::{Architecture, SearchSpace};
use shufflenas::workload_args::WorkloadArgs;

/// Times forward passes or training steps.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Network, input shape and paths.
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Timed iterations (after 3 warm-up iterations).
    #[arg(long, default_value_t = 30)]
    iters: usize,
    /// Fold BN into the convs before timing inference of a fixed network (ignored, and
    /// reported false, with --train-step or --supernet).
    #[arg(long)]
    fuse_bn: bool,
    /// Float precision: f32, or f16/bf16 on the GPU backends.
    #[arg(long, value_enum, default_value = "f32")]
    precision: Precision,
}

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    shufflenas::cli::finish(run(Args::parse()))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn time_it(iters: usize, mut step: impl FnMut(usize)) -> Vec<f64> {
    for i in 0..3 {
        let start = Instant::now();
        step(i);
        eprintln!("warm-up {i}: {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
    }
    let mut times: Vec<f64> = (0..iters)
        .map(|i| {
            let start = Instant::now();
            step(i + 3);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            eprintln!("iteration {i}: {ms:.1} ms");
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Float precision of the timed network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Precision {
    /// float32 everywhere (every backend).
    F32,
    /// float16 tensors (GPU backends only).
    F16,
    /// bfloat16 tensors (GPU backends only).
    Bf16,
}

impl Precision {
    fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let w = &args.workload;
    if args.iters == 0 || w.batch == 0 {
        return Err("--iters and --batch must be positive".into());
    }
    let device = backend::device()?;
    let space = w.space().map_err(|e| e.to_string())?;
    let arch = w.architecture(&space).map_err(|e| e.to_string())?;
    let paths = w.paths(&space, args.iters + 3);
    let workload = Workload { args: &args, space: &space, arch: &arch, paths: &paths };
    let times = match args.precision {
        Precision::F32 => workload.measure::<Training>(&device)?,
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        Precision::F16 => workload.measure::<backend::TrainingF16>(&device)?,
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        Precision::Bf16 => workload.measure::<backend::TrainingBf16>(&device)?,
        #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
        other => return Err(format!("--precision {} needs a GPU backend (--features cuda or wgpu)", other.name())),
    };
    let median = percentile(&times, 0.5);
    let json = serde_json::json!({
        "median_ms": median,
        "p10_ms": percentile(&times, 0.1),
        "p90_ms": percentile(&times, 0.9),
        "images_per_s": w.batch as f64 / (median / 1e3),
        "backend": backend::NAME,
        "threads": backend::threads(),
        "batch": w.batch,
        "size": w.size,
        "classes": w.classes,
        "train_step": w.train_step,
        "supernet": w.supernet,
        // Folding applies to a fixed network's inference only.
        "fuse_bn": args.fuse_bn && !w.train_step && !w.supernet,
        "precision": args.precision.name(),
        "arch": if w.supernet { "supernet".to_string() } else { arch.to_string() },
    });
    println!("{json}");
    Ok(())
}

/// Times `iters` training steps of `model` (after 3 warm-up steps): the loss of step `i`
/// from `loss`, its backward pass, and an optimizer step of `sgd`, then `sync`.
fn time_training<B: AutodiffBackend, M: AutodiffModule<B>>(
    iters: usize,
    model: M,
    sgd: &SgdConfig,
    sync: impl Fn(),
    loss: impl Fn(&M, usize) -> Tensor<B, 1>,
) -> Vec<f64> {
    let mut optim = sgd.init::<B, M>();
    let mut model = Some(model);
    time_it(iters, |i| {
        let net = model.take().expect("model present");
        let grads = GradientsParams::from_grads(loss(&net, i).backward(), &net);
        model = Some(optim.step(0.01, net, grads));
        sync();
    })
}

/// What to time: the parsed flags, the space and the genomes.
struct Workload<'a> {
    args: &'a Args,
    space: &'a SearchSpace,
    arch: &'a Architecture,
    paths: &'a [Architecture],
}

impl Workload<'_> {
    /// Per-iteration wall times in ms (sorted) on backend `B`, every iteration synchronised
    /// with the device.
    fn measure<B: AutodiffBackend<Device = backend::Device>>(&self, device: &B::Device) -> Result<Vec<f64>, String> {
        let (args, space) = (self.args, self.space);
        let w = &args.workload;
        B::seed(device, w.seed);
        let shape = [w.batch, 3, w.size, w.size];
        let sync = || B::sync(device).expect("device synchronisation");
        if w.train_step {
            let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), device);
            let y = Tensor::<B, 1, Int>::random([w.batch], Distribution::Uniform(0.0, w.classes as f64), device);
            let loss_fn = CrossEntropyLossConfig::new().init(device);
            // The PyTorch peer's optimizer: SGD, Nesterov momentum 0.9, weight decay 4e-5.
            let sgd = SgdConfig::new()
                .with_momentum(Some(MomentumConfig::new().with_nesterov(true).with_dampening(0.0)))
                .with_weight_decay(Some(WeightDecayConfig::new(4e-5)));
            if w.supernet {
                let net = SupernetConfig::new(space.clone()).init::<B>(device).map_err(|e| e.to_string())?;
                Ok(time_training(args.iters, net, &sgd, sync, |net, i| {
                    loss_fn.forward(net.forward(x.clone(), &self.paths[i]).expect("valid path"), y.clone())
                }))
            } else {
                let config = ShuffleNasNetConfig::new(space.clone(), self.arch.clone());
                let net = config.init::<B>(device).map_err(|e| e.to_string())?;
                Ok(time_training(args.iters, net, &sgd, sync, |net, _| {
                    loss_fn.forward(net.forward(x.clone()), y.clone())
                }))
            }
        } else {
            let x = Tensor::<B::InnerBackend, 4>::random(shape, Distribution::Normal(0.0, 1.0), device);
            let read = |t: Tensor<B::InnerBackend, 2>| {
                let _ = t.into_data();
            };
            if w.supernet {
                let net = SupernetConfig::new(space.clone()).init::<B>(device).map_err(|e| e.to_string())?.valid();
                Ok(time_it(args.iters, |i| read(net.forward(x.clone(), &self.paths[i]).expect("valid path"))))
            } else {
                let config = ShuffleNasNetConfig::new(space.clone(), self.arch.clone());
                let mut net = config.init::<B::InnerBackend>(device).map_err(|e| e.to_string())?;
                if args.fuse_bn {
                    net = net.fuse_bn();
                }
                Ok(time_it(args.iters, |_| read(net.forward(x.clone()))))
            }
        }
    }
}
