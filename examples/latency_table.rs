//! Measures a hardware-aware latency lookup table on the selected backend: the time of
//! every (position, block, channel) choice of the supernet, timed in place, plus the
//! stem and head. A genome's latency is then predicted as the sum of its entries, as a
//! latency cap or a latency-aware objective in search uses it. Finally checks the
//! prediction on whole random subnets.
//!
//!     cargo run --release --example latency_table -- --space tiny --repeats 3
//!     cargo run --release --example latency_table -- --batch 1 --repeats 10 --out latency.json --check 10
//!     cargo run --release --example latency_table -- --space oneshot-plus --supernet runs/supernet --check 20
//!
//! The table is written as JSON to `--out` (load it with `LatencyTable::load`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use shufflenas::backend::{self, Inference};
use shufflenas::model::nn::SupernetConfig;
use shufflenas::model::{Architecture, SearchSpace};
use shufflenas::search::latency::{LatencyOptions, check_predictions, measure};
use shufflenas::search::load_supernet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Space {
    /// Stage channels [16, 32, 64, 128], 32-pixel input (tests and quick runs).
    Tiny,
    /// The seed's OneShot-S+ space at 32 pixels with stem stride 1 (Fashion-MNIST, CIFAR).
    SmallInput,
    /// The seed's OneShot-S+ space: 224 pixels, RGB, 1000 classes.
    OneshotPlus,
}

/// Measure a latency lookup table and check its predictions.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Search space.
    #[arg(long, value_enum, default_value = "small-input")]
    space: Space,
    /// Image channels (default: 1 for tiny and small-input, 3 for oneshot-plus).
    #[arg(long)]
    channels: Option<usize>,
    /// Classes (default: 10 for tiny and small-input, 1000 for oneshot-plus).
    #[arg(long)]
    classes: Option<usize>,
    /// Batch size of every timed run.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Untimed runs before each entry's timed runs.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed runs per entry.
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Where to write the table (JSON).
    #[arg(long, default_value = "latency.json")]
    out: PathBuf,
    /// Check the prediction on this many random genomes (seeds 0..N); 0 skips the check.
    #[arg(long, default_value_t = 10)]
    check: u64,
    /// Trained supernet (run directory, checkpoint folder or model.mpk); random weights
    /// otherwise (latency does not depend on the values).
    #[arg(long)]
    supernet: Option<PathBuf>,
}

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    shufflenas::cli::finish(run(Args::parse()))
}

fn space_of(args: &Args) -> SearchSpace {
    let base = match args.space {
        Space::Tiny => SearchSpace::tiny(1, 10),
        Space::SmallInput => SearchSpace::small_input(1, 10),
        Space::OneshotPlus => SearchSpace::oneshot_plus(),
    };
    SearchSpace {
        input_channels: args.channels.unwrap_or(base.input_channels),
        num_classes: args.classes.unwrap_or(base.num_classes),
        ..base
    }
}

fn run(args: Args) -> Result<(), String> {
    if args.batch == 0 || args.repeats == 0 {
        return Err("--batch and --repeats must be positive".into());
    }
    // Before minutes of measuring: the table must have somewhere to go.
    if args.out.is_dir() {
        return Err(format!("--out {} is a directory: name the table's file", args.out.display()));
    }
    let device = backend::device()?;
    let space = space_of(&args);
    space.check().map_err(|e| e.to_string())?;
    let supernet = match &args.supernet {
        Some(path) => load_supernet::<Inference>(path, &space, &device).map_err(|e| e.to_string())?,
        None => SupernetConfig::new(space.clone()).init::<Inference>(&device).map_err(|e| e.to_string())?,
    };
    let options = LatencyOptions {
        batch: args.batch,
        warmup: args.warmup,
        repeats: args.repeats,
        backend: backend::NAME.to_string(),
        device: format!("{device:?}"),
    };
    let entries = space.num_blocks() * 4 * space.searchable_channel_ids().len();
    eprintln!(
        "measuring {entries} entries + stem/head on {} ({} threads), batch {}, {} warm-up + {} timed runs each",
        backend::NAME,
        backend::threads(),
        args.batch,
        args.warmup,
        args.repeats
    );
    let start = Instant::now();
    let table = measure(&supernet, &options).map_err(|e| e.to_string())?;
    eprintln!("measured in {:.1} s", start.elapsed().as_secs_f64());
    table.save(&args.out).map_err(|e| e.to_string())?;
    println!("latency table written to {}", args.out.display());
    println!("fixed part (stem + head): {:.3} ± {:.3} ms", table.fixed.mean_ms, table.fixed.std_ms);

    if args.check == 0 {
        return Ok(());
    }
    let archs: Vec<Architecture> = (0..args.check).map(|seed| Architecture::random_seeded(&space, seed)).collect();
    let check = check_predictions(&table, &supernet, &archs, &options).map_err(|e| e.to_string())?;
    println!("{:>4}  {:>12}  {:>12}  {:>7}  genome", "seed", "predicted ms", "measured ms", "error");
    for (seed, (genome, predicted, measured)) in check.rows.iter().enumerate() {
        let error = (predicted - measured) / measured;
        println!("{seed:>4}  {predicted:>12.3}  {measured:>12.3}  {:>+6.1}%  {genome}", error * 100.0);
    }
    let pearson = check.pearson.map_or_else(|| "n/a".to_string(), |r| format!("{r:.3}"));
    println!(
        "pearson {pearson}, mean abs error {:.3} ms, mean rel error {:.1}%",
        check.mean_abs_error_ms,
        check.mean_rel_error * 100.0
    );
    Ok(())
}
