//! Latency lookup table: the measured time of every (position, block, channel) choice
//! on the user's own backend and device, so that a genome's latency is predicted as
//! the fixed part (stem + head) plus one entry per position.

use std::path::Path;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use serde::{Deserialize, Serialize};
use shufflenas_model::nn::Supernet;
use shufflenas_model::{Architecture, BlockChoice, ChannelChoice, SearchSpace};

use crate::SearchError;

/// Mean, standard deviation and number of timed runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStat {
    /// Mean time in milliseconds.
    pub mean_ms: f64,
    /// Standard deviation in milliseconds.
    pub std_ms: f64,
    /// Timed runs.
    pub count: usize,
}

/// A measured latency table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyTable {
    /// Backend name (`flex`, `wgpu`, `cuda`).
    pub backend: String,
    /// Device description.
    pub device: String,
    /// Batch size of the timed runs.
    pub batch: usize,
    /// Input side of the network.
    pub input_size: usize,
    /// The search space measured (`None` in tables written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<SearchSpace>,
    /// Stem and head together.
    pub fixed: LatencyStat,
    /// `blocks[position][block id][channel id]`; `None` for channel ids not measured.
    pub blocks: Vec<[Vec<Option<LatencyStat>>; 4]>,
}

impl LatencyTable {
    /// Mean time of one choice, if measured.
    pub fn block_ms(&self, position: usize, block: BlockChoice, channel: ChannelChoice) -> Option<f64> {
        self.blocks.get(position)?[block.id() as usize].get(channel.index())?.map(|s| s.mean_ms)
    }

    /// Predicted latency of `arch` in milliseconds.
    ///
    /// # Errors
    /// [`SearchError::Latency`] when the table has another number of positions or
    /// lacks one of the genome's choices.
    pub fn predict(&self, arch: &Architecture) -> Result<f64, SearchError> {
        if arch.len() != self.blocks.len() {
            return Err(SearchError::Latency(format!(
                "the table has {} positions, the genome {}",
                self.blocks.len(),
                arch.len()
            )));
        }
        let mut total = self.fixed.mean_ms;
        for (position, (&block, &channel)) in arch.blocks.iter().zip(&arch.channels).enumerate() {
            total += self.block_ms(position, block, channel).ok_or_else(|| {
                SearchError::Latency(format!(
                    "no entry for position {position}, block {}, channel id {}",
                    block.id(),
                    channel.0
                ))
            })?;
        }
        Ok(total)
    }

