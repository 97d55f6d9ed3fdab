//! Search flags and the search driver shared by the `search` and `quickstart`
//! examples: constraints, objective, genetic-algorithm settings, the random baseline,
//! a progress bar per generation, the reports, and the supernet ranking check.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use shufflenas_model::nn::{ShuffleNasNetConfig, Supernet};
use shufflenas_model::{Architecture, SearchSpace};
use shufflenas_search::report::{Outputs, write_outputs};
use shufflenas_search::{
    Comparison, Constraints, CostModel, GenerationSummary, GeneticConfig, GenomeDomain, LatencyTable, Objective,
    Observer, RandomConfig, Search, SearchResult, SupernetEvaluator,
};
use shufflenas_train::trainer::{TrainConfig, Trainer};

use crate::backend::{self, Device, Inference, Training};
use crate::cli::architecture_for;
use crate::data_args::Loaders;

/// Comparison models for relative caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareArg {
    /// Single Path One Shot: 328M MACs, 3.4M params.
    Spos,
    /// MobileNetV3-large: 217M MACs, 5.4M params.
    Mobilenetv3,
    /// MobileNetV2 1.4: 585M MACs, 6.9M params.
    Mobilenetv2,
    /// ShuffleNetV2+ medium: 222M MACs, 5.6M params.
    Shufflenetv2plus,
}

impl From<CompareArg> for Comparison {
    fn from(c: CompareArg) -> Self {
        match c {
            CompareArg::Spos => Self::SinglePathOneShot,
            CompareArg::Mobilenetv3 => Self::MobileNetV3Large,
            CompareArg::Mobilenetv2 => Self::MobileNetV2x14,
            CompareArg::Shufflenetv2plus => Self::ShuffleNetV2PlusMedium,
        }
    }
}

/// Fitness targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Validation top-1 after BN recalibration.
    Acc,
    /// top-1 − ratio · MicroNet score.
    Balanced,
    /// top-1 − ratio · predicted latency (ms); needs --latency-table.
    Latency,
}

/// Architecture search flags (the seed's genetic-algorithm defaults).
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Cap on MicroNet FLOPs (mults + adds), in millions.
    #[arg(long)]
    pub flops_max: Option<f64>,
    /// Cap on multiply-accumulates, in millions.
    #[arg(long)]
    pub macs_max: Option<f64>,
    /// Cap on parameters, in millions.
    #[arg(long)]
    pub params_max: Option<f64>,
    /// Cap on the MicroNet float32 score (the seed's Σ normalised score).
    #[arg(long)]
    pub score_max: Option<f64>,
    /// Cap MACs and params at --compare-ratio times those of this model.
    #[arg(long, value_enum)]
    pub compare: Option<CompareArg>,
    /// Ratio for --compare.
    #[arg(long, default_value_t = 1.0)]
    pub compare_ratio: f64,
    /// Require ½(MACs/MACs_ref + params/params_ref) ≤ 1 against this model.
    #[arg(long, value_enum)]
    pub combined_vs: Option<CompareArg>,
    /// Latency lookup table (from the `latency_table` example).
    #[arg(long)]
    pub latency_table: Option<PathBuf>,
    /// Cap on predicted latency in ms (needs --latency-table).
    #[arg(long)]
    pub latency_max: Option<f64>,
    /// Fitness.
    #[arg(long, value_enum, default_value = "acc")]
    pub objective: ObjectiveArg,
    /// Weight of the score (balanced) or of the latency in ms (latency).
    #[arg(long, default_value_t = 0.1)]
    pub objective_ratio: f64,
    /// Genomes per generation.
    #[arg(long, default_value_t = 50)]
    pub population: usize,
    /// Best genomes kept as parents.
    #[arg(long, default_value_t = 10)]
    pub retain: usize,
    /// Chance that another genome is kept as a parent.
    #[arg(long, default_value_t = 0.1)]
    pub random_select: f64,
    /// Per-gene mutation probability.
    #[arg(long, default_value_t = 0.1)]
    pub mutate: f64,
    /// Generations.
    #[arg(long, default_value_t = 20)]
    pub iterations: usize,
    /// Best genomes reported.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// Seed of the search.
    #[arg(long, default_value_t = 0)]
    pub search_seed: u64,
    /// Skip the random-search baseline at the GA's budget.
    #[arg(long)]
    pub no_random_baseline: bool,
    /// Hold the block genes at those of this genome (preset, JSON file or BLOCKS;CHANNELS).
    #[arg(long)]
    pub fixed_blocks: Option<String>,
    /// Hold the channel genes at those of this genome.
    #[arg(long)]
    pub fixed_channels: Option<String>,
    /// Training images for each candidate's BN recalibration (the seed: 20,000).
    #[arg(long, default_value_t = 1000)]
    pub recal_images: usize,
    /// Supernet replicas evaluating in parallel (default: 1; more helps when the backend
    /// leaves cores idle).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

