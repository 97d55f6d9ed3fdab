//! The whole NAS pipeline as one function, shared by the `quickstart` and
//! `fashion_mnist` examples:
//! 1. train a supernet (block selection, then the channel warm-up);
//! 2. recalibrate BN per candidate and run the genetic search under the caps (and
//!    random search at the same budget);
//! 3. train the best genome from scratch (or, with `--inherit-weights`, fine-tune it from
//!    its supernet weights);
//! 4. profile it with the MicroNet rules;
//! 5. write `<out>/report.md`, the plots, checkpoints and metrics logs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use clap::{CommandFactory, FromArgMatches, Parser};
use micronet_score::{Baseline, Convention};
use shufflenas_model::cost::architecture_ops;
use shufflenas_model::nn::{ShuffleNasNetConfig, SupernetConfig};
use shufflenas_train::sampler::{PathSampler, Sampling};
use shufflenas_train::schedule::ChannelSchedule;
use shufflenas_train::trainer::{EpochMetrics, TrainConfig, Trainer};

use crate::backend::{self, Training};
use crate::data_args::DataArgs;
use crate::search_args::{SearchArgs, run_search};
use crate::train_args::{epoch_line, record_epoch_csv};

/// Flags of the whole pipeline (the examples set their own defaults with
/// [`parse_with_defaults`]).
#[derive(Debug, Parser)]
#[command(version, about = "Run the whole ShuffleNAS pipeline: supernet, search, retraining, MicroNet profile")]
pub struct PipelineArgs {
    /// Supernet training epochs.
    #[arg(long, default_value_t = 4)]
    pub supernet_epochs: usize,
    /// Epochs of the final training.
    #[arg(long, default_value_t = 3)]
    pub subnet_epochs: usize,
    /// Start the final training from the winner's weights in the supernet (fine-tuning,
    /// as once-for-all does) instead of from scratch (the seed's retraining).
    #[arg(long)]
    pub inherit_weights: bool,
    /// Peak learning rate of both trainings.
    #[arg(long, default_value_t = 0.2)]
    pub lr: f64,
    /// Seed of everything.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (default: runs/UNIX_TIME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Search.
    #[command(flatten)]
    pub search: SearchArgs,
}

