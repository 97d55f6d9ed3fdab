//! Search loops on a cheap deterministic evaluator: constraints, caching, resume,
//! GA vs random, bad settings.

use micronet_score::Convention;
use shufflenas_model::{Architecture, CostTable, SearchSpace};
use shufflenas_search::{
    Constraints, CostModel, Evaluation, Evaluator, GeneticConfig, GenomeDomain, NoObserver, Objective, RandomConfig,
    Search, SearchError, SearchResult,
};

/// A smooth fitness landscape with interactions: wide channels help, SNB-5 helps in
/// odd positions, plus a genome-specific perturbation. Counts its calls.
struct Landscape {
    calls: usize,
}

impl Evaluator for Landscape {
    fn context(&self) -> &str {
        "landscape-v1"
    }

    fn parallelism(&self) -> usize {
        4
    }

    fn evaluate(&mut self, archs: &[Architecture]) -> Result<Vec<Evaluation>, SearchError> {
        self.calls += archs.len();
        Ok(archs
            .iter()
            .map(|a| {
                let mut v = 0.0;
                for (i, (b, c)) in a.blocks.iter().zip(&a.channels).enumerate() {
                    v += f64::from(c.0) / 9.0 * (1.0 + (i % 3) as f64);
                    if i % 2 == 1 && b.id() == 1 {
                        v += 1.5;
                    }
                }
                let text = a.to_string();
                let jitter = text.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 1000;
                let top1 = v / 60.0 + jitter as f64 * 1e-5;
                Evaluation { top1, top5: top1 }
            })
            .collect())
    }
}

fn cost_model(space: &SearchSpace) -> CostModel {
    CostModel { table: CostTable::new(space, Convention::default()).unwrap(), latency: None }
}

fn search<'a>(cost: &'a CostModel, space: &SearchSpace, dir: Option<std::path::PathBuf>) -> Search<'a> {
    Search {
        cost,
        domain: GenomeDomain::of(space),
        constraints: Constraints { max_flops: Some(600e6), ..Constraints::default() },
        objective: Objective::Accuracy,
        dir,
        stop_after: None,
    }
}