impl SearchArgs {
    /// The caps.
    pub fn constraints(&self) -> Constraints {
        let mut c = match self.compare {
            Some(model) => Constraints::relative_to(model.into(), self.compare_ratio),
            None => Constraints::default(),
        };
        let m = |v: Option<f64>| v.map(|x| x * 1e6);
        c.max_flops = m(self.flops_max);
        c.max_macs = m(self.macs_max).or(c.max_macs);
        c.max_params = m(self.params_max).or(c.max_params);
        c.max_score = self.score_max;
        c.combined_vs = self.combined_vs.map(Into::into);
        c.max_latency_ms = self.latency_max;
        c
    }

    fn objective(&self) -> Objective {
        match self.objective {
            ObjectiveArg::Acc => Objective::Accuracy,
            ObjectiveArg::Balanced => Objective::Balanced { ratio: self.objective_ratio },
            ObjectiveArg::Latency => Objective::LatencyAware { per_ms: self.objective_ratio },
        }
    }

    fn domain(&self, space: &SearchSpace) -> Result<GenomeDomain, String> {
        let mut domain = GenomeDomain::of(space);
        if let Some(spec) = &self.fixed_blocks {
            let arch = architecture_for(space, spec).map_err(|e| e.to_string())?;
            domain = domain.with_fixed_blocks(&arch).map_err(|e| e.to_string())?;
        }
        if let Some(spec) = &self.fixed_channels {
            let arch = architecture_for(space, spec).map_err(|e| e.to_string())?;
            domain = domain.with_fixed_channels(&arch).map_err(|e| e.to_string())?;
        }
        Ok(domain)
    }

    /// The analytic cost of `space`, with the `--latency-table` checked against it.
    fn cost_model(&self, space: &SearchSpace) -> Result<CostModel, String> {
        let table = shufflenas_model::CostTable::new(space, micronet_score::Convention::default())
            .map_err(|e| e.to_string())?;
        let latency = self.latency_table.as_deref().map(LatencyTable::load).transpose().map_err(|e| e.to_string())?;
        if let Some(table) = &latency {
            table.check_space(space).map_err(|e| e.to_string())?;
        }
        Ok(CostModel { table, latency })
    }

    fn search<'a>(&self, cost: &'a CostModel, space: &SearchSpace, dir: &Path) -> Result<Search<'a>, String> {
        Ok(Search {
            cost,
            domain: self.domain(space)?,
            constraints: self.constraints(),
            objective: self.objective(),
            dir: Some(dir.to_path_buf()),
            stop_after: None,
        })
    }

    /// Checks every search setting against `space` without a supernet: the GA settings,
    /// the recalibration count, the latency table, the domain, the objective and the
    /// caps' feasibility. The pipeline calls it before training the supernet, so that
    /// a bad flag fails at once instead of after stage 1.
    ///
    /// # Errors
    /// A message naming the setting.
    pub fn check(&self, space: &SearchSpace) -> Result<(), String> {
        // In the flags' own units (the library's caps are in FLOPs, MACs and params).
        let caps = [
            ("--flops-max", self.flops_max),
            ("--macs-max", self.macs_max),
            ("--params-max", self.params_max),
            ("--score-max", self.score_max),
            ("--latency-max", self.latency_max),
        ];
        if let Some((flag, Some(value))) = caps.into_iter().find(|(_, v)| v.is_some_and(|v| v.is_nan() || v < 0.0)) {
            return Err(format!("{flag} must be a non-negative number, got {value}"));
        }
        self.genetic().check().map_err(|e| e.to_string())?;
        if self.recal_images == 0 {
            return Err("--recal-images must be at least 1: BN recalibration needs training images".into());
        }
        let cost = self.cost_model(space)?;
        self.search(&cost, space, Path::new("."))?.check_genetic(&self.genetic()).map_err(|e| e.to_string())
    }

    /// The genetic-algorithm settings.
    pub fn genetic(&self) -> GeneticConfig {
        GeneticConfig {
            population: self.population,
            retain: self.retain,
            random_select: self.random_select,
            mutate: self.mutate,
            iterations: self.iterations,
            top_k: self.top_k,
            seed: self.search_seed,
            ..GeneticConfig::default()
        }
    }
}

/// A progress bar per generation with the best and mean fitness; plain lines when
/// the output is not a terminal.
pub struct ProgressObserver {
    label: &'static str,
    generations: usize,
    bar: Option<ProgressBar>,
}