/// Parses the command line with `defaults` (flag id, value) replacing the flags'
/// built-in defaults: each example sizes the pipeline for its data.
pub fn parse_with_defaults(defaults: &[(&str, &'static str)]) -> PipelineArgs {
    let mut command = PipelineArgs::command();
    for &(id, value) in defaults {
        command = command.mut_arg(id, |a| a.default_value(value));
    }
    let matches = command.get_matches();
    PipelineArgs::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn stage(n: usize, title: &str) {
    println!("\n== {n}/5 {title}");
}

fn log_epoch(dir: &Path, epochs: usize) -> impl FnMut(&EpochMetrics) + '_ {
    move |m| {
        println!("{}", epoch_line(m, epochs));
        if let Err(e) = record_epoch_csv(dir, m) {
            eprintln!("warning: cannot write metrics.csv: {e}");
        }
    }
}

/// Wall seconds of a training stage: this process's time, or, when the stage resumed
/// from a checkpoint, its epochs' times as saved in its metrics (which are longer).
fn stage_seconds(history: &[EpochMetrics], start: Instant) -> f64 {
    let epochs: f64 = history.iter().map(|m| m.seconds).sum();
    epochs.max(start.elapsed().as_secs_f64())
}

/// Runs the pipeline: supernet training, search (GA + random baseline), retraining the
/// best genome from scratch, MicroNet profile, and `report.md` in the run directory.
/// Each training stage resumes from its checkpoints when rerun with the same `--out`.
///
/// # Errors
/// A message for bad flags, data, training or output problems.
pub fn run_pipeline(args: PipelineArgs) -> Result<(), String> {
    let total = Instant::now();
    let device = backend::device()?;
    let loaders = args.data.loaders(args.seed).map_err(|e| e.to_string())?;
    let space = loaders.search_space();
    // Search flags fail now, not after the supernet has trained.
    args.search.check(&space)?;
    let dir = crate::cli::run_dir_or_default(args.out.as_deref(), "");
    if dir.exists() && !dir.is_dir() {
        return Err(format!("--out {} exists and is not a directory", dir.display()));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "ShuffleNAS pipeline: {} training / {} search-validation / {} test images, {} genomes in the space, backend {}, \
         output {}",
        loaders.train.len(),
        loaders.search_valid.len(),
        loaders.valid.len(),
        space.num_architectures(),
        backend::NAME,
        dir.display()
    );
    let train_config = |epochs: usize, decay: f64| TrainConfig {
        epochs,
        lr: args.lr,
        warmup_epochs: 1.min(epochs.saturating_sub(1)),
        weight_decay: decay,
        seed: args.seed,
        recalibration_images: args.search.recal_images,
        ..TrainConfig::default()
    };

    stage(1, "supernet training (block selection, then channel warm-up)");
    let start = Instant::now();
    let (lo, hi) = (space.searchable_min_id, space.searchable_max_id);
    let schedule = ChannelSchedule::WarmUp { epochs: args.supernet_epochs, lowest: lo, highest: hi };
    let sampler = PathSampler::new(space.clone(), schedule, Sampling::Uniform, args.seed).map_err(|e| e.to_string())?;
    Training::seed(&device, args.seed);
    let supernet = SupernetConfig::new(space.clone()).init::<Training>(&device).map_err(|e| e.to_string())?;
    let supernet_dir = dir.join("supernet");
    let trainer = Trainer {
        config: train_config(args.supernet_epochs, 4e-5),
        train: &loaders.train,
        valid: Some(&loaders.valid),
        sampler: Some(&sampler),
        dir: supernet_dir.clone(),
        model_id: format!("quickstart-supernet|{}", serde_json::to_string(&space).unwrap_or_default()),
        stop_after: None,
        on_step: None,
    };
    let (supernet, supernet_history) = trainer
        .fit(supernet, &device, true, &mut log_epoch(&supernet_dir, args.supernet_epochs))
        .map_err(|e| e.to_string())?;
    let supernet_seconds = stage_seconds(&supernet_history, start);

    stage(2, "BN recalibration + genetic search (and random search at the same budget)");
    let notes = format!(
        "Search over the supernet trained in stage 1 ({} epochs), backend {}.",
        args.supernet_epochs,
        backend::NAME
    );
    let search_dir = dir.join("search");
    let searched = run_search(&args.search, &supernet.valid(), &loaders, &device, &search_dir, &notes)?;
    let search_seconds = searched.genetic_seconds + searched.random_seconds;
    let best = searched.genetic.best().clone();
    println!("best genome: {} (supernet top-1 {:.2}%)", best.arch, 100.0 * best.evaluation.top1);

    // (how the report says it, the run directory, the fingerprint's suffix)
    let (start_from, subnet_name, id_suffix) = if args.inherit_weights {
        ("the supernet's weights", "subnet-finetuned", "|from the supernet")
    } else {
        ("scratch", "subnet", "")
    };
    stage(3, &format!("training the best genome from {start_from}"));
    let start = Instant::now();
    Training::seed(&device, args.seed);
    let net = if args.inherit_weights {
        supernet.extract(&best.arch)
    } else {
        ShuffleNasNetConfig::new(space.clone(), best.arch.clone()).init::<Training>(&device)
    }
    .map_err(|e| e.to_string())?;
    // Its own directory, so that a run can be finished both ways (each resumes).
    let subnet_dir = subnet_stage_dir(&dir, subnet_name, &best.arch)?;
    let trainer = Trainer {
        config: train_config(args.subnet_epochs, 3e-5),
        train: &loaders.train,
        valid: Some(&loaders.valid),
        sampler: None,
        dir: subnet_dir.clone(),
        model_id: format!("quickstart-subnet|{}{id_suffix}", best.arch),
        stop_after: None,
        on_step: None,
    };
    let (_, subnet_history) =
        trainer.fit(net, &device, true, &mut log_epoch(&subnet_dir, args.subnet_epochs)).map_err(|e| e.to_string())?;
    label_subnet_stage(&subnet_dir, &best.arch)?;
    let subnet_seconds = stage_seconds(&subnet_history, start);
    // A resumed run counts the stages' earlier parts too (from their saved metrics).
    let total_seconds = total.elapsed().as_secs_f64().max(supernet_seconds + search_seconds + subnet_seconds);

    stage(4, "MicroNet profile");
    let network = architecture_ops(&space, &best.arch).map_err(|e| e.to_string())?;
    let counts = network.counts(&Convention::default());
    let scores = counts.scores(&Baseline::default());
    let profile = network.profile(Convention::default()).layer_table();
    println!(
        "{:.2} MFLOPs, {:.4}M params, {:.2} MMACs; MicroNet score fp32 {:.4}, fp16 {:.4}, int8 {:.4}",
        counts.mflops(),
        counts.params() / 1e6,
        counts.macs as f64 / 1e6,
        scores.fp32,
        scores.fp16,
        scores.int8
    );

    stage(5, "report");
    let test = subnet_history.last().and_then(|m| m.val_top1.zip(m.val_top5));
    let mut md = String::new();
    let _ = writeln!(md, "# ShuffleNAS pipeline run\n");
    let search_split = match args.data.holdout {
        0 => format!("the search validated on the {} test images (no --holdout)", loaders.search_valid.len()),
        n => format!("{n} search-validation images held out of training"),
    };
    let _ = writeln!(
        md,
        "Data: {} training images, {search_split}, {} test images; space `{:?}` ({:?} channels per stage), backend \
         {}, seed {}.\n",
        loaders.train.len(),
        loaders.valid.len(),
        loaders.space,
        space.stage_out_channels,
        backend::NAME,
        args.seed
    );
    let _ = writeln!(md, "## Result\n");
    let _ = writeln!(md, "- genome: `{}`", best.arch);
    let _ = writeln!(md, "- block genes: `{}`", best.arch.block_string());
    let _ = writeln!(md, "- channel genes: `{}`", best.arch.channel_string());
    if let Some((top1, top5)) = test {
        let _ = writeln!(
            md,
            "- test accuracy after {} epochs from {start_from}: top-1 {:.2}%, top-5 {:.2}%",
            args.subnet_epochs,
            100.0 * top1,
            100.0 * top5
        );
    }
    let _ = writeln!(
        md,
        "- supernet estimate (search validation, after BN recalibration): top-1 {:.2}%",
        100.0 * best.evaluation.top1
    );
    let _ = writeln!(
        md,
        "- {:.3} MFLOPs (MicroNet), {:.3} MMACs, {:.4}M params ({} trainable)",
        counts.mflops(),
        counts.macs as f64 / 1e6,
        counts.params() / 1e6,
        counts.trainable_params
    );
    let _ =
        writeln!(md, "- MicroNet score: fp32 {:.4}, fp16 {:.4}, int8 {:.4}\n", scores.fp32, scores.fp16, scores.int8);
    let _ = writeln!(md, "## Search\n");
    let ga = &searched.genetic;
    let _ = writeln!(
        md,
        "- genetic: {} genomes, best top-1 {:.2}%",
        ga.candidates.len(),
        100.0 * ga.best().evaluation.top1
    );
    if let Some(r) = &searched.random {
        let _ = writeln!(
            md,
            "- random (same budget): {} genomes, best top-1 {:.2}%",
            r.candidates.len(),
            100.0 * r.best().evaluation.top1
        );
    }
    let _ = writeln!(md, "- full search report: [search/report.md](search/report.md)\n");
    for plot in &searched.outputs.plots {
        let name = plot.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(md, "![{name}](search/{name})");
    }
    let _ = writeln!(md, "\n## Timings (wall, summed over resumed runs)\n");
    let _ = writeln!(md, "| stage | seconds |\n|---|---|");
    let _ = writeln!(md, "| supernet training ({} epochs) | {supernet_seconds:.0} |", supernet_history.len());
    let _ = writeln!(
        md,
        "| search (GA {:.0} s, random {:.0} s) | {search_seconds:.0} |",
        searched.genetic_seconds, searched.random_seconds
    );
    let _ = writeln!(md, "| subnet training ({} epochs) | {subnet_seconds:.0} |", subnet_history.len());
    let _ = writeln!(md, "| total | {total_seconds:.0} |\n");
    let _ = writeln!(md, "## Files\n");
    let _ = writeln!(md, "- `supernet/`, `{subnet_name}/`: checkpoints, `metrics.json`, `metrics.csv`");
    let _ = writeln!(
        md,
        "- `search/`: `report.md`, plots, `best-*.json`, `*-evaluations.json`, `pareto.json`, state files\n"
    );
    let _ = writeln!(md, "## MicroNet layer table\n\n```\n{profile}\n```");
    let report = dir.join("report.md");
    crate::io::write_atomic(&report, md.as_bytes()).map_err(|e| format!("{}: {e}", report.display()))?;
    let best_path = dir.join("best.json");
    let json = serde_json::to_string_pretty(&best.arch).map_err(|e| e.to_string())?;
    crate::io::write_atomic(&best_path, json.as_bytes()).map_err(|e| format!("{}: {e}", best_path.display()))?;

    println!("\n-------------------------------------------------------------");
    println!("best genome   {}", best.arch);
    if let Some((top1, _)) = test {
        println!("test top-1    {:.2}% ({} epochs from {start_from})", 100.0 * top1, args.subnet_epochs);
    }
    println!(
        "cost          {:.3} MFLOPs, {:.4}M params, MicroNet fp32 {:.4}",
        counts.mflops(),
        counts.params() / 1e6,
        scores.fp32
    );
    if let Some(r) = &searched.random {
        println!(
            "search        GA best {:.2}% vs random {:.2}% at {} genomes",
            100.0 * ga.best().evaluation.top1,
            100.0 * r.best().evaluation.top1,
            r.candidates.len()
        );
    }
    println!(
        "wall time     supernet {supernet_seconds:.0} s, search {search_seconds:.0} s, subnet {subnet_seconds:.0} s, total {total_seconds:.0} s"
    );
    println!("report        {}", report.display());
    Ok(())
}
/// The file of a subnet stage's directory that names the genome it trains.
const GENOME_FILE: &str = "genome.json";

/// `dir/name`, the directory of the final training of `arch`, named by its
/// `genome.json`. A rerun whose search picks another winner (more iterations, say) finds
/// another genome's training there: that one moves aside to `name-<its digest>`, where a
/// later rerun that picks it again finds it and moves it back, so no training is lost or
/// resumed for the wrong genome. `genome.json` is written here only into a directory
/// without a training; one that holds a training but no `genome.json` (written before
/// this file existed) is labelled by [`label_subnet_stage`] once the trainer has resumed
/// it, which it does only for the genome it was started with.
fn subnet_stage_dir(dir: &Path, name: &str, arch: &shufflenas_model::Architecture) -> Result<PathBuf, String> {
    let stage = dir.join(name);
    let genome_of = |d: &Path| -> Result<Option<shufflenas_model::Architecture>, String> {
        let path = d.join(GENOME_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map(Some).map_err(|e| format!("{}: corrupt genome file ({e})", path.display()))
    };
    let aside = |a: &shufflenas_model::Architecture| dir.join(format!("{name}-{}", crate::cli::genome_digest(a)));
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))
    };
    if let Some(other) = genome_of(&stage)?.filter(|g| g != arch) {
        let to = aside(&other);
        if to.exists() {
            return Err(format!("{} holds genome {other}, and {} already exists", stage.display(), to.display()));
        }
        rename(&stage, &to)?;
        println!("{} trained genome {other}: moved to {}", stage.display(), to.display());
    }
    let earlier = aside(arch);
    if !stage.exists() && genome_of(&earlier)?.as_ref() == Some(arch) {
        rename(&earlier, &stage)?;
        println!("resuming this genome's earlier training, moved back from {}", earlier.display());
    }
    std::fs::create_dir_all(&stage).map_err(|e| format!("{}: {e}", stage.display()))?;
    if !shufflenas_train::trainer::holds_run(&stage) {
        label_subnet_stage(&stage, arch)?;
    }
    Ok(stage)
}

