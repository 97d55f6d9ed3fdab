//! The search loops: the seed's genetic algorithm and a random-search baseline, both
//! with constraint filtering, caching, and a state file written atomically after
//! every generation, so that a killed search resumes to the same result.
//!
//! Genetic algorithm (per generation): evaluate the population; keep the best
//! `retain` as parents plus each other member with probability `random_select`;
//! breed children from two distinct parents by uniform per-gene crossover and per-gene
//! mutation with probability `mutate`; reject children that break a constraint (or
//! repeat a member) and breed again, until the population is full.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use shufflenas_model::Architecture;

use crate::cache::EvalCache;
use crate::constraint::{Constraints, Cost, CostModel};
use crate::domain::GenomeDomain;
use crate::evaluator::{Evaluation, Evaluator};
use crate::{SearchError, pareto};

/// What the search maximises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Objective {
    /// Validation top-1 after BN recalibration.
    Accuracy,
    /// top-1 − `ratio` · MicroNet float32 score.
    Balanced {
        /// Weight of the score.
        ratio: f64,
    },
    /// top-1 − `per_ms` · predicted latency in ms (needs a latency table).
    LatencyAware {
        /// Penalty per millisecond.
        per_ms: f64,
    },
}

impl Objective {
    /// The fitness of a genome with `cost` and `evaluation`.
    pub fn fitness(&self, cost: &Cost, evaluation: &Evaluation) -> f64 {
        match *self {
            Self::Accuracy => evaluation.top1,
            Self::Balanced { ratio } => evaluation.top1 - ratio * cost.score,
            Self::LatencyAware { per_ms } => evaluation.top1 - per_ms * cost.latency_ms.unwrap_or(0.0),
        }
    }
}

/// The seed's genetic algorithm settings (its defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneticConfig {
    /// Genomes per generation.
    pub population: usize,
    /// Best genomes kept as parents.
    pub retain: usize,
    /// Probability that a non-retained genome is also kept as a parent.
    pub random_select: f64,
    /// Per-gene mutation probability.
    pub mutate: f64,
    /// Generations.
    pub iterations: usize,
    /// Best genomes reported.
    pub top_k: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Breeding attempts per child before a random feasible genome is used instead.
    pub max_attempts: usize,
}