    /// Checks that the table was measured for networks of `space`: the same input side
    /// and number of positions, and (for tables that record it) the same space apart
    /// from what does not change a forward pass's time (dropout, the searchable ids);
    /// its times would otherwise be of other networks. Every time must be a finite,
    /// non-negative number, and every choice the space searches (each block at each
    /// searchable channel id, at every position) must have one.
    ///
    /// # Errors
    /// [`SearchError::Latency`] naming what differs.
    pub fn check_space(&self, space: &SearchSpace) -> Result<(), SearchError> {
        if self.input_size != space.input_size {
            return Err(SearchError::Latency(format!(
                "the table was measured at {} px, the space's input is {} px: measure one for this space",
                self.input_size, space.input_size
            )));
        }
        if self.blocks.len() != space.num_blocks() {
            return Err(SearchError::Latency(format!(
                "the table has {} positions, the space {}",
                self.blocks.len(),
                space.num_blocks()
            )));
        }
        let bad_time = |stat: &LatencyStat| !(stat.mean_ms.is_finite() && stat.mean_ms >= 0.0);
        if bad_time(&self.fixed) {
            return Err(SearchError::Latency(format!("the stem and head time is {} ms", self.fixed.mean_ms)));
        }
        for (position, row) in self.blocks.iter().enumerate() {
            for (block, entries) in row.iter().enumerate() {
                for id in space.searchable_min_id..=space.searchable_max_id {
                    let entry = entries.get(id).copied().flatten();
                    let problem = match entry {
                        None => "no time".to_string(),
                        Some(stat) if bad_time(&stat) => format!("a time of {} ms", stat.mean_ms),
                        Some(_) => continue,
                    };
                    return Err(SearchError::Latency(format!(
                        "the table has {problem} for position {position}, block {block}, channel id {id}, which the \
                         space searches: measure it again (the latency_table example)"
                    )));
                }
            }
        }
        if let Some(measured) = &self.space {
            let comparable = SearchSpace {
                dropout: space.dropout,
                searchable_min_id: space.searchable_min_id,
                searchable_max_id: space.searchable_max_id,
                ..measured.clone()
            };
            let differing = differing_fields(&comparable, space);
            if !differing.is_empty() {
                return Err(SearchError::Latency(format!(
                    "the table was measured for another search space ({} differ): measure one for this space",
                    differing.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Writes the table as pretty JSON, atomically (temp file + rename).
    ///
    /// # Errors
    /// [`SearchError::Latency`] naming the file when it cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), SearchError> {
        crate::write_json(path, self).map_err(|e| match e {
            SearchError::State(message) => SearchError::Latency(format!("cannot write {message}")),
            other => other,
        })
    }

    /// Reads a table written by [`LatencyTable::save`].
    ///
    /// # Errors
    /// [`SearchError::Latency`] naming the file when it is missing, unreadable or not a
    /// latency table.
    pub fn load(path: &Path) -> Result<Self, SearchError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SearchError::Latency(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| SearchError::Latency(format!("{} is not a valid latency table: {e}", path.display())))
    }
}

/// Names of the top-level fields whose JSON differs between `a` and `b`.
fn differing_fields(a: &SearchSpace, b: &SearchSpace) -> Vec<String> {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) => {
            a.iter().filter(|(key, value)| b.get(*key) != Some(value)).map(|(key, _)| key.clone()).collect()
        }
        _ if a != b => vec!["the space".into()],
        _ => Vec::new(),
    }
}

/// How [`measure`] and [`check_predictions`] time forward passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyOptions {
    /// Batch size of every timed run.
    pub batch: usize,
    /// Untimed runs before the timed ones (first-call allocation, kernel compilation).
    pub warmup: usize,
    /// Timed runs per entry.
    pub repeats: usize,
    /// Backend name recorded in the table; empty: Burn's name of the backend.
    pub backend: String,
    /// Device description recorded in the table; empty: the device's `Debug` form.
    pub device: String,
}

impl Default for LatencyOptions {
    fn default() -> Self {
        Self { batch: 1, warmup: 2, repeats: 10, backend: String::new(), device: String::new() }
    }
}

impl LatencyOptions {
    fn check(&self) -> Result<(), SearchError> {
        if self.batch == 0 || self.repeats == 0 {
            return Err(SearchError::Latency(format!(
                "batch and repeats must be positive, got batch {} and repeats {}",
                self.batch, self.repeats
            )));
        }
        Ok(())
    }
}

/// Measures the latency table of `supernet`'s space on the supernet's device.
///
/// Every choice is timed in place: position `p` gets a random input of its own shape
/// `[batch, in_channels, size, size]` and runs
/// `supernet.positions[p].blocks[block].forward(x, mid)` with the mid channels of each
/// searchable channel id (other ids stay `None`). The fixed part is the stem at the
/// network input plus the head at the last stage's output shape. Each timed run ends
/// with [`Backend::sync`], so asynchronous backends (wgpu, cuda) are timed to
/// completion. Entries are in the order position, block, channel id.
///
/// Use an inference backend (`supernet.valid()` of a trained supernet, or one built on
/// the inner backend): autodiff would time graph recording and training-mode batch norm.
///
/// # Errors
/// [`SearchError::Latency`] for zero batch or repeats, an autodiff backend, a supernet
/// with no parameters, or a failed device sync; [`SearchError::Space`] for an invalid
/// space.
pub fn measure<B: Backend>(supernet: &Supernet<B>, options: &LatencyOptions) -> Result<LatencyTable, SearchError> {
    options.check()?;
    let device = device_of(supernet)?;
    let space = supernet.space();
    let slots = space.slots()?;
    let (warmup, repeats, batch) = (options.warmup, options.repeats, options.batch);

    let image = random_input::<B>([batch, space.input_channels, space.input_size, space.input_size], &device);
    let last = slots.last().ok_or_else(|| SearchError::Latency("the space has no choice blocks".into()))?;
    let features = random_input::<B>([batch, last.out_channels, last.output_size(), last.output_size()], &device);
    let fixed = time_runs::<B, _>(&device, warmup, repeats, || {
        let stem = supernet.stem.forward(image.clone(), supernet.stem.max_out());
        (stem, supernet.head.forward(features.clone()))
    })?;

    let searchable = space.searchable_min_id..=space.searchable_max_id;
    let mut blocks = Vec::with_capacity(slots.len());
    for (slot, position) in slots.iter().zip(&supernet.positions) {
        let x = random_input::<B>([batch, slot.in_channels, slot.input_size, slot.input_size], &device);
        let mut row: [Vec<Option<LatencyStat>>; 4] = Default::default();
        for (entries, block) in row.iter_mut().zip(&position.blocks) {
            for (id, &scale) in space.candidate_scales.iter().enumerate() {
                let entry = if searchable.contains(&id) {
                    let mid = space.mid_channels(slot.out_channels, scale);
                    Some(time_runs::<B, _>(&device, warmup, repeats, || block.forward(x.clone(), mid))?)
                } else {
                    None
                };
                entries.push(entry);
            }
        }
        blocks.push(row);
    }
    Ok(LatencyTable {
        backend: if options.backend.is_empty() { B::name(&device) } else { options.backend.clone() },
        device: if options.device.is_empty() { format!("{device:?}") } else { options.device.clone() },
        batch,
        input_size: space.input_size,
        space: Some(space.clone()),
        fixed,
        blocks,
    })
}

/// Predicted against measured latency of whole subnets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCheck {
    /// `(genome, predicted ms, measured ms)` per checked genome, in input order.
    pub rows: Vec<(String, f64, f64)>,
    /// Pearson correlation of predicted and measured; `None` below two genomes or
    /// when either side is constant.
    pub pearson: Option<f64>,
    /// Mean of |predicted − measured| in milliseconds.
    pub mean_abs_error_ms: f64,
    /// Mean of |predicted − measured| / measured.
    pub mean_rel_error: f64,
}