/// Writes `stage/genome.json` naming `arch`.
fn label_subnet_stage(stage: &Path, arch: &shufflenas_model::Architecture) -> Result<(), String> {
    let json = serde_json::to_string_pretty(arch).map_err(|e| e.to_string())?;
    let path = stage.join(GENOME_FILE);
    crate::io::write_atomic(&path, json.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use shufflenas_model::Architecture;

    use super::*;

    // A rerun whose search picks another winner trains it in a fresh directory, keeping
    // the earlier training aside; picking the first genome again brings its back.
    #[test]
    fn another_winner_moves_the_earlier_training_aside() {
        let dir = std::env::temp_dir().join(format!("shufflenas-stage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, b) = (Architecture::oneshot_s_plus(), Architecture::oneshot());
        let stage = subnet_stage_dir(&dir, "subnet", &a).unwrap();
        assert_eq!(stage, dir.join("subnet"));
        std::fs::write(stage.join("latest.json"), "\"checkpoint-0001\"").unwrap();

        let stage = subnet_stage_dir(&dir, "subnet", &b).unwrap();
        assert!(!stage.join("latest.json").exists(), "a fresh directory for the new winner");
        let aside = dir.join(format!("subnet-{}", crate::cli::genome_digest(&a)));
        assert!(aside.join("latest.json").is_file());

        let stage = subnet_stage_dir(&dir, "subnet", &a).unwrap();
        assert!(stage.join("latest.json").is_file(), "the first winner's training is back");
        assert!(dir.join(format!("subnet-{}", crate::cli::genome_digest(&b))).join(GENOME_FILE).is_file());
        assert!(!aside.exists());

        std::fs::write(stage.join(GENOME_FILE), "{ not json").unwrap();
        let err = subnet_stage_dir(&dir, "subnet", &a).unwrap_err();
        assert!(err.contains("genome.json: corrupt genome file"), "{err}");

        // A training without genome.json (an older run) is not labelled with a genome
        // it may not hold: the trainer decides, and labels it once it has resumed.
        std::fs::remove_file(stage.join(GENOME_FILE)).unwrap();
        let stage = subnet_stage_dir(&dir, "subnet", &b).unwrap();
        assert!(stage.join("latest.json").is_file() && !stage.join(GENOME_FILE).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
