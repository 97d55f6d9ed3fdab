//! Hard caps on a genome's cost, checked with the analytic cost table (and the latency
//! table when given), never by building a network.

use micronet_score::{Baseline, Counts};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use shufflenas_model::{Architecture, CostTable};

use crate::SearchError;
use crate::domain::GenomeDomain;
use crate::latency::LatencyTable;

/// The seed's comparison models, as (MACs, params).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    /// Single Path One Shot (Guo et al.): 328M MACs, 3.4M params.
    SinglePathOneShot,
    /// MobileNetV3-large: 217M MACs, 5.4M params.
    MobileNetV3Large,
    /// MobileNetV2 1.4: 585M MACs, 6.9M params.
    MobileNetV2x14,
    /// ShuffleNetV2+ medium: 222M MACs, 5.6M params.
    ShuffleNetV2PlusMedium,
}

impl Comparison {
    /// All comparison models.
    pub const ALL: [Self; 4] =
        [Self::SinglePathOneShot, Self::MobileNetV3Large, Self::MobileNetV2x14, Self::ShuffleNetV2PlusMedium];

    /// Multiply-accumulates per image.
    pub fn macs(self) -> f64 {
        match self {
            Self::SinglePathOneShot => 328e6,
            Self::MobileNetV3Large => 217e6,
            Self::MobileNetV2x14 => 585e6,
            Self::ShuffleNetV2PlusMedium => 222e6,
        }
    }

    /// Parameters.
    pub fn params(self) -> f64 {
        match self {
            Self::SinglePathOneShot => 3.4e6,
            Self::MobileNetV3Large => 5.4e6,
            Self::MobileNetV2x14 => 6.9e6,
            Self::ShuffleNetV2PlusMedium => 5.6e6,
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SinglePathOneShot => "SinglePathOneShot",
            Self::MobileNetV3Large => "MobileNetV3-large",
            Self::MobileNetV2x14 => "MobileNetV2-1.4",
            Self::ShuffleNetV2PlusMedium => "ShuffleNetV2+ medium",
        }
    }
}

/// What a search knows about a genome without evaluating it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// MicroNet FLOPs (mults + adds).
    pub flops: f64,
    /// Multiply-accumulates.
    pub macs: f64,
    /// MicroNet params (16-bit units).
    pub params: f64,
    /// MicroNet float32 score (Σ normalised score against MobileNetV2-1.4).
    pub score: f64,
    /// Predicted latency in milliseconds (with a latency table).
    pub latency_ms: Option<f64>,
}

impl Cost {
    fn of(counts: &Counts, latency_ms: Option<f64>) -> Self {
        Self {
            flops: counts.flops() as f64,
            macs: counts.macs as f64,
            params: counts.params(),
            score: counts.scores(&Baseline::default()).fp32,
            latency_ms,
        }
    }
}

/// Caps on the cost; `None` means no cap. All must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// MicroNet FLOPs.
    pub max_flops: Option<f64>,
    /// MACs.
    pub max_macs: Option<f64>,
    /// Params.
    pub max_params: Option<f64>,
    /// MicroNet float32 score (the seed's Σ normalised score).
    pub max_score: Option<f64>,
    /// ½ (MACs / MACs_ref + params / params_ref) ≤ 1 against this comparison model.
    pub combined_vs: Option<Comparison>,
    /// Predicted latency (ms); needs a latency table.
    pub max_latency_ms: Option<f64>,
}

impl Constraints {
    /// Caps MACs and params at `ratio` times those of `model`.
    pub fn relative_to(model: Comparison, ratio: f64) -> Self {
        Self { max_macs: Some(model.macs() * ratio), max_params: Some(model.params() * ratio), ..Self::default() }
    }

    /// Checks that every cap is a number: a NaN cap compares false with every cost, so
    /// it would silently allow everything.
    ///
    /// # Errors
    /// [`SearchError::Settings`] naming the cap.
    pub fn check(&self) -> Result<(), SearchError> {
        match self.caps().into_iter().find(|(_, cap)| cap.is_some_and(|cap| cap.is_nan() || cap < 0.0)) {
            Some((name, Some(cap))) => {
                Err(SearchError::Settings(format!("the {name} cap must be a non-negative number, got {cap}")))
            }
            _ => Ok(()),
        }
    }

    /// The caps on one metric each, by the names of [`CostModel::ranges`].
    fn caps(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("flops", self.max_flops),
            ("macs", self.max_macs),
            ("params", self.max_params),
            ("score", self.max_score),
            ("latency_ms", self.max_latency_ms),
        ]
    }

    /// Whether `cost` satisfies every cap.
    pub fn allows(&self, cost: &Cost) -> bool {
        self.violations(cost).is_empty()
    }

    /// The caps `cost` breaks, by name.
    pub fn violations(&self, cost: &Cost) -> Vec<&'static str> {
        let mut out = Vec::new();
        let over = |cap: Option<f64>, value: f64| cap.is_some_and(|c| value > c);
        if over(self.max_flops, cost.flops) {
            out.push("flops");
        }
        if over(self.max_macs, cost.macs) {
            out.push("macs");
        }
        if over(self.max_params, cost.params) {
            out.push("params");
        }
        if over(self.max_score, cost.score) {
            out.push("score");
        }
        if self.combined_vs.is_some_and(|model| combined(model, cost) > 1.0) {
            out.push("combined");
        }
        if self.max_latency_ms.is_some_and(|cap| cost.latency_ms.is_none_or(|l| l > cap)) {
            out.push("latency");
        }
        out
    }
}