impl GeneticConfig {
    /// Checks the settings, naming the first that cannot be used.
    ///
    /// # Errors
    /// [`SearchError::Settings`].
    pub fn check(&self) -> Result<(), SearchError> {
        let settings = |message: String| Err(SearchError::Settings(message));
        if self.retain < 2 || self.population < self.retain {
            return settings(format!(
                "population {} must be at least the retained count {}, which must be at least 2",
                self.population, self.retain
            ));
        }
        if self.iterations == 0 {
            return settings("the genetic search needs at least one iteration (generation)".into());
        }
        if self.top_k == 0 {
            return settings("top_k must be at least 1".into());
        }
        for (name, p) in [("mutate", self.mutate), ("random_select", self.random_select)] {
            if !(0.0..=1.0).contains(&p) {
                return settings(format!("{name} is a probability and must lie in [0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

impl Default for GeneticConfig {
    fn default() -> Self {
        Self {
            population: 50,
            retain: 10,
            random_select: 0.1,
            mutate: 0.1,
            iterations: 20,
            top_k: 3,
            seed: 0,
            max_attempts: 1000,
        }
    }
}

/// Random search settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomConfig {
    /// Distinct genomes to evaluate (use the genetic run's count for a fair comparison).
    pub budget: usize,
    /// Genomes per generation (for reporting and checkpoints).
    pub per_generation: usize,
    /// Best genomes reported.
    pub top_k: usize,
    /// Seed.
    pub seed: u64,
}

/// One evaluated genome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Generation that first evaluated it.
    pub generation: usize,
    /// The genome.
    pub arch: Architecture,
    /// Its analytic cost.
    pub cost: Cost,
    /// Its evaluation.
    pub evaluation: Evaluation,
    /// Its fitness.
    pub fitness: f64,
}

/// Statistics of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationSummary {
    /// Generation index.
    pub generation: usize,
    /// Genomes in the generation.
    pub members: usize,
    /// Genomes evaluated for the first time (not from the cache).
    pub new_evaluations: usize,
    /// Distinct genomes evaluated so far.
    pub total_evaluated: usize,
    /// Best fitness in the generation.
    pub best_fitness: f64,
    /// Mean fitness of the generation.
    pub mean_fitness: f64,
    /// Best top-1 seen so far (all generations).
    pub best_top1_so_far: f64,
    /// Best fitness seen so far.
    pub best_fitness_so_far: f64,
    /// Wall seconds of the generation (0 when every member was cached).
    pub seconds: f64,
}

/// Progress callbacks (a progress bar, a log).
pub trait Observer {
    /// A generation starts with `to_evaluate` genomes not in the cache.
    fn generation_started(&mut self, _generation: usize, _to_evaluate: usize) {}
    /// `done` of the generation's new genomes are evaluated.
    fn progress(&mut self, _done: usize) {}
    /// A generation ended.
    fn generation_finished(&mut self, _summary: &GenerationSummary) {}
}

/// An observer that does nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

/// The outcome of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// `genetic` or `random`.
    pub strategy: String,
    /// Every distinct evaluated genome, in evaluation order.
    pub candidates: Vec<Candidate>,
    /// Per-generation statistics.
    pub generations: Vec<GenerationSummary>,
    /// Indices into `candidates` of the best `top_k` by fitness.
    pub top_k: Vec<usize>,
    /// Indices of the Pareto front of top-1 vs FLOPs (ascending FLOPs).
    pub pareto_flops: Vec<usize>,
    /// Indices of the Pareto front of top-1 vs params (ascending params).
    pub pareto_params: Vec<usize>,
    /// Whether the search ran to its end (false when stopped early by `stop_after`).
    pub complete: bool,
}

impl SearchResult {
    /// The best candidate.
    ///
    /// # Panics
    /// Never for a result of [`Search`], which evaluates at least one genome.
    pub fn best(&self) -> &Candidate {
        &self.candidates[self.top_k[0]]
    }

    /// Best fitness after each generation.
    pub fn best_so_far(&self) -> Vec<f64> {
        self.generations.iter().map(|g| g.best_fitness_so_far).collect()
    }
}

/// Everything saved after each generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SearchState {
    fingerprint: String,
    next_generation: usize,
    population: Vec<Architecture>,
    rng: ChaCha8Rng,
    cache: EvalCache,
    candidates: Vec<Candidate>,
    generations: Vec<GenerationSummary>,
}

/// A search over `domain` under `constraints`.
pub struct Search<'a> {
    /// Analytic cost (and predicted latency).
    pub cost: &'a CostModel,
    /// Genes the search may change.
    pub domain: GenomeDomain,
    /// Caps every evaluated genome meets.
    pub constraints: Constraints,
    /// What to maximise.
    pub objective: Objective,
    /// Where the state file goes (`None`: no checkpoints, no resume).
    pub dir: Option<PathBuf>,
    /// Stop after this many generations in total (as if killed right after that
    /// generation's checkpoint); `None` runs to the end.
    pub stop_after: Option<usize>,
}

const FEASIBILITY_TRIES: usize = 20_000;

/// Steps of the feasible walk before its genomes are used (every gene redrawn ~50
/// times over for 20 positions).
const WALK_BURN_IN: usize = 2_000;