impl ProgressObserver {
    /// An observer for a search of `generations` generations.
    pub fn new(label: &'static str, generations: usize) -> Self {
        Self { label, generations, bar: None }
    }
}

impl Observer for ProgressObserver {
    fn generation_started(&mut self, generation: usize, to_evaluate: usize) {
        let bar = ProgressBar::new(to_evaluate as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} genomes {elapsed} (eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{} generation {}/{}", self.label, generation + 1, self.generations));
        self.bar = Some(bar);
    }

    fn progress(&mut self, done: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
        }
    }

    fn generation_finished(&mut self, s: &GenerationSummary) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!(
            "{} generation {}/{}: best {:.4} mean {:.4} | best so far {:.4} (top-1 {:.2}%) | {} new, {} evaluated, {:.1} s",
            self.label,
            s.generation + 1,
            self.generations,
            s.best_fitness,
            s.mean_fitness,
            s.best_fitness_so_far,
            100.0 * s.best_top1_so_far,
            s.new_evaluations,
            s.total_evaluated,
            s.seconds
        );
    }
}

/// What [`run_search`] produced.
pub struct SearchRun {
    /// The genetic search.
    pub genetic: SearchResult,
    /// The random baseline at the same budget.
    pub random: Option<SearchResult>,
    /// Report, best genomes, plots.
    pub outputs: Outputs,
    /// Wall seconds of the genetic search.
    pub genetic_seconds: f64,
    /// Wall seconds of the random search.
    pub random_seconds: f64,
}

/// Runs the genetic search (and the random baseline at its budget) over `supernet`,
/// evaluating on `loaders.search_valid` after recalibrating on `loaders.recalibration`,
/// and writes the outputs to `dir`. Resumes from the state files in `dir`.
///
/// # Errors
/// A message for bad flags, impossible constraints, data or state-file problems.
pub fn run_search(
    args: &SearchArgs,
    supernet: &Supernet<Inference>,
    loaders: &Loaders,
    device: &Device,
    dir: &Path,
    notes: &str,
) -> Result<SearchRun, String> {
    let space = supernet.space().clone();
    let cost = args.cost_model(&space)?;
    let search = args.search(&cost, &space, dir)?;
    let devices: Vec<Device> = std::iter::repeat_n(device, args.replicas.max(1)).cloned().collect();
    let mut evaluator =
        SupernetEvaluator::new(supernet, &devices, &loaders.recalibration, args.recal_images, &loaders.search_valid)
            .map_err(|e| e.to_string())?;
    let config = args.genetic();
    let genetic = search
        .genetic(&config, &mut evaluator, &mut ProgressObserver::new("GA", config.iterations))
        .map_err(|e| e.to_string())?;
    let genetic_seconds = evaluation_seconds(&genetic);
    let (random, random_seconds) = if args.no_random_baseline {
        (None, 0.0)
    } else {
        let budget = genetic.candidates.len();
        let per_generation = config.population;
        // Its own random stream: random search draws its own first generation too.
        let seed = args.search_seed ^ 0x5241_4e44;
        let random_config = RandomConfig { budget, per_generation, top_k: args.top_k, seed };
        let observer = &mut ProgressObserver::new("random", budget.div_ceil(per_generation));
        let result = search.random(&random_config, &mut evaluator, observer).map_err(|e| e.to_string())?;
        let seconds = evaluation_seconds(&result);
        (Some(result), seconds)
    };
    let mut results = vec![&genetic];
    results.extend(random.as_ref());
    let outputs = write_outputs(dir, &space, &results, notes).map_err(|e| e.to_string())?;
    Ok(SearchRun { genetic, random, outputs, genetic_seconds, random_seconds })
}

/// Wall seconds a search spent evaluating: the sum of its generations' times, which a
/// resumed search keeps from its state file (so a rerun reports the original cost, not
/// the time to reload it).
fn evaluation_seconds(result: &SearchResult) -> f64 {
    result.generations.iter().map(|g| g.seconds).sum()
}

/// One genome of the ranking check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RankingRow {
    /// The genome.
    pub arch: String,
    /// Supernet top-1 after BN recalibration.
    pub supernet_top1: f64,
    /// Top-1 after a short standalone training from scratch.
    pub standalone_top1: f64,
}

/// The folder of one ranking-check training inside the run directory: named by a
/// digest of the genome, so a rerun that picks other genomes (a resumed search with
/// more candidates) resumes the trainings it shares and starts the others afresh,
/// instead of finding another genome's checkpoint at the same position.
fn ranking_dir_name(arch: &Architecture) -> String {
    format!("ranking-{}", crate::cli::genome_digest(arch))
}