/// Times each genome of `archs` as a whole path of `supernet`
/// (`forward_plan` at the network input shape) and compares with `table.predict`.
///
/// The table should come from [`measure`] on the same backend, device and batch size.
///
/// # Errors
/// [`SearchError::Latency`] for no genomes, a table of another batch size, input size
/// or number of positions, a genome the table lacks, or as [`measure`];
/// [`SearchError::Space`] for a genome that does not fit the space.
pub fn check_predictions<B: Backend>(
    table: &LatencyTable,
    supernet: &Supernet<B>,
    archs: &[Architecture],
    options: &LatencyOptions,
) -> Result<LatencyCheck, SearchError> {
    options.check()?;
    if archs.is_empty() {
        return Err(SearchError::Latency("no genomes to check".into()));
    }
    let space = supernet.space();
    if table.batch != options.batch || table.input_size != space.input_size {
        return Err(SearchError::Latency(format!(
            "the table was measured at batch {} and input size {}, the check runs batch {} at input size {}",
            table.batch, table.input_size, options.batch, space.input_size
        )));
    }
    let device = device_of(supernet)?;
    let shape = [options.batch, space.input_channels, space.input_size, space.input_size];
    let x = random_input::<B>(shape, &device);
    let mut rows = Vec::with_capacity(archs.len());
    for arch in archs {
        let plan = space.decode(arch)?;
        let predicted = table.predict(arch)?;
        let measured = time_runs::<B, _>(&device, options.warmup, options.repeats, || {
            supernet.forward_plan(x.clone(), &plan, false)
        })?;
        rows.push((arch.to_string(), predicted, measured.mean_ms));
    }
    let (predicted, measured): (Vec<f64>, Vec<f64>) = rows.iter().map(|&(_, p, m)| (p, m)).unzip();
    let n = rows.len() as f64;
    let mean_abs_error_ms = predicted.iter().zip(&measured).map(|(p, m)| (p - m).abs()).sum::<f64>() / n;
    let mean_rel_error = predicted.iter().zip(&measured).map(|(p, m)| (p - m).abs() / m.max(1e-12)).sum::<f64>() / n;
    Ok(LatencyCheck {
        pearson: crate::ranking::pearson(&predicted, &measured),
        rows,
        mean_abs_error_ms,
        mean_rel_error,
    })
}