impl Search<'_> {
    fn cache_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("cache.json"))
    }

    fn state_path(&self, strategy: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{strategy}-state.json")))
    }

    /// What a state file must match to be resumed: the strategy, the settings that
    /// steer its trajectory (not `lengths`, the fields that only say how far it runs or
    /// how much it reports), the domain, the caps, the objective and the evaluator.
    fn fingerprint(&self, strategy: &str, settings: &impl Serialize, lengths: &[&str], context: &str) -> String {
        let mut settings = serde_json::to_value(settings).unwrap_or_default();
        if let Some(fields) = settings.as_object_mut() {
            for field in lengths {
                fields.remove(*field);
            }
        }
        self.fingerprint_with(strategy, &json(&settings), context)
    }

    /// The fingerprint of state files written before the lengths left it (every
    /// setting, in declaration order): the same command still resumes them.
    fn legacy_fingerprint(&self, strategy: &str, settings: &impl Serialize, context: &str) -> String {
        self.fingerprint_with(strategy, &json(settings), context)
    }

    fn fingerprint_with(&self, strategy: &str, settings: &str, context: &str) -> String {
        let mut text = format!(
            "{strategy}|{settings}|{}|{}|{}|{context}",
            json(&self.domain),
            json(&self.constraints),
            json(&self.objective)
        );
        // A re-measured latency table changes costs and fitness: its searches do not
        // resume on the old one's (searches without a table keep their fingerprint).
        if let Some(table) = &self.cost.latency {
            text.push_str("|latency ");
            text.push_str(&json(table));
        }
        text
    }

    /// What [`Search::genetic`] checks before it evaluates anything: the settings, the
    /// search ([`Search::check`]) and a domain that holds a whole population.
    ///
    /// # Errors
    /// As [`Search::genetic`]'s setting and constraint errors.
    pub fn check_genetic(&self, config: &GeneticConfig) -> Result<(), SearchError> {
        config.check()?;
        self.check()?;
        self.check_domain_holds(config.population, "a population")
    }

    /// Refuses a search that needs more distinct genomes than the domain holds (fixed
    /// blocks and channels leave few), naming the domain rather than the caps.
    fn check_domain_holds(&self, needed: usize, what: &str) -> Result<(), SearchError> {
        let size = self.domain.size();
        if size < needed as f64 {
            return Err(SearchError::Settings(format!(
                "the domain holds {size} genomes, fewer than {what} of {needed} distinct ones: free more genes \
                 (--fixed-blocks, --fixed-channels) or ask for fewer"
            )));
        }
        Ok(())
    }

    /// Whether `stop_after` ends the run before generation `next` (0-based).
    fn stopped(&self, next: usize) -> bool {
        self.stop_after.is_some_and(|stop| next >= stop)
    }

    fn is_feasible(&self, arch: &Architecture) -> bool {
        self.cost.cost(arch).is_ok_and(|c| self.constraints.allows(&c))
    }

    /// A random genome of the domain that meets the constraints and is not in `taken`:
    /// uniform draws, and where caps are too tight for those to land (a feasible set
    /// near the cheapest genome), a random walk from the cheapest feasible genome that
    /// redraws one gene per step and keeps only feasible steps.
    fn sample_feasible(
        &self,
        rng: &mut ChaCha8Rng,
        taken: &BTreeSet<Architecture>,
    ) -> Result<Architecture, SearchError> {
        for _ in 0..FEASIBILITY_TRIES {
            let arch = self.domain.sample(rng);
            if !taken.contains(&arch) && self.is_feasible(&arch) {
                return Ok(arch);
            }
        }
        if let Some(mut arch) = self.cost.cheapest_feasible(&self.domain, &self.constraints) {
            for step in 0..FEASIBILITY_TRIES {
                let next = self.domain.redraw_one(&arch, rng);
                if self.is_feasible(&next) {
                    arch = next;
                }
                if step >= WALK_BURN_IN && !taken.contains(&arch) {
                    return Ok(arch);
                }
            }
        }
        Err(SearchError::Impossible(format!(
            "no new genome meeting the constraints in {FEASIBILITY_TRIES} random draws and {FEASIBILITY_TRIES} steps \
             of a walk from the cheapest genome: the caps leave fewer genomes than this population or budget needs"
        )))
    }

    /// Checks what both strategies share: the domain fits the space, the objective's
    /// weight is finite (and a latency objective has its table), every cap is a number
    /// and some genome meets them all. [`Search::genetic`] and [`Search::random`] call
    /// it first; call it yourself to fail before training a supernet.
    ///
    /// # Errors
    /// [`SearchError::Domain`], [`SearchError::Settings`] or [`SearchError::Impossible`].
    pub fn check(&self) -> Result<(), SearchError> {
        self.domain.check(self.cost.table.positions())?;
        if let Objective::Balanced { ratio: weight } | Objective::LatencyAware { per_ms: weight } = self.objective
            && !weight.is_finite()
        {
            return Err(SearchError::Settings(format!("the objective's weight must be a finite number, got {weight}")));
        }
        self.constraints.check()?;
        if matches!(self.objective, Objective::LatencyAware { .. }) && self.cost.latency.is_none() {
            return Err(SearchError::Settings(
                "the latency-aware objective needs a latency table (the `latency_table` example measures one)".into(),
            ));
        }
        self.cost.check_feasible(&self.domain, &self.constraints, FEASIBILITY_TRIES)
    }

    /// Runs (or resumes) the genetic algorithm.
    ///
    /// A state file of the same search resumes even with other `iterations` or `top_k`:
    /// more iterations continue it, fewer report its first `iterations` generations,
    /// in both cases exactly what a fresh run of that length gives.
    ///
    /// # Errors
    /// [`SearchError::Settings`] for a population smaller than the retained count or
    /// fewer than two parents, [`SearchError::Impossible`] for constraints no genome
    /// meets, evaluator and state-file errors.
    pub fn genetic(
        &self,
        config: &GeneticConfig,
        evaluator: &mut dyn Evaluator,
        observer: &mut dyn Observer,
    ) -> Result<SearchResult, SearchError> {
        self.check_genetic(config)?;
        let fingerprint = self.fingerprint("genetic", config, &["iterations", "top_k"], evaluator.context());
        let legacy = self.legacy_fingerprint("genetic", config, evaluator.context());
        let mut state = match self.load_state("genetic", &fingerprint, &legacy)? {
            Some(state) => state,
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
                let mut taken = BTreeSet::new();
                for _ in 0..config.population {
                    let arch = self.sample_feasible(&mut rng, &taken)?;
                    taken.insert(arch);
                }
                self.fresh_state(fingerprint, taken.into_iter().collect(), rng, evaluator)?
            }
        };
        if state.next_generation < config.iterations {
            let distinct: BTreeSet<&Architecture> = state.population.iter().collect();
            if distinct.is_empty() {
                return Err(SearchError::Impossible(format!(
                    "genetic-state.json ends after {} generations with no next population: no new feasible genome \
                     could be bred or drawn under these caps, so the search cannot be extended",
                    state.next_generation
                )));
            }
            if distinct.len() < 2 {
                return Err(SearchError::State(format!(
                    "genetic-state.json holds a population of {} distinct genome; breeding needs two (a corrupt or \
                     edited state file? delete it to rerun: the cached evaluations make the replay free)",
                    distinct.len()
                )));
            }
        }
        while state.next_generation < config.iterations && !self.stopped(state.next_generation) {
            let generation = state.next_generation;
            let population = std::mem::take(&mut state.population);
            let scored = self.run_generation(&mut state, generation, &population, evaluator, observer)?;
            state.next_generation += 1;
            // Also after the last generation: a rerun with more iterations continues
            // from this population. There, a population that cannot be bred (caps that
            // leave no new feasible genome) ends the search as before instead of failing
            // it; only an extension would need it, and reports so.
            state.population = match self.evolve(config, &scored, &mut state.rng) {
                Ok(next) => next,
                Err(_) if state.next_generation >= config.iterations => Vec::new(),
                Err(e) => return Err(e),
            };
            self.save_state("genetic", &state)?;
        }
        let complete = state.next_generation >= config.iterations;
        state.candidates.retain(|c| c.generation < config.iterations);
        state.generations.truncate(config.iterations);
        Ok(self.result("genetic", state, complete, config.top_k))
    }

    /// Runs (or resumes) random search: `budget` distinct feasible genomes drawn
    /// uniformly, `per_generation` at a time.
    ///
    /// A state file of the same search resumes even with another `top_k` or `budget`:
    /// a larger budget draws the same genomes, in the same order, as a fresh run of that
    /// budget; a smaller one reports the first `budget` genomes it drew (the generation
    /// that the budget cuts keeps its members' statistics and a pro-rated time).
    ///
    /// # Errors
    /// As [`Search::genetic`].
    pub fn random(
        &self,
        config: &RandomConfig,
        evaluator: &mut dyn Evaluator,
        observer: &mut dyn Observer,
    ) -> Result<SearchResult, SearchError> {
        if config.budget == 0 || config.per_generation == 0 || config.top_k == 0 {
            return Err(SearchError::Settings(
                "random search needs a budget, a generation size and a top_k above 0".into(),
            ));
        }
        self.check()?;
        self.check_domain_holds(config.budget, "a budget")?;
        let fingerprint = self.fingerprint("random", config, &["budget", "top_k"], evaluator.context());
        let legacy = self.legacy_fingerprint("random", config, evaluator.context());
        let mut state = match self.load_state("random", &fingerprint, &legacy)? {
            Some(state) => state,
            None => self.fresh_state(fingerprint, Vec::new(), ChaCha8Rng::seed_from_u64(config.seed), evaluator)?,
        };
        // Generation g holds genomes g·per_generation.. of the draw order, whatever the
        // budget: a larger budget first fills the generation a smaller one cut short.
        let per_generation = config.per_generation;
        loop {
            let done = state.candidates.len();
            let generation = done / per_generation;
            if done >= config.budget || self.stopped(generation) {
                break;
            }
            let mut taken: BTreeSet<Architecture> = state.candidates.iter().map(|c| c.arch.clone()).collect();
            let size = (per_generation - done % per_generation).min(config.budget - done);
            let mut members = Vec::with_capacity(size);
            for _ in 0..size {
                let arch = self.sample_feasible(&mut state.rng, &taken)?;
                taken.insert(arch.clone());
                members.push(arch);
            }
            let cut_short = if done % per_generation == 0 { None } else { state.generations.pop() };
            self.run_generation(&mut state, generation, &members, evaluator, observer)?;
            if let Some(earlier) = cut_short
                && let Some(rest) = state.generations.pop()
            {
                let start = generation * per_generation;
                let new_evaluations = earlier.new_evaluations + rest.new_evaluations;
                let summary = random_summary(&state.candidates, start, new_evaluations, earlier.seconds + rest.seconds);
                state.generations.push(summary);
            }
            state.next_generation = generation + 1;
            self.save_state("random", &state)?;
        }
        let complete = state.candidates.len() >= config.budget;
        truncate_random(&mut state, config.budget);
        Ok(self.result("random", state, complete, config.top_k))
    }

    fn fresh_state(
        &self,
        fingerprint: String,
        population: Vec<Architecture>,
        rng: ChaCha8Rng,
        evaluator: &dyn Evaluator,
    ) -> Result<SearchState, SearchError> {
        // Evaluations of earlier searches in the same directory with the same context
        // (weights, data sample) are reused. A corrupt cache file stops the search here,
        // before anything is evaluated (each generation's save would fail on it).
        let cache = match self.cache_path() {
            Some(path) => EvalCache::load_or_new(&path, evaluator.context())?,
            None => EvalCache::new(evaluator.context()),
        };
        Ok(SearchState {
            fingerprint,
            next_generation: 0,
            population,
            rng,
            cache,
            candidates: Vec::new(),
            generations: Vec::new(),
        })
    }

    /// Evaluates `members` (cached ones cost nothing), records new candidates and the
    /// generation summary, and returns the members with their fitness.
    fn run_generation(
        &self,
        state: &mut SearchState,
        generation: usize,
        members: &[Architecture],
        evaluator: &mut dyn Evaluator,
        observer: &mut dyn Observer,
    ) -> Result<Vec<(Architecture, f64)>, SearchError> {
        let start = std::time::Instant::now();
        let mut fresh: Vec<Architecture> = Vec::new();
        for arch in members {
            if state.cache.get(arch).is_none() && !fresh.contains(arch) {
                fresh.push(arch.clone());
            }
        }
        observer.generation_started(generation, fresh.len());
        let chunk = evaluator.parallelism().max(1);
        let mut done = 0;
        for part in fresh.chunks(chunk) {
            let results = evaluator.evaluate(part)?;
            if results.len() != part.len() {
                return Err(SearchError::Settings(format!(
                    "the evaluator returned {} results for {} genomes",
                    results.len(),
                    part.len()
                )));
            }
            for (arch, evaluation) in part.iter().zip(results) {
                // NaN ranks above everything and cannot be written to JSON: refused here,
                // before it reaches the ranking or the state files.
                if !(evaluation.top1.is_finite() && evaluation.top5.is_finite()) {
                    return Err(SearchError::Settings(format!(
                        "the evaluator gave genome {arch} a non-finite accuracy (top-1 {}, top-5 {})",
                        evaluation.top1, evaluation.top5
                    )));
                }
                state.cache.insert(arch, evaluation);
            }
            done += part.len();
            observer.progress(done);
        }
        let known: BTreeSet<&Architecture> = state.candidates.iter().map(|c| &c.arch).collect();
        let mut new_candidates = Vec::new();
        let mut scored = Vec::with_capacity(members.len());
        for arch in members {
            let evaluation = state.cache.get(arch).ok_or_else(|| {
                SearchError::State(format!("genome {arch} was evaluated but its result is not in the cache"))
            })?;
            let cost = self.cost.cost(arch)?;
            let fitness = self.objective.fitness(&cost, &evaluation);
            if !known.contains(arch) && !new_candidates.iter().any(|c: &Candidate| &c.arch == arch) {
                new_candidates.push(Candidate { generation, arch: arch.clone(), cost, evaluation, fitness });
            }
            scored.push((arch.clone(), fitness));
        }
        state.candidates.extend(new_candidates);
        let fitness: Vec<f64> = scored.iter().map(|s| s.1).collect();
        let best_fitness = fitness.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let summary = GenerationSummary {
            generation,
            members: members.len(),
            new_evaluations: fresh.len(),
            total_evaluated: state.candidates.len(),
            best_fitness,
            mean_fitness: fitness.iter().sum::<f64>() / fitness.len().max(1) as f64,
            best_top1_so_far: state.candidates.iter().map(|c| c.evaluation.top1).fold(f64::NEG_INFINITY, f64::max),
            best_fitness_so_far: state.candidates.iter().map(|c| c.fitness).fold(f64::NEG_INFINITY, f64::max),
            seconds: if fresh.is_empty() { 0.0 } else { start.elapsed().as_secs_f64() },
        };
        observer.generation_finished(&summary);
        state.generations.push(summary);
        Ok(scored)
    }

    /// The next population: parents (the best `retain`, plus others by chance), then
    /// feasible children of two distinct parents.
    fn evolve(
        &self,
        config: &GeneticConfig,
        scored: &[(Architecture, f64)],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<Architecture>, SearchError> {
        let mut graded: Vec<&(Architecture, f64)> = scored.iter().collect();
        graded.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        graded.dedup_by(|a, b| a.0 == b.0);
        let mut parents: Vec<Architecture> = graded.iter().take(config.retain).map(|s| s.0.clone()).collect();
        for other in graded.iter().skip(config.retain) {
            if rng.random::<f64>() < config.random_select {
                parents.push(other.0.clone());
            }
        }
        if parents.len() < 2 {
            return Err(SearchError::Impossible(format!(
                "a generation of {} distinct genomes leaves fewer than two parents to breed",
                graded.len()
            )));
        }
        let mut taken: BTreeSet<Architecture> = parents.iter().cloned().collect();
        let mut next = parents.clone();
        while next.len() < config.population {
            let mut child = None;
            for _ in 0..config.max_attempts {
                let a = rng.random_range(0..parents.len());
                let mut b = rng.random_range(0..parents.len() - 1);
                if b >= a {
                    b += 1;
                }
                let candidate = self.domain.breed(&parents[a], &parents[b], config.mutate, rng);
                if !taken.contains(&candidate) && self.is_feasible(&candidate) {
                    child = Some(candidate);
                    break;
                }
            }
            let child = match child {
                Some(c) => c,
                None => self.sample_feasible(rng, &taken)?,
            };
            taken.insert(child.clone());
            next.push(child);
        }
        Ok(next)
    }

    fn result(&self, strategy: &str, state: SearchState, complete: bool, top_k: usize) -> SearchResult {
        let candidates = state.candidates;
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| {
            candidates[b]
                .fitness
                .total_cmp(&candidates[a].fitness)
                .then_with(|| candidates[a].arch.cmp(&candidates[b].arch))
        });
        order.truncate(top_k.max(1));
        let front = |cost: fn(&Candidate) -> f64| {
            let points: Vec<(f64, f64)> = candidates.iter().map(|c| (cost(c), c.evaluation.top1)).collect();
            pareto::front(&points)
        };
        SearchResult {
            strategy: strategy.to_string(),
            top_k: order,
            pareto_flops: front(|c| c.cost.flops),
            pareto_params: front(|c| c.cost.params),
            complete,
            generations: state.generations,
            candidates,
        }
    }

    /// The state file of `strategy`, when there is one with `fingerprint`, or with the
    /// `legacy` one of an earlier version (then given the current one).
    fn load_state(&self, strategy: &str, fingerprint: &str, legacy: &str) -> Result<Option<SearchState>, SearchError> {
        let Some(path) = self.state_path(strategy) else { return Ok(None) };
        if !path.is_file() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| SearchError::State(format!("{}: {e}", path.display())))?;
        let mut state: SearchState = serde_json::from_str(&text).map_err(|e| {
            SearchError::State(format!("{}: corrupt state file ({e}); delete it to start over", path.display()))
        })?;
        if state.fingerprint == legacy {
            state.fingerprint = fingerprint.to_string();
        }
        if state.fingerprint != fingerprint {
            return Err(SearchError::State(format!(
                "{} was written by a search with other settings, constraints or evaluator context; use another \
                 output directory or delete it (its cached evaluations are kept and reused)",
                path.display()
            )));
        }
        Ok(Some(state))
    }

    fn save_state(&self, strategy: &str, state: &SearchState) -> Result<(), SearchError> {
        match self.state_path(strategy) {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| SearchError::State(format!("{}: {e}", dir.display())))?;
                }
                crate::write_json(&path, state)?;
                let cache_path = self.cache_path().unwrap_or_default();
                let mut shared = EvalCache::load_or_new(&cache_path, &state.cache.context)?;
                shared.merge(&state.cache);
                shared.save(&cache_path)
            }
            None => Ok(()),
        }
    }
}