/// Supernet ranking diagnostic: `k` genomes spread over the search's accuracy range,
/// each trained from scratch for `epochs` epochs; returns the rows and Kendall tau.
/// Written to `dir/ranking.json`.
///
/// # Errors
/// Training or output errors.
pub fn ranking_check(
    result: &SearchResult,
    space: &SearchSpace,
    loaders: &Loaders,
    device: &Device,
    k: usize,
    train: TrainConfig,
    dir: &Path,
) -> Result<(Vec<RankingRow>, Option<f64>), String> {
    let mut order: Vec<usize> = (0..result.candidates.len()).collect();
    order.sort_by(|&a, &b| result.candidates[b].evaluation.top1.total_cmp(&result.candidates[a].evaluation.top1));
    let k = k.min(order.len());
    let picks: Vec<usize> = (0..k).map(|i| order[i * (order.len() - 1) / (k - 1).max(1)]).collect();
    let mut rows = Vec::new();
    for (n, &i) in picks.iter().enumerate() {
        let c = &result.candidates[i];
        let arch: &Architecture = &c.arch;
        <Training as burn::tensor::backend::Backend>::seed(device, train.seed);
        let net = ShuffleNasNetConfig::new(space.clone(), arch.clone())
            .init::<Training>(device)
            .map_err(|e| e.to_string())?;
        let trainer = Trainer {
            config: train.clone(),
            train: &loaders.train,
            valid: Some(&loaders.search_valid),
            sampler: None,
            dir: dir.join(ranking_dir_name(arch)),
            model_id: format!("ranking|{arch}"),
            stop_after: None,
            on_step: None,
        };
        let (_, history) = trainer.fit(net, device, true, &mut |_| {}).map_err(|e| e.to_string())?;
        let standalone = history.last().and_then(|m| m.val_top1).unwrap_or(0.0);
        println!(
            "ranking {}/{k}: supernet top-1 {:.2}%, standalone {:.2}% ({} epochs, {})",
            n + 1,
            100.0 * c.evaluation.top1,
            100.0 * standalone,
            train.epochs,
            backend::NAME
        );
        rows.push(RankingRow { arch: arch.to_string(), supernet_top1: c.evaluation.top1, standalone_top1: standalone });
    }
    let a: Vec<f64> = rows.iter().map(|r| r.supernet_top1).collect();
    let b: Vec<f64> = rows.iter().map(|r| r.standalone_top1).collect();
    let tau = shufflenas_search::ranking::kendall_tau(&a, &b);
    let json = serde_json::json!({ "rows": rows, "kendall_tau": tau, "epochs": train.epochs });
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    crate::io::write_atomic(&dir.join("ranking.json"), text.as_bytes()).map_err(|e| e.to_string())?;
    Ok((rows, tau))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        search: SearchArgs,
    }

    fn check(flags: &[&str]) -> Result<(), String> {
        let args = Flags::try_parse_from(std::iter::once("search").chain(flags.iter().copied())).unwrap();
        args.search.check(&SearchSpace::tiny(1, 10))
    }

    // What would fail after the supernet has trained fails here, naming the flag.
    #[test]
    fn search_flags_are_checked_without_a_supernet() {
        assert!(check(&[]).is_ok());
        for (flags, expected) in [
            (&["--retain", "1"][..], "retained count"),
            (&["--mutate", "NaN"], "mutate is a probability"),
            (&["--recal-images", "0"], "--recal-images"),
            (&["--flops-max=-1"], "--flops-max must be a non-negative number, got -1"),
            (&["--fixed-blocks", "oneshot-s+", "--fixed-channels", "oneshot-s+"], "the domain holds 1 genomes"),
            (&["--flops-max", "0.001"], "no genome has flops"),
            (&["--latency-max", "5"], "latency cap needs a latency table"),
            (&["--latency-table", "/nonexistent/latency.json"], "cannot read /nonexistent/latency.json"),
            (&["--objective", "balanced", "--objective-ratio", "inf"], "objective's weight"),
        ] {
            let err = check(flags).unwrap_err();
            assert!(err.contains(expected), "{flags:?}: {err}");
        }
    }

    // A ranking training's folder follows its genome, not its position in the picks.
    #[test]
    fn ranking_folders_are_named_by_genome() {
        let a = Architecture::oneshot_s_plus();
        let b = Architecture::oneshot();
        assert_eq!(ranking_dir_name(&a), ranking_dir_name(&a.clone()));
        assert_ne!(ranking_dir_name(&a), ranking_dir_name(&b));
        assert!(ranking_dir_name(&a).starts_with("ranking-"));
    }
}