/// The device the supernet's parameters live on.
fn device_of<B: Backend>(supernet: &Supernet<B>) -> Result<B::Device, SearchError> {
    let device = supernet
        .devices()
        .into_iter()
        .next()
        .ok_or_else(|| SearchError::Latency("the supernet has no parameters to find its device from".into()))?;
    if B::ad_enabled(&device) {
        return Err(SearchError::Latency(
            "measure on an inference backend (the supernet's `valid()`), not an autodiff one".into(),
        ));
    }
    Ok(device)
}

fn random_input<B: Backend>(shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn sync<B: Backend>(device: &B::Device) -> Result<(), SearchError> {
    B::sync(device).map_err(|e| SearchError::Latency(format!("device sync failed: {e}")))
}

/// Runs `run` `warmup` times untimed, then `repeats` times timed. Each timed run starts
/// after a sync (nothing queued before it is counted) and stops after a sync with its
/// output still alive (so a lazy backend cannot skip the work).
fn time_runs<B: Backend, T>(
    device: &B::Device,
    warmup: usize,
    repeats: usize,
    mut run: impl FnMut() -> T,
) -> Result<LatencyStat, SearchError> {
    for _ in 0..warmup {
        let output = run();
        sync::<B>(device)?;
        drop(output);
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        sync::<B>(device)?;
        let start = Instant::now();
        let output = run();
        sync::<B>(device)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        drop(output);
    }
    Ok(LatencyStat::of(&times))
}

impl LatencyStat {
    /// Mean and sample standard deviation (0 for a single run) of `times_ms`.
    fn of(times_ms: &[f64]) -> Self {
        let count = times_ms.len();
        let mean_ms = times_ms.iter().sum::<f64>() / count.max(1) as f64;
        let std_ms = if count > 1 {
            (times_ms.iter().map(|t| (t - mean_ms).powi(2)).sum::<f64>() / (count - 1) as f64).sqrt()
        } else {
            0.0
        };
        Self { mean_ms, std_ms, count }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use burn::backend::Flex;
    use shufflenas_model::SearchSpace;
    use shufflenas_model::nn::SupernetConfig;

    use super::*;

    const REPEATS: usize = 2;

    fn space() -> SearchSpace {
        SearchSpace::tiny(1, 10)
    }

    fn supernet() -> Supernet<Flex> {
        SupernetConfig::new(space()).init::<Flex>(&Default::default()).unwrap()
    }

    fn options() -> LatencyOptions {
        LatencyOptions { warmup: 1, repeats: REPEATS, ..LatencyOptions::default() }
    }

    /// One measured table shared by the tests (measuring takes a few seconds).
    fn table() -> &'static LatencyTable {
        static TABLE: OnceLock<LatencyTable> = OnceLock::new();
        TABLE.get_or_init(|| measure(&supernet(), &options()).unwrap())
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("shufflenas-latency-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    // Search may pick any searchable choice, so the table must hold every one of them,
    // and nothing for the ids search never picks.
    #[test]
    fn every_searchable_choice_is_measured_and_the_others_are_not() {
        let space = space();
        let table = table();
        assert_eq!(table.blocks.len(), space.num_blocks());
        assert_eq!((table.batch, table.input_size), (1, 32));
        assert_eq!(table.backend, Flex::name(&Default::default()));
        assert!(!table.device.is_empty());
        assert_eq!(table.fixed.count, REPEATS);
        assert!(table.fixed.mean_ms.is_finite() && table.fixed.mean_ms >= 0.0);
        for (position, row) in table.blocks.iter().enumerate() {
            for (block, entries) in row.iter().enumerate() {
                assert_eq!(entries.len(), space.candidate_scales.len());
                for (id, entry) in entries.iter().enumerate() {
                    let searchable = (space.searchable_min_id..=space.searchable_max_id).contains(&id);
                    match entry {
                        Some(stat) => {
                            assert!(searchable, "position {position}, block {block}: id {id} is not searchable");
                            assert_eq!(stat.count, REPEATS);
                            assert!(stat.mean_ms.is_finite() && stat.mean_ms >= 0.0 && stat.std_ms >= 0.0);
                        }
                        None => assert!(!searchable, "position {position}, block {block}: id {id} is missing"),
                    }
                }
            }
        }
    }

    // The prediction is exactly the table's additive model.
    #[test]
    fn a_prediction_is_the_fixed_part_plus_one_entry_per_position() {
        let table = table();
        for seed in 0..3 {
            let arch = Architecture::random_seeded(&space(), seed);
            let predicted = table.predict(&arch).unwrap();
            let sum: f64 = (0..arch.len())
                .map(|p| table.block_ms(p, arch.blocks[p], arch.channels[p]).expect("searchable entry"))
                .sum();
            assert!(predicted > 0.0, "genome {arch}: {predicted} ms");
            assert!((predicted - (table.fixed.mean_ms + sum)).abs() <= 1e-9 * predicted, "genome {arch}");
        }
        let mut outside = Architecture::random_seeded(&space(), 0);
        outside.channels[3] = ChannelChoice(0);
        assert!(matches!(table.predict(&outside), Err(SearchError::Latency(_))));
    }

    #[test]
    fn a_saved_table_loads_back_unchanged() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("latency.json");
        let table = table();
        table.save(&path).unwrap();
        let loaded = LatencyTable::load(&path).unwrap();
        // JSON holds the shortest decimal of each f64: compare floats to the last bits.
        let close = |a: &LatencyStat, b: &LatencyStat| {
            a.count == b.count
                && (a.mean_ms - b.mean_ms).abs() <= 1e-12 * a.mean_ms.abs().max(1e-300)
                && (a.std_ms - b.std_ms).abs() <= 1e-12 * a.std_ms.abs().max(1e-300)
        };
        assert_eq!((&loaded.backend, &loaded.device, loaded.batch), (&table.backend, &table.device, table.batch));
        assert_eq!(loaded.input_size, table.input_size);
        assert!(close(&loaded.fixed, &table.fixed));
        assert_eq!(loaded.blocks.len(), table.blocks.len());
        for (a, b) in loaded.blocks.iter().flatten().flatten().zip(table.blocks.iter().flatten().flatten()) {
            match (a, b) {
                (Some(a), Some(b)) => assert!(close(a, b), "{a:?} vs {b:?}"),
                (None, None) => {}
                _ => panic!("an entry changed presence: {a:?} vs {b:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // A bad file must be reported with its name, not crash a search.
    #[test]
    fn a_missing_or_corrupt_file_is_an_error_naming_it() {
        let dir = temp_dir("corrupt");
        let missing = dir.join("missing.json");
        let err = LatencyTable::load(&missing).unwrap_err();
        assert!(matches!(err, SearchError::Latency(_)) && err.to_string().contains("missing.json"), "{err}");
        let corrupt = dir.join("corrupt.json");
        for text in ["{not json", "{\"backend\": \"flex\"}", ""] {
            std::fs::write(&corrupt, text).unwrap();
            let err = LatencyTable::load(&corrupt).unwrap_err();
            assert!(matches!(err, SearchError::Latency(_)) && err.to_string().contains("corrupt.json"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // A table of another input size times other networks: refused by name.
    #[test]
    fn a_table_of_another_space_is_refused() {
        let table = table();
        assert!(table.check_space(&space()).is_ok());
        let larger = SearchSpace { input_size: 64, ..space() };
        let err = table.check_space(&larger).unwrap_err().to_string();
        assert!(err.contains("measured at 32 px") && err.contains("64 px"), "{err}");
        // Same size and positions, other channels: named; dropout does not change a time.
        let wider =
            SearchSpace { stage_out_channels: space().stage_out_channels.iter().map(|c| c * 2).collect(), ..space() };
        let err = table.check_space(&wider).unwrap_err().to_string();
        assert!(err.contains("another search space (stage_out_channels differ)"), "{err}");
        assert!(table.check_space(&SearchSpace { dropout: 0.5, ..space() }).is_ok());
        // A table written before the space was recorded is checked on size and positions.
        let old = LatencyTable { space: None, ..table.clone() };
        assert!(old.check_space(&wider).is_ok());
        // A missing or negative time of a searched choice is named, not turned into an
        // infinite prediction later.
        let mut holes = table.clone();
        holes.blocks[1][2][space().searchable_max_id] = None;
        let err = holes.check_space(&space()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("no time for position 1, block 2, channel id {}", space().searchable_max_id)),
            "{err}"
        );
        let mut negative = table.clone();
        if let Some(stat) = negative.blocks[0][0][space().searchable_min_id].as_mut() {
            stat.mean_ms = -1.0;
        }
        let err = negative.check_space(&space()).unwrap_err().to_string();
        assert!(err.contains("a time of -1 ms for position 0, block 0"), "{err}");
    }

    #[test]
    fn a_check_compares_each_genome_with_its_prediction() {
        let table = table();
        let archs: Vec<_> = (0..3).map(|seed| Architecture::random_seeded(&space(), seed)).collect();
        let options = LatencyOptions { warmup: 0, repeats: 1, ..LatencyOptions::default() };
        let check = check_predictions(table, &supernet(), &archs, &options).unwrap();
        assert_eq!(check.rows.len(), archs.len());
        for ((genome, predicted, measured), arch) in check.rows.iter().zip(&archs) {
            assert_eq!(genome, &arch.to_string());
            assert_eq!(*predicted, table.predict(arch).unwrap());
            assert!(measured.is_finite() && *measured >= 0.0);
        }
        assert!(check.mean_abs_error_ms.is_finite() && check.mean_rel_error.is_finite());
        assert!(check.pearson.is_none_or(|r| (-1.0..=1.0).contains(&r)));
    }

    #[test]
    fn bad_options_and_mismatched_tables_are_errors() {
        let supernet = supernet();
        let zero = LatencyOptions { repeats: 0, ..LatencyOptions::default() };
        assert!(matches!(measure(&supernet, &zero), Err(SearchError::Latency(_))));
        let arch = [Architecture::random_seeded(&space(), 0)];
        assert!(matches!(check_predictions(table(), &supernet, &[], &options()), Err(SearchError::Latency(_))));
        let batch2 = LatencyOptions { batch: 2, ..options() };
        let err = check_predictions(table(), &supernet, &arch, &batch2).unwrap_err();
        assert!(err.to_string().contains("batch 1"), "{err}");
    }
}