fn small_ga(seed: u64) -> GeneticConfig {
    GeneticConfig { population: 20, retain: 5, iterations: 6, seed, ..GeneticConfig::default() }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shufflenas-search-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn every_candidate_meets_the_constraints_and_repeats_cost_nothing() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let mut evaluator = Landscape { calls: 0 };
    let result = search(&cost, &space, None).genetic(&small_ga(1), &mut evaluator, &mut NoObserver).unwrap();
    assert!(result.complete);
    assert_eq!(result.generations.len(), 6);
    assert!(result.candidates.iter().all(|c| c.cost.flops <= 600e6));
    // Parents are carried over: the evaluator saw each distinct genome once.
    assert_eq!(evaluator.calls, result.candidates.len());
    let members: usize = result.generations.iter().map(|g| g.members).sum();
    assert!(members > evaluator.calls, "retained parents must come from the cache");
    assert_eq!(result.top_k.len(), 3);
    let best = result.best().fitness;
    assert!(result.candidates.iter().all(|c| c.fitness <= best));
    // Best-so-far never decreases.
    assert!(result.best_so_far().windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn genetic_beats_random_at_the_same_budget_over_three_seeds() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    for seed in 0..3 {
        let ga =
            search(&cost, &space, None).genetic(&small_ga(seed), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
        let budget = ga.candidates.len();
        let random = search(&cost, &space, None)
            .random(
                &RandomConfig { budget, per_generation: 20, top_k: 3, seed },
                &mut Landscape { calls: 0 },
                &mut NoObserver,
            )
            .unwrap();
        assert_eq!(random.candidates.len(), budget);
        assert!(
            ga.best().fitness > random.best().fitness,
            "seed {seed}: GA {} vs random {}",
            ga.best().fitness,
            random.best().fitness
        );
    }
}

fn same_outcome(a: &SearchResult, b: &SearchResult) {
    assert_eq!(a.candidates.len(), b.candidates.len());
    for (x, y) in a.candidates.iter().zip(&b.candidates) {
        assert_eq!((x.generation, &x.arch, x.fitness), (y.generation, &y.arch, y.fitness));
    }
    assert_eq!(a.top_k, b.top_k);
    assert_eq!(a.pareto_flops, b.pareto_flops);
}

#[test]
fn a_killed_search_resumes_to_the_same_result() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let full = search(&cost, &space, None).genetic(&small_ga(4), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();

    let dir = scratch("resume");
    let mut first = search(&cost, &space, Some(dir.clone()));
    first.stop_after = Some(2);
    let mut evaluator = Landscape { calls: 0 };
    let partial = first.genetic(&small_ga(4), &mut evaluator, &mut NoObserver).unwrap();
    assert!(!partial.complete);
    assert_eq!(partial.generations.len(), 2);
    assert!(dir.join("genetic-state.json").is_file());
    let calls_before = evaluator.calls;

    let mut evaluator = Landscape { calls: 0 };
    let resumed =
        search(&cost, &space, Some(dir.clone())).genetic(&small_ga(4), &mut evaluator, &mut NoObserver).unwrap();
    assert!(resumed.complete);
    same_outcome(&full, &resumed);
    assert_eq!(calls_before + evaluator.calls, full.candidates.len(), "nothing evaluated twice");

    // Random search resumes the same way, and reuses the GA's cached evaluations.
    let config = RandomConfig { budget: 45, per_generation: 10, top_k: 3, seed: 9 };
    let whole = search(&cost, &space, None).random(&config, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    let mut stopped = search(&cost, &space, Some(dir.clone()));
    stopped.stop_after = Some(3);
    stopped.random(&config, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    let resumed =
        search(&cost, &space, Some(dir.clone())).random(&config, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    same_outcome(&whole, &resumed);
    assert_eq!(resumed.generations.len(), 5);

    // Other settings in the same directory are refused, not mixed in.
    let err = search(&cost, &space, Some(dir.clone()))
        .genetic(&small_ga(5), &mut Landscape { calls: 0 }, &mut NoObserver)
        .unwrap_err();
    assert!(matches!(err, SearchError::State(_)), "{err}");
    // A corrupt state file is an error naming the file.
    std::fs::write(dir.join("genetic-state.json"), "{ truncated").unwrap();
    let err = search(&cost, &space, Some(dir.clone()))
        .genetic(&small_ga(4), &mut Landscape { calls: 0 }, &mut NoObserver)
        .unwrap_err();
    assert!(err.to_string().contains("genetic-state.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

// A finished search continues with more iterations (or budget) and reports a shorter
// run from its state, each time exactly what a fresh run of that length gives, with
// nothing evaluated again.
#[test]
fn a_finished_search_extends_or_shortens_to_a_fresh_runs_result() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let ga = |iterations, top_k| GeneticConfig { iterations, top_k, ..small_ga(8) };
    let fresh = |config: &GeneticConfig| {
        search(&cost, &space, None).genetic(config, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap()
    };
    let dir = scratch("extend");
    let in_dir = |config: &GeneticConfig| {
        let mut evaluator = Landscape { calls: 0 };
        let result = search(&cost, &space, Some(dir.clone())).genetic(config, &mut evaluator, &mut NoObserver).unwrap();
        (result, evaluator.calls)
    };
    let (short, _) = in_dir(&ga(3, 3));
    assert!(short.complete && short.generations.len() == 3);
    let (long, calls) = in_dir(&ga(6, 5));
    let long_fresh = fresh(&ga(6, 5));
    same_outcome(&long_fresh, &long);
    assert_eq!(long.generations.len(), 6);
    assert_eq!(calls, long.candidates.len() - short.candidates.len(), "only the new generations are evaluated");
    let (again, calls) = in_dir(&ga(3, 3));
    same_outcome(&short, &again);
    assert_eq!((again.generations.len(), calls), (3, 0));

    let random = |budget| RandomConfig { budget, per_generation: 10, top_k: 3, seed: 2 };
    let fresh_random = |budget| {
        search(&cost, &space, None).random(&random(budget), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap()
    };
    let random_in_dir = |budget| {
        search(&cost, &space, Some(dir.clone()))
            .random(&random(budget), &mut Landscape { calls: 0 }, &mut NoObserver)
            .unwrap()
    };
    random_in_dir(25);
    let grown = random_in_dir(50);
    let grown_fresh = fresh_random(50);
    same_outcome(&grown_fresh, &grown);
    let totals = |r: &SearchResult| r.generations.iter().map(|g| (g.members, g.total_evaluated)).collect::<Vec<_>>();
    assert_eq!(totals(&grown), totals(&grown_fresh), "the generation cut short at 25 is filled first");
    let fitness = |r: &SearchResult| {
        r.generations.iter().map(|g| (g.best_fitness, g.mean_fitness, g.best_fitness_so_far)).collect::<Vec<_>>()
    };
    assert_eq!(fitness(&grown), fitness(&grown_fresh), "the filled generation's statistics are its members'");
    let cut = random_in_dir(33);
    same_outcome(&fresh_random(33), &cut);
    assert!(cut.complete);
    assert_eq!(totals(&cut), [(10, 10), (10, 20), (10, 30), (3, 33)]);
    let best = cut.candidates.iter().map(|c| c.fitness).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(cut.generations[3].best_fitness_so_far, best);
    let _ = std::fs::remove_dir_all(&dir);
}

// A state file whose next population cannot be bred from (empty, or one genome) is an
// error naming the file, not a panic in the parent draw.
#[test]
fn a_state_without_two_parents_is_an_error() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let dir = scratch("no-parents");
    let mut first = search(&cost, &space, Some(dir.clone()));
    first.stop_after = Some(1);
    first.genetic(&small_ga(3), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    let path = dir.join("genetic-state.json");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let one = saved["population"][0].clone();
    for (population, expected) in
        [(serde_json::json!([]), "no next population"), (serde_json::json!([one.clone(), one]), "breeding needs two")]
    {
        let mut state = saved.clone();
        state["population"] = population;
        std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
        let err = search(&cost, &space, Some(dir.clone()))
            .genetic(&small_ga(3), &mut Landscape { calls: 0 }, &mut NoObserver)
            .unwrap_err();
        assert!(err.to_string().contains("genetic-state.json") && err.to_string().contains(expected), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fixed_block_search_only_changes_channels() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let fixed = Architecture::oneshot_s_plus();
    let mut s = search(&cost, &space, None);
    s.domain = GenomeDomain::of(&space).with_fixed_blocks(&fixed).unwrap();
    let result = s.genetic(&small_ga(2), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    assert!(result.candidates.iter().all(|c| c.arch.blocks == fixed.blocks));
    // With the channels fixed too, one genome is left: the domain is named, not the caps.
    s.domain = s.domain.with_fixed_channels(&fixed).unwrap();
    let err = s.genetic(&small_ga(2), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap_err().to_string();
    assert!(err.contains("the domain holds 1 genomes, fewer than a population of 20"), "{err}");
}

#[test]
fn balanced_objective_trades_accuracy_for_score() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let mut s = search(&cost, &space, None);
    let acc = s.genetic(&small_ga(3), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    s.objective = Objective::Balanced { ratio: 1.0 };
    let balanced = s.genetic(&small_ga(3), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    assert!(balanced.best().cost.score < acc.best().cost.score);
    let b = balanced.best();
    assert!((b.fitness - (b.evaluation.top1 - b.cost.score)).abs() < 1e-12);
}

#[test]
fn bad_settings_and_impossible_constraints_are_errors() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let s = search(&cost, &space, None);
    let config = GeneticConfig { population: 5, retain: 10, ..GeneticConfig::default() };
    let err = s.genetic(&config, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::Settings(_)) && err.to_string().contains("population 5"), "{err}");

    let mut s = search(&cost, &space, None);
    s.constraints = Constraints { max_params: Some(1e6), ..Constraints::default() };
    let err = s.genetic(&small_ga(0), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, SearchError::Impossible(_)) && text.contains("params ≤ 1.00M") && text.contains("params 3.05M"),
        "{text}"
    );

    let mut s = search(&cost, &space, None);
    s.constraints = Constraints { max_latency_ms: Some(5.0), ..Constraints::default() };
    assert!(matches!(
        s.genetic(&small_ga(0), &mut Landscape { calls: 0 }, &mut NoObserver),
        Err(SearchError::Impossible(_))
    ));

    // Without a table every predicted latency would count as 0 ms: a plain accuracy
    // search under another name. Refused before anything is evaluated.
    let mut s = search(&cost, &space, None);
    s.objective = Objective::LatencyAware { per_ms: 0.01 };
    let mut landscape = Landscape { calls: 0 };
    let err = s
        .random(&RandomConfig { budget: 4, per_generation: 4, top_k: 1, seed: 0 }, &mut landscape, &mut NoObserver)
        .unwrap_err();
    assert!(matches!(err, SearchError::Settings(_)) && err.to_string().contains("latency table"), "{err}");
    assert_eq!(landscape.calls, 0);

    // NaN compares false with everything: a NaN weight would make every fitness NaN and
    // a NaN cap would allow every genome. Both refused by name, before any evaluation.
    let mut s = search(&cost, &space, None);
    s.objective = Objective::Balanced { ratio: f64::NAN };
    let err = s.genetic(&small_ga(0), &mut landscape, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::Settings(_)) && err.to_string().contains("objective's weight"), "{err}");
    let mut s = search(&cost, &space, None);
    s.constraints = Constraints { max_params: Some(f64::NAN), ..Constraints::default() };
    let err = s.genetic(&small_ga(0), &mut landscape, &mut NoObserver).unwrap_err();
    assert!(matches!(err, SearchError::Settings(_)) && err.to_string().contains("params cap"), "{err}");
    assert_eq!(landscape.calls, 0);

    // Each GA setting is named; NaN would silently turn mutation off.
    let s = search(&cost, &space, None);
    for (config, expected) in [
        (GeneticConfig { iterations: 0, ..small_ga(0) }, "at least one iteration"),
        (GeneticConfig { top_k: 0, ..small_ga(0) }, "top_k"),
        (GeneticConfig { mutate: f64::NAN, ..small_ga(0) }, "mutate is a probability"),
        (GeneticConfig { random_select: 1.5, ..small_ga(0) }, "random_select is a probability"),
    ] {
        let err = s.genetic(&config, &mut landscape, &mut NoObserver).unwrap_err();
        assert!(matches!(err, SearchError::Settings(_)) && err.to_string().contains(expected), "{err}");
    }
    assert_eq!(landscape.calls, 0);
}

// Caps within 10% of the cheapest genome (301.86 MFLOPs): uniform draws almost never
// land there (about a quarter of the choices per position fit), so the search walks
// from the cheapest genome instead of giving up, and every genome meets the caps.
#[test]
fn caps_near_the_cheapest_genome_still_give_a_population() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let mut s = search(&cost, &space, None);
    s.constraints = Constraints { max_flops: Some(330e6), max_params: Some(3.3e6), ..Constraints::default() };
    let config = GeneticConfig { population: 20, retain: 5, iterations: 2, ..small_ga(4) };
    let result = s.genetic(&config, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    assert!(result.candidates.len() > 20, "{}", result.candidates.len());
    assert!(result.candidates.iter().all(|c| c.cost.flops <= 330e6 && c.cost.params <= 3.3e6));
    let distinct: std::collections::BTreeSet<_> = result.candidates.iter().map(|c| c.arch.to_string()).collect();
    assert_eq!(distinct.len(), result.candidates.len());
    let random = RandomConfig { budget: 30, per_generation: 10, top_k: 3, seed: 1 };
    let baseline = s.random(&random, &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    assert_eq!(baseline.candidates.len(), 30);
}

/// An evaluator that breaks its contract: NaN accuracies, or one result short.
struct Broken {
    nan: bool,
}

impl Evaluator for Broken {
    fn context(&self) -> &str {
        "broken"
    }

    fn evaluate(&mut self, archs: &[Architecture]) -> Result<Vec<Evaluation>, SearchError> {
        Ok(match self.nan {
            true => archs.iter().map(|_| Evaluation { top1: f64::NAN, top5: 0.5 }).collect(),
            false => archs.iter().skip(1).map(|_| Evaluation { top1: 0.5, top5: 0.5 }).collect(),
        })
    }
}

// A NaN accuracy would rank first and turn into null in the state file, which could not
// be read back; a short result list would leave genomes unevaluated. Both are errors
// naming what happened, and nothing is written.
#[test]
fn an_evaluator_breaking_its_contract_is_an_error() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let dir = scratch("broken");
    let s = search(&cost, &space, Some(dir.clone()));
    let err = s.genetic(&small_ga(0), &mut Broken { nan: true }, &mut NoObserver).unwrap_err().to_string();
    assert!(err.contains("non-finite accuracy (top-1 NaN"), "{err}");
    let err = s.genetic(&small_ga(0), &mut Broken { nan: false }, &mut NoObserver).unwrap_err().to_string();
    assert!(err.contains("the evaluator returned 0 results for 1 genomes"), "{err}");
    assert!(!dir.join("genetic-state.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// A corrupt cache.json stops the search before the first evaluation, naming the file
// (before, it was skipped at the start and every generation's save then failed on it).
#[test]
fn a_corrupt_cache_file_stops_the_search_before_any_evaluation() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let dir = scratch("corrupt-cache");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cache.json"), "{ not json").unwrap();
    let mut landscape = Landscape { calls: 0 };
    let err = search(&cost, &space, Some(dir.clone())).genetic(&small_ga(0), &mut landscape, &mut NoObserver);
    let text = err.unwrap_err().to_string();
    assert!(text.contains("cache.json: corrupt cache") && text.contains("delete it"), "{text}");
    assert_eq!(landscape.calls, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

// stop_after counts generations in total: 0 runs none, and a resumed run that has
// already reached it runs no more.
#[test]
fn stop_after_is_checked_before_each_generation() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let mut landscape = Landscape { calls: 0 };
    let mut s = search(&cost, &space, None);
    s.stop_after = Some(0);
    let result = s.genetic(&small_ga(0), &mut landscape, &mut NoObserver).unwrap();
    assert!(result.generations.is_empty() && !result.complete);
    assert_eq!(landscape.calls, 0);
}

#[test]
fn reports_and_plots_are_written() {
    let space = SearchSpace::oneshot_plus();
    let cost = cost_model(&space);
    let ga = search(&cost, &space, None).genetic(&small_ga(6), &mut Landscape { calls: 0 }, &mut NoObserver).unwrap();
    let random = search(&cost, &space, None)
        .random(
            &RandomConfig { budget: ga.candidates.len(), per_generation: 20, top_k: 3, seed: 6 },
            &mut Landscape { calls: 0 },
            &mut NoObserver,
        )
        .unwrap();
    let dir = scratch("report");
    let out = shufflenas_search::report::write_outputs(&dir, &space, &[&ga, &random], "test run").unwrap();
    let report = std::fs::read_to_string(&out.report).unwrap();
    assert!(report.contains("| 1 |") && report.contains("genetic") && report.contains("random"), "{report}");
    assert_eq!(out.best.len(), 3);
    let best: Architecture = serde_json::from_str(&std::fs::read_to_string(&out.best[0]).unwrap()).unwrap();
    assert_eq!(best, ga.best().arch);
    space.validate(&best).unwrap();
    for plot in &out.plots {
        let svg = std::fs::read_to_string(plot).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<circle") && svg.contains("<text"), "{}", plot.display());
    }
    assert!(dir.join("genetic-evaluations.json").is_file() && dir.join("pareto.json").is_file());
    assert!(dir.join("random-best-3.json").is_file());

    // A rerun without the baseline and with a smaller top-k leaves none of the first
    // run's extra files behind; other files of the folder stay.
    std::fs::write(dir.join("random-state.json"), "{}").unwrap();
    let mut ga_top1 = ga.clone();
    ga_top1.top_k.truncate(1);
    shufflenas_search::report::write_outputs(&dir, &space, &[&ga_top1], "rerun").unwrap();
    assert!(dir.join("best-1.json").is_file() && !dir.join("best-2.json").exists());
    assert!(!dir.join("random-evaluations.json").exists() && !dir.join("random-best-1.json").exists());
    assert!(dir.join("random-state.json").is_file() && dir.join("genetic-evaluations.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