/// The summary of the random-search generation made of `candidates[start..]` (the
/// last one so far): each generation of a random search draws only genomes new to it,
/// so its members are exactly its candidates.
fn random_summary(candidates: &[Candidate], start: usize, new_evaluations: usize, seconds: f64) -> GenerationSummary {
    let members = &candidates[start..];
    let best = |items: &[Candidate], f: fn(&Candidate) -> f64| items.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    GenerationSummary {
        generation: members.first().map_or(0, |c| c.generation),
        members: members.len(),
        new_evaluations,
        total_evaluated: candidates.len(),
        best_fitness: best(members, |c| c.fitness),
        mean_fitness: members.iter().map(|c| c.fitness).sum::<f64>() / members.len().max(1) as f64,
        best_top1_so_far: best(candidates, |c| c.evaluation.top1),
        best_fitness_so_far: best(candidates, |c| c.fitness),
        seconds,
    }
}

/// Cuts a random search's state to its first `budget` genomes; the generation the cut
/// falls in keeps its members' statistics, and a share of its evaluations and time.
fn truncate_random(state: &mut SearchState, budget: usize) {
    if state.candidates.len() <= budget {
        return;
    }
    state.candidates.truncate(budget);
    let kept = state.generations.iter().take_while(|g| g.total_evaluated <= budget).count();
    let cut = state.generations.get(kept).cloned();
    state.generations.truncate(kept);
    let start = state.generations.last().map_or(0, |g| g.total_evaluated);
    if let Some(cut) = cut.filter(|_| start < budget) {
        let kept_members = budget - start;
        let share = kept_members as f64 / cut.members.max(1) as f64;
        let new_evaluations = cut.new_evaluations.min(kept_members);
        state.generations.push(random_summary(&state.candidates, start, new_evaluations, cut.seconds * share));
    }
}

