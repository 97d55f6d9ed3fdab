//! Search outputs: JSON logs, the best genomes as JSON, a markdown report and the SVG
//! plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use micronet_score::{Baseline, Convention};
use shufflenas_model::{SearchSpace, cost};

use crate::search::SearchResult;
use crate::{SearchError, plot};

/// Files written by [`write_outputs`].
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `report.md`.
    pub report: PathBuf,
    /// Best genomes of the main (first) result, best first.
    pub best: Vec<PathBuf>,
    /// SVG plots.
    pub plots: Vec<PathBuf>,
}

/// Writes, into `dir`:
/// - `<strategy>-evaluations.json`: every evaluated genome with cost, accuracy and fitness;
/// - `best-<rank>.json` (the first result's top-k genomes, loadable as
///   `shufflenas_model::Architecture`), and `<strategy>-best-<rank>.json` for the others;
/// - `pareto.json`: the Pareto fronts of each result;
/// - `report.md`: top-k with FLOPs, params, MicroNet scores and accuracy, and the
///   comparison of the strategies at the same budget;
/// - the SVG plots of [`plot::write_all`].
///
/// `results[0]` is the main search (the genetic one); the others are baselines.
/// Genome and evaluation files that an earlier call wrote into `dir` and this one does
/// not (a baseline since switched off, a rank beyond a smaller top-k) are removed, so the
/// folder never mixes two runs' outputs: `best-<n>.json`, and the two kinds of
/// per-strategy file of `genetic`, `random` and the strategies of `results`. State
/// files, the cache and other files are left alone.
///
/// # Errors
/// [`SearchError::State`] when a file cannot be written, [`SearchError::Settings`] for
/// no results.
pub fn write_outputs(
    dir: &Path,
    space: &SearchSpace,
    results: &[&SearchResult],
    notes: &str,
) -> Result<Outputs, SearchError> {
    if results.is_empty() {
        return Err(SearchError::Settings("no search results to report".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| SearchError::State(format!("{}: {e}", dir.display())))?;
    let mut outputs = Outputs::default();
    let mut fronts = serde_json::Map::new();
    let mut written = Vec::new();
    for (i, result) in results.iter().enumerate() {
        let evaluations = format!("{}-evaluations.json", result.strategy);
        crate::write_json(&dir.join(&evaluations), &result.candidates)?;
        written.push(evaluations);
        for (rank, &index) in result.top_k.iter().enumerate() {
            let name = if i == 0 {
                format!("best-{}.json", rank + 1)
            } else {
                format!("{}-best-{}.json", result.strategy, rank + 1)
            };
            let path = dir.join(&name);
            written.push(name);
            crate::write_json(&path, &result.candidates[index].arch)?;
            if i == 0 {
                outputs.best.push(path);
            }
        }
        let pick = |ids: &[usize]| ids.iter().map(|&k| result.candidates[k].clone()).collect::<Vec<_>>();
        fronts.insert(
            result.strategy.clone(),
            serde_json::json!({ "flops": pick(&result.pareto_flops), "params": pick(&result.pareto_params) }),
        );
    }
    remove_stale_outputs(dir, &known_strategies(results), &written)?;
    crate::write_json(&dir.join("pareto.json"), &fronts)?;
    outputs.plots = plot::write_all(dir, results)?;
    let report = markdown(space, results, &outputs.plots, notes)?;
    outputs.report = dir.join("report.md");
    crate::write_text(&outputs.report, &report)?;
    Ok(outputs)
}

/// Whether `name` is one of the per-genome or per-strategy files [`write_outputs`]
/// writes: `best-<n>.json`, `<strategy>-best-<n>.json` or `<strategy>-evaluations.json`
/// for one of `strategies`.
fn is_search_output(name: &str, strategies: &[&str]) -> bool {
    let Some(stem) = name.strip_suffix(".json") else { return false };
    let ranked = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    if let Some(rank) = stem.strip_prefix("best-") {
        return ranked(rank);
    }
    match stem.split_once('-') {
        Some((strategy, rest)) if strategies.contains(&strategy) => {
            rest == "evaluations" || rest.strip_prefix("best-").is_some_and(ranked)
        }
        _ => false,
    }
}

/// The strategies whose outputs [`write_outputs`] replaces: this crate's searches and
/// those of `results`.
fn known_strategies<'a>(results: &'a [&SearchResult]) -> Vec<&'a str> {
    let mut strategies = vec!["genetic", "random"];
    for result in results {
        if !strategies.contains(&result.strategy.as_str()) {
            strategies.push(&result.strategy);
        }
    }
    strategies
}

