//! Searches a trained supernet for the best subnet under FLOPs/params (or latency)
//! caps: the seed's genetic algorithm, then random search at the same budget, with
//! BN recalibration per candidate. Writes report.md, SVG plots, the best genomes as
//! JSON, a log of every evaluation, and resumable state files to --out.
//!
//!     cargo run --release --example train_supernet -- --space tiny --epochs 4 --out runs/sn
//!     cargo run --release --example search -- --supernet runs/sn --space tiny --holdout 500 \
//!       --flops-max 60 --population 20 --retain 5 --iterations 5 --out runs/search
//!
//! Add `--ranking 5 --ranking-epochs 2` for the supernet ranking check (Kendall tau
//! between supernet and standalone accuracy). Rerun the same command with `--out DIR` to resume.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use shufflenas::backend::{self, Inference};
use shufflenas::data_args::DataArgs;
use shufflenas::search::load_supernet;
use shufflenas::search_args::{SearchArgs, ranking_check, run_search};
use shufflenas::train::trainer::TrainConfig;

/// Search a trained ShuffleNAS supernet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Supernet checkpoint: a training run directory, a checkpoint folder or model.mpk.
    #[arg(long)]
    supernet: PathBuf,
    /// Output directory (default: runs/search-<unix time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Supernet ranking check: train this many genomes (at least 2) from scratch (0: skip).
    #[arg(long, default_value_t = 0)]
    ranking: usize,
    /// Epochs of each ranking-check training.
    #[arg(long, default_value_t = 2)]
    ranking_epochs: usize,
    /// Seed of the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Data.
    #[command(flatten)]
    data: DataArgs,
    /// Search.
    #[command(flatten)]
    search: SearchArgs,
}

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    shufflenas::cli::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    if args.ranking == 1 {
        return Err(
            "--ranking needs at least 2 genomes (a rank correlation of one genome is undefined); 0 skips it".into()
        );
    }
    let device = backend::device()?;
    let loaders = args.data.loaders(args.seed).map_err(|e| e.to_string())?;
    if args.data.holdout == 0 {
        eprintln!(
            "note: no --holdout: the search validates on the test split, which then no longer measures the winner \
             unseen (give the supernet's --holdout to search on its held-out training images)"
        );
    }
    let space = loaders.search_space();
    let supernet = load_supernet::<Inference>(&args.supernet, &space, &device).map_err(|e| e.to_string())?;
    let dir = shufflenas::cli::run_dir_or_default(args.out.as_deref(), "search-");
    println!(
        "searching {} ({} genomes in the space) on {} validation images, {} recalibration images, backend {}, output {}",
        args.supernet.display(),
        space.num_architectures(),
        loaders.search_valid.len(),
        args.search.recal_images,
        backend::NAME,
        dir.display()
    );
    let notes = format!(
        "Supernet `{}`, backend {}, {} validation images, {} recalibration images, constraints `{:?}`.",
        args.supernet.display(),
        backend::NAME,
        loaders.search_valid.len(),
        args.search.recal_images,
        args.search.constraints()
    );
    let run = run_search(&args.search, &supernet, &loaders, &device, &dir, &notes)?;
    let best = run.genetic.best();
    println!(
        "GA best: top-1 {:.2}% fitness {:.4}, {:.1} MFLOPs, {:.3}M params, score {:.3}: {} ({} genomes, {:.0} s)",
        100.0 * best.evaluation.top1,
        best.fitness,
        best.cost.flops / 1e6,
        best.cost.params / 1e6,
        best.cost.score,
        best.arch,
        run.genetic.candidates.len(),
        run.genetic_seconds
    );
    if let Some(random) = &run.random {
        let r = random.best();
        println!(
            "random best at the same budget: top-1 {:.2}% fitness {:.4} ({} genomes, {:.0} s)",
            100.0 * r.evaluation.top1,
            r.fitness,
            random.candidates.len(),
            run.random_seconds
        );
    }
    if args.ranking > 1 {
        let train = TrainConfig {
            epochs: args.ranking_epochs,
            // Short runs: no warm-up, so that even one epoch trains at the full rate.
            lr: 0.2,
            warmup_epochs: 0,
            seed: args.seed,
            weight_decay: 3e-5,
            ..TrainConfig::default()
        };
        let (_, tau) = ranking_check(&run.genetic, &space, &loaders, &device, args.ranking, train, &dir)?;
        println!("supernet ranking: Kendall tau {}", tau.map_or("n/a".into(), |t| format!("{t:.3}")));
    }
    println!("report: {}", run.outputs.report.display());
    println!("best genome: {}", run.outputs.best.first().map_or(String::new(), |p| p.display().to_string()));
    Ok(())
}