/// JSON text of a value, for fingerprints.
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use micronet_score::Convention;
    use shufflenas_model::{CostTable, SearchSpace};

    use super::*;
    use crate::latency::{LatencyStat, LatencyTable};

    fn table(fixed_ms: f64) -> LatencyTable {
        let stat = |mean_ms| Some(LatencyStat { mean_ms, std_ms: 0.0, count: 1 });
        LatencyTable {
            backend: "flex".into(),
            device: "cpu".into(),
            batch: 1,
            input_size: 224,
            space: None,
            fixed: LatencyStat { mean_ms: fixed_ms, std_ms: 0.0, count: 1 },
            blocks: vec![std::array::from_fn(|_| vec![stat(0.5); 10]); 20],
        }
    }

    /// Top-1 from a digest of the genome: deterministic, different per genome.
    struct Digest;

    impl Evaluator for Digest {
        fn context(&self) -> &str {
            "digest"
        }

        fn evaluate(&mut self, archs: &[Architecture]) -> Result<Vec<Evaluation>, SearchError> {
            let top1 = |a: &Architecture| {
                (crate::evaluator::fnv1a(a.to_string().into_bytes(), crate::evaluator::FNV_OFFSET) % 1000) as f64
                    / 1000.0
            };
            Ok(archs.iter().map(|a| Evaluation { top1: top1(a), top5: top1(a) }).collect())
        }
    }

    // A state file of an earlier version (its fingerprint held every setting) still
    // resumes with the command that wrote it, to a straight run's result.
    #[test]
    fn a_state_file_of_the_earlier_fingerprint_resumes() {
        let space = SearchSpace::oneshot_plus();
        let cost = CostModel { table: CostTable::new(&space, Convention::default()).unwrap(), latency: None };
        let dir = std::env::temp_dir().join(format!("shufflenas-legacy-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let search = |dir: Option<PathBuf>, stop_after| Search {
            cost: &cost,
            domain: GenomeDomain::of(&space),
            constraints: Constraints::default(),
            objective: Objective::Accuracy,
            dir,
            stop_after,
        };
        let config = GeneticConfig { population: 8, retain: 2, iterations: 4, ..GeneticConfig::default() };
        let straight = search(None, None).genetic(&config, &mut Digest, &mut NoObserver).unwrap();
        search(Some(dir.clone()), Some(2)).genetic(&config, &mut Digest, &mut NoObserver).unwrap();
        let path = dir.join("genetic-state.json");
        let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        state["fingerprint"] = search(None, None).legacy_fingerprint("genetic", &config, "digest").into();
        std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
        let resumed = search(Some(dir.clone()), None).genetic(&config, &mut Digest, &mut NoObserver).unwrap();
        assert_eq!(resumed.candidates, straight.candidates);
        assert_eq!(resumed.top_k, straight.top_k);
        let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let current = search(None, None).fingerprint("genetic", &config, &["iterations", "top_k"], "digest");
        assert_eq!(saved["fingerprint"], serde_json::Value::from(current));
        let _ = std::fs::remove_dir_all(&dir);
    }

    // A search resumed on a re-measured latency table would mix old and new costs.
    #[test]
    fn the_fingerprint_holds_the_latency_table() {
        let space = SearchSpace::oneshot_plus();
        let fingerprint = |latency: Option<LatencyTable>| {
            let cost = CostModel { table: CostTable::new(&space, Convention::default()).unwrap(), latency };
            let search = Search {
                cost: &cost,
                domain: GenomeDomain::of(&space),
                constraints: Constraints::default(),
                objective: Objective::Accuracy,
                dir: None,
                stop_after: None,
            };
            search.fingerprint("genetic", &GeneticConfig::default(), &[], "context")
        };
        let without = fingerprint(None);
        assert!(!without.contains("|latency "));
        assert_eq!(fingerprint(Some(table(2.0))), fingerprint(Some(table(2.0))));
        assert_ne!(fingerprint(Some(table(2.0))), fingerprint(Some(table(3.0))));
        assert!(fingerprint(Some(table(2.0))).starts_with(&without));
    }
}