/// ½ (MACs / MACs_ref + params / params_ref).
pub fn combined(model: Comparison, cost: &Cost) -> f64 {
    0.5 * (cost.macs / model.macs() + cost.params / model.params())
}

/// The analytic cost of genomes: MicroNet counts plus, optionally, predicted latency.
#[derive(Debug, Clone)]
pub struct CostModel {
    /// Counts per (position, block, channel).
    pub table: CostTable,
    /// Latency per (position, block, channel), when measured.
    pub latency: Option<LatencyTable>,
}

impl CostModel {
    /// The cost of `arch`.
    ///
    /// # Errors
    /// [`SearchError::Arch`] for a genome outside the table.
    pub fn cost(&self, arch: &Architecture) -> Result<Cost, SearchError> {
        let counts = self.table.cost(arch)?;
        let latency = self.latency.as_ref().map(|t| t.predict(arch)).transpose()?;
        Ok(Cost::of(&counts, latency))
    }

    /// The smallest and largest value of each metric over `domain` (exact: every metric
    /// is a sum over positions, except the score and combined terms, which are
    /// bounded by the sums of their parts).
    pub fn ranges(&self, domain: &GenomeDomain) -> Vec<(&'static str, f64, f64)> {
        type Metric = Box<dyn Fn(&Counts) -> f64>;
        let mut metrics: Vec<(&'static str, Metric)> = vec![
            ("flops", Box::new(|c: &Counts| c.flops() as f64)),
            ("macs", Box::new(|c: &Counts| c.macs as f64)),
            ("params", Box::new(|c: &Counts| c.params())),
            ("score", Box::new(|c: &Counts| c.scores(&Baseline::default()).fp32)),
        ];
        let mut out: Vec<(&'static str, f64, f64)> = metrics
            .drain(..)
            .map(|(name, f)| {
                let (lo, hi) = self.range_of(domain, |position, block, channel| {
                    self.table.block(position, block, channel.index()).map(&f)
                });
                (name, f(self.table.fixed()) + lo, f(self.table.fixed()) + hi)
            })
            .collect();
        if let Some(table) = &self.latency {
            let (lo, hi) = self.range_of(domain, |p, b, c| table.block_ms(p, b, c));
            out.push(("latency_ms", table.fixed.mean_ms + lo, table.fixed.mean_ms + hi));
        }
        out
    }

    fn range_of(
        &self,
        domain: &GenomeDomain,
        value: impl Fn(usize, shufflenas_model::BlockChoice, shufflenas_model::ChannelChoice) -> Option<f64>,
    ) -> (f64, f64) {
        let (mut lo, mut hi) = (0.0, 0.0);
        for (position, (blocks, channels)) in domain.blocks.iter().zip(&domain.channels).enumerate() {
            let values = blocks
                .iter()
                .flat_map(|&b| channels.iter().map(move |&c| (b, c)))
                .filter_map(|(b, c)| value(position, b, c));
            let (a, b) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            lo += a;
            hi += b;
        }
        (lo, hi)
    }

    /// Checks that some genome of `domain` satisfies `constraints`: each cap against
    /// the exact minimum of its metric, then all caps together against the genome that
    /// minimises the sum of the capped metrics relative to their caps, and against
    /// `tries` random genomes.
    ///
    /// # Errors
    /// [`SearchError::Impossible`] naming the cap and giving the achievable ranges.
    pub fn check_feasible(
        &self,
        domain: &GenomeDomain,
        constraints: &Constraints,
        tries: usize,
    ) -> Result<(), SearchError> {
        let ranges = self.ranges(domain);
        let range_text = ranges
            .iter()
            .map(|(name, lo, hi)| format!("{name} {} – {}", metric_text(name, *lo), metric_text(name, *hi)))
            .collect::<Vec<_>>()
            .join(", ");
        if constraints.max_latency_ms.is_some() && self.latency.is_none() {
            return Err(SearchError::Impossible("a latency cap needs a latency table".into()));
        }
        for (name, cap) in constraints.caps() {
            let Some(cap) = cap else { continue };
            if ranges.iter().any(|(n, lo, _)| *n == name && *lo > cap) {
                return Err(SearchError::Impossible(format!(
                    "no genome has {name} ≤ {}; the search space allows {range_text}",
                    metric_text(name, cap)
                )));
            }
        }
        // Greedy joint candidate: per position, the choice with the smallest sum of
        // capped metrics relative to their caps.
        if self.cheapest_feasible(domain, constraints).is_some() {
            return Ok(());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..tries {
            if self.cost(&domain.sample(&mut rng)).is_ok_and(|c| constraints.allows(&c)) {
                return Ok(());
            }
        }
        Err(SearchError::Impossible(format!(
            "no genome found that meets all caps together ({tries} random genomes and the cheapest one tried); \
             the search space allows {range_text}"
        )))
    }

    /// The genome that minimises the sum of the capped metrics relative to their caps
    /// (per position), when it meets every cap: a feasible start for sampling under
    /// caps too tight for uniform draws.
    pub fn cheapest_feasible(&self, domain: &GenomeDomain, constraints: &Constraints) -> Option<Architecture> {
        let greedy = self.greedy(domain, constraints);
        self.cost(&greedy).is_ok_and(|c| constraints.allows(&c)).then_some(greedy)
    }

    fn greedy(&self, domain: &GenomeDomain, constraints: &Constraints) -> Architecture {
        let norm = |cap: Option<f64>| cap.map_or(0.0, |c| 1.0 / c.max(1e-9));
        let (wf, wm, wp) = (norm(constraints.max_flops), norm(constraints.max_macs), norm(constraints.max_params));
        let (cm, cp) = constraints.combined_vs.map_or((0.0, 0.0), |m| (1.0 / m.macs(), 1.0 / m.params()));
        let ws = norm(constraints.max_score);
        let wl = norm(constraints.max_latency_ms);
        let mut arch = Architecture { blocks: Vec::new(), channels: Vec::new() };
        for (position, (blocks, channels)) in domain.blocks.iter().zip(&domain.channels).enumerate() {
            let mut best = (f64::INFINITY, blocks[0], channels[0]);
            for &b in blocks {
                for &c in channels {
                    let Some(counts) = self.table.block(position, b, c.index()) else { continue };
                    let latency = self.latency.as_ref().and_then(|t| t.block_ms(position, b, c)).unwrap_or(0.0);
                    let key = wf * counts.flops() as f64
                        + (wm + cm) * counts.macs as f64
                        + (wp + cp) * counts.params()
                        + ws * counts.scores(&Baseline::default()).fp32
                        + wl * latency
                        + 1e-12 * counts.flops() as f64;
                    if key < best.0 {
                        best = (key, b, c);
                    }
                }
            }
            arch.blocks.push(best.1);
            arch.channels.push(best.2);
        }
        arch
    }
}

/// A metric's value as text: counts (FLOPs, MACs, params) with [`human`], scores and
/// milliseconds plain.
fn metric_text(name: &str, value: f64) -> String {
    match name {
        "flops" | "macs" | "params" => human(value),
        _ => format!("{value:.3}"),
    }
}

/// `1.23M` / `0.068M`-style text for counts, plain below 1,000.
pub fn human(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{:.2}M", value / 1e6),
        v if v >= 1e3 => format!("{:.3}M", value / 1e6),
        _ => format!("{value:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use micronet_score::Convention;
    use shufflenas_model::SearchSpace;

    use super::*;

    fn model() -> (CostModel, GenomeDomain) {
        let space = SearchSpace::oneshot_plus();
        (
            CostModel { table: CostTable::new(&space, Convention::default()).unwrap(), latency: None },
            GenomeDomain::of(&space),
        )
    }

    #[test]
    fn oneshot_s_plus_costs_match_the_seed() {
        let (m, _) = model();
        let cost = m.cost(&Architecture::oneshot_s_plus()).unwrap();
        assert_eq!(cost.flops, 587_943_232.0);
        assert!((cost.score - 1.03).abs() < 0.005);
        let c = Constraints { max_flops: Some(600e6), max_params: Some(3.7e6), ..Constraints::default() };
        assert!(c.allows(&cost));
        let c = Constraints { max_flops: Some(500e6), ..Constraints::default() };
        assert_eq!(c.violations(&cost), vec!["flops"]);
        assert!(!Constraints::relative_to(Comparison::SinglePathOneShot, 0.5).allows(&cost));
    }

    #[test]
    fn impossible_caps_are_reported_with_the_range() {
        let (m, domain) = model();
        let err = m
            .check_feasible(&domain, &Constraints { max_flops: Some(100e6), ..Constraints::default() }, 100)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("flops ≤ 100.00M") && text.contains("flops 301.86M – 1706.57M"), "{text}");
        assert!(m.check_feasible(&domain, &Constraints { max_flops: Some(400e6), ..Default::default() }, 100).is_ok());
        // Two caps together: the greedy joint candidate meets both.
        let joint = Constraints { max_flops: Some(330e6), max_params: Some(3.3e6), ..Default::default() };
        assert!(m.check_feasible(&domain, &joint, 0).is_ok());
        assert!(joint.allows(&m.cost(&m.greedy(&domain, &joint)).unwrap()));
    }

    #[test]
    fn ranges_match_the_cost_table() {
        let (m, domain) = model();
        let flops = m.ranges(&domain).into_iter().find(|(n, _, _)| *n == "flops").unwrap();
        let (lo, hi) = m.table.range(|c| c.flops() as f64);
        assert_eq!((flops.1, flops.2), (lo, hi));
    }
}
