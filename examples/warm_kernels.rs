//! Compiles a JIT backend's kernels (cuda, wgpu) ahead of a run, in parallel processes.
//!
//!     cargo run --release --features cuda --example warm_kernels -- --batch 256 --train-step --supernet --jobs 16
//!     cargo run --release --features cuda --example warm_kernels -- --batch 256 --all-choices --train-step --jobs 16
//!
//! CubeCL compiles and autotunes each new kernel on first use, one at a time per
//! process. This example runs the pieces of the network a `latency` run with the same
//! arguments meets (the stem, each block at its width, the head; `--all-choices`: every
//! block of the supernet at every searchable width) on their own, split over `--jobs`
//! processes that fill one on-disk cache. Put a `cubecl.toml` with `[compilation] cache`
//! and `[autotune] cache` in the working directory (benches/gpu/cubecl.toml) so that
//! the caches outlive the processes. Prints one JSON line per process and a summary.

use std::process::{Command, ExitCode};
use std::str::FromStr;
use std::time::Instant;

use burn::module::AutodiffModule;
use clap::Parser;
use shufflenas::backend::{self, Device, Inference, Training};
use shufflenas::model::SearchSpace;
use shufflenas::model::nn::{ShuffleNasNetConfig, SupernetConfig};
use shufflenas::train::warmup::{
    Pieces, WarmPiece, WarmUpError, all_pieces, path_pieces, shard, warm_up, warm_up_training,
};
use shufflenas::workload_args::WorkloadArgs;

#[derive(Parser, Debug)]
#[command(about = "Compile and autotune a JIT backend's kernels ahead of a run, in parallel processes")]
struct Args {
    /// Network, input shape and paths of the run to warm up for.
    #[command(flatten)]
    workload: WorkloadArgs,
    /// With --supernet: paths drawn with --seed (`latency --iters K` draws K + 3).
    #[arg(long, default_value_t = 6)]
    paths: usize,
    /// With --supernet: every block at every searchable width instead of the paths'.
    #[arg(long)]
    all_choices: bool,
    /// Processes to split the pieces between (each runs this program with `--shard`),
    /// 1 to 256.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Run only shard I of N of the pieces (`I/N`); set by `--jobs`.
    #[arg(long)]
    shard: Option<Shard>,
}

/// Shard `index` of `count`, written `index/count`.
#[derive(Debug, Clone, Copy)]
struct Shard {
    index: usize,
    count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard wants I/N with I < N, got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    let args = Args::parse();
    if args.jobs > 1 && args.shard.is_none() {
        return shufflenas::cli::finish(spawn_shards(usize::from(args.jobs)).map_err(|e| e.to_string()));
    }
    shufflenas::cli::finish(run(&args).map_err(|e| e.to_string()))
}

/// Runs this program `jobs` times with the same arguments and `--shard i/jobs`, at once.
fn spawn_shards(jobs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let exe = std::env::current_exe()?;
    let mut passed = Vec::new();
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        match arg.as_str() {
            "--jobs" => {
                raw.next();
            }
            a if a.starts_with("--jobs=") => {}
            _ => passed.push(arg),
        }
    }
    let children: Vec<_> = (0..jobs)
        .map(|i| Command::new(&exe).args(&passed).args(["--shard", &format!("{i}/{jobs}")]).spawn())
        .collect::<Result<_, _>>()?;
    let failed: Vec<usize> = children
        .into_iter()
        .enumerate()
        .filter_map(|(i, mut child)| match child.wait() {
            Ok(status) if status.success() => None,
            _ => Some(i),
        })
        .collect();
    println!(
        "{}",
        serde_json::json!({ "jobs": jobs, "failed_shards": failed, "seconds": start.elapsed().as_secs_f64() })
    );
    if failed.is_empty() { Ok(()) } else { Err(format!("shards {failed:?} failed").into()) }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let w = &args.workload;
    let space = w.space()?;
    let pieces: Vec<WarmPiece> = if w.supernet && args.all_choices {
        all_pieces(&space)?
    } else if w.supernet {
        path_pieces(&space, &w.paths(&space, args.paths))?
    } else {
        path_pieces(&space, &[w.architecture(&space)?])?
    };
    let total = pieces.len();
    let Shard { index, count } = args.shard.unwrap_or(Shard { index: 0, count: 1 });
    let mine = shard(&pieces, index, count)?;
    let device = backend::device()?;
    if w.supernet {
        let net = SupernetConfig::new(space.clone()).init::<Training>(&device)?;
        warm(net, w.train_step, &space, &mine, w.batch, &device)?;
    } else {
        let net = ShuffleNasNetConfig::new(space.clone(), w.architecture(&space)?).init::<Training>(&device)?;
        warm(net, w.train_step, &space, &mine, w.batch, &device)?;
    }
    println!(
        "{}",
        serde_json::json!({
            "shard": format!("{index}/{count}"),
            "pieces": mine.len(),
            "of": total,
            "backend": backend::NAME,
            "seconds": start.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

/// Warms `net`'s training kernels (`train`), or those of its inference form (`valid()`).
fn warm<N>(
    net: N,
    train: bool,
    space: &SearchSpace,
    pieces: &[WarmPiece],
    batch: usize,
    device: &Device,
) -> Result<(), WarmUpError>
where
    N: AutodiffModule<Training> + Pieces<Training>,
    N::InnerModule: Pieces<Inference>,
{
    if train {
        warm_up_training(&net, space, pieces, batch, device)
    } else {
        warm_up(&net.valid(), space, pieces, batch, device)
    }
}