/// Removes the search outputs of `strategies` in `dir` that are not in `written`.
fn remove_stale_outputs(dir: &Path, strategies: &[&str], written: &[String]) -> Result<(), SearchError> {
    let state = |e: std::io::Error| SearchError::State(format!("{}: {e}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(state)? {
        let entry = entry.map_err(state)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_search_output(name, strategies) && !written.iter().any(|w| w == name) && entry.path().is_file() {
            std::fs::remove_file(entry.path())
                .map_err(|e| SearchError::State(format!("{}: {e}", entry.path().display())))?;
        }
    }
    Ok(())
}

fn markdown(
    space: &SearchSpace,
    results: &[&SearchResult],
    plots: &[PathBuf],
    notes: &str,
) -> Result<String, SearchError> {
    let mut md = String::new();
    let main = results[0];
    let _ = writeln!(md, "# Architecture search report\n");
    if !notes.is_empty() {
        let _ = writeln!(md, "{notes}\n");
    }
    let _ = writeln!(md, "## Top {} ({} search)\n", main.top_k.len(), main.strategy);
    let _ = writeln!(
        md,
        "| rank | top-1 | top-5 | fitness | MFLOPs | MMACs | params (M) | score fp32 | fp16 | int8 | genome (blocks;channels) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for (rank, &i) in main.top_k.iter().enumerate() {
        let c = &main.candidates[i];
        let counts = cost::architecture_ops(space, &c.arch)?.counts(&Convention::default());
        let s = counts.scores(&Baseline::default());
        let _ = writeln!(
            md,
            "| {} | {:.2}% | {:.2}% | {:.4} | {:.1} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} | `{}` |",
            rank + 1,
            100.0 * c.evaluation.top1,
            100.0 * c.evaluation.top5,
            c.fitness,
            counts.mflops(),
            counts.macs as f64 / 1e6,
            counts.params() / 1e6,
            s.fp32,
            s.fp16,
            s.int8,
            c.arch
        );
    }
    let _ = writeln!(md, "\n## Strategies at the same budget\n");
    let _ = writeln!(
        md,
        "| strategy | genomes evaluated | generations | best top-1 | best fitness | mean top-1 of top-k | Pareto points (FLOPs) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in results {
        let best = r.best();
        let mean_top =
            r.top_k.iter().map(|&i| r.candidates[i].evaluation.top1).sum::<f64>() / r.top_k.len().max(1) as f64;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.2}% | {:.4} | {:.2}% | {} |",
            r.strategy,
            r.candidates.len(),
            r.generations.len(),
            100.0 * best.evaluation.top1,
            best.fitness,
            100.0 * mean_top,
            r.pareto_flops.len()
        );
    }
    let _ = writeln!(md, "\n## Best fitness per generation\n");
    let _ = writeln!(
        md,
        "| generation | {} |",
        results.iter().map(|r| r.strategy.as_str()).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|---|{}", "---|".repeat(results.len()));
    let rows = results.iter().map(|r| r.generations.len()).max().unwrap_or(0);
    for g in 0..rows {
        let cells: Vec<String> = results
            .iter()
            .map(|r| {
                r.generations
                    .get(g)
                    .map_or("".into(), |s| format!("{:.4} ({} evaluated)", s.best_fitness_so_far, s.total_evaluated))
            })
            .collect();
        let _ = writeln!(md, "| {g} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md, "\n## Pareto front: top-1 vs FLOPs ({})\n", main.strategy);
    let _ = writeln!(md, "| MFLOPs | params (M) | top-1 | genome |");
    let _ = writeln!(md, "|---|---|---|---|");
    for &i in &main.pareto_flops {
        let c = &main.candidates[i];
        let _ = writeln!(
            md,
            "| {:.1} | {:.3} | {:.2}% | `{}` |",
            c.cost.flops / 1e6,
            c.cost.params / 1e6,
            100.0 * c.evaluation.top1,
            c.arch
        );
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for p in plots {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let _ = writeln!(md, "![{name}]({name})");
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::is_search_output;

    #[test]
    fn only_genome_and_evaluation_files_count_as_search_outputs() {
        let strategies = ["genetic", "random", "evolution"];
        for name in
            ["best-1.json", "best-12.json", "random-best-3.json", "genetic-evaluations.json", "evolution-best-1.json"]
        {
            assert!(is_search_output(name, &strategies), "{name}");
        }
        for name in [
            "random-state.json",
            "cache.json",
            "pareto.json",
            "best-.json",
            "best-x.json",
            "-evaluations.json",
            "best-1.svg",
            "my-evaluations.json",
            "model-best-1.json",
        ] {
            assert!(!is_search_output(name, &strategies), "{name}");
        }
    }
}
