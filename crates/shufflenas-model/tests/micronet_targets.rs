//! The seed's MicroNet numbers for OneShot-S+ and the search-space facts of
//! ../shared/MICRONET.md, asserted exactly.

use micronet_score::{Baseline, Convention, Counts, RowRounding};
use shufflenas_model::{Architecture, CostTable, SearchSpace, cost};

fn oneshot_s_plus(convention: Convention) -> Counts {
    let space = SearchSpace::oneshot_plus();
    cost::architecture_ops(&space, &Architecture::oneshot_s_plus()).unwrap().counts(&convention)
}

#[test]
fn oneshot_s_plus_totals_are_exact_with_clip_one() {
    let c = oneshot_s_plus(Convention::default());
    assert_eq!(c.param_bits.total(), 3_652_225 * 16);
    assert_eq!(c.params(), 3_652_225.0);
    assert_eq!(c.mults.total(), 299_620_672);
    assert_eq!(c.adds.total(), 288_322_560);
    assert_eq!(c.quant_params(), 3_520_225.0);
    assert_eq!(c.mults.quantizable, 292_819_840);
    assert_eq!(c.adds.quantizable, 286_217_920);
    assert_eq!(c.flops(), 587_943_232);
    assert_eq!(c.macs, 291_475_944);
    assert_eq!(c.trainable_params, 3_541_829);
}

#[test]
fn oneshot_s_plus_totals_are_exact_with_clip_two() {
    let c = oneshot_s_plus(Convention::clip2());
    assert_eq!(c.mults.total(), 301_383_552);
    assert_eq!(c.flops(), 589_706_112);
    assert_eq!(c.params(), 3_652_225.0);
}

#[test]
fn oneshot_s_plus_scores_match_the_seed_at_its_rounding() {
    for convention in [Convention::default(), Convention::clip2()] {
        let s = oneshot_s_plus(convention).scores(&Baseline::default());
        assert_eq!(format!("{:.2}", s.fp32), "1.03");
        assert_eq!(format!("{:.2}", s.fp16), "0.64");
        assert_eq!(format!("{:.2}", s.int8), "0.28");
    }
}

#[test]
fn the_strict_convention_adds_the_se_gate_multiplications() {
    let strict = oneshot_s_plus(Convention::strict());
    let plain = oneshot_s_plus(Convention::default());
    // SE sits on the main-branch output of the 12 blocks of stages 2 and 3:
    // 8 blocks at 14×14×160 and 4 at 7×7×320.
    assert_eq!(strict.mults.other - plain.mults.other, 8 * 14 * 14 * 160 + 4 * 7 * 7 * 320);
}

/// The seed's per-block profile table: (name, params M, mults M, adds M, MFLOPS).
const SEED_ROWS: [(&str, f64, f64, f64, f64); 26] = [
    ("First conv", 0.000, 5.419, 5.218, 10.637),
    ("HSwish", 0.000, 0.603, 0.201, 0.804),
    ("SNB-3x3", 0.005, 23.800, 21.739, 45.539),
    ("SNB-3x3", 0.004, 12.136, 11.255, 23.391),
    ("SNB-3x3", 0.002, 10.511, 9.697, 20.208),
    ("SNB-5x5", 0.005, 16.389, 15.451, 31.840),
    ("SNB-3x3", 0.021, 32.111, 30.707, 62.818),
    ("SNB-3x3", 0.023, 17.573, 16.859, 34.432),
    ("SNB-5x5", 0.014, 9.746, 9.232, 18.978),
    ("SNB-3x3", 0.015, 11.103, 10.538, 21.641),
    ("SXB-3x3", 0.082, 14.060, 13.692, 27.752),
    ("SNB-7x7", 0.080, 11.834, 11.582, 23.416),
    ("SNB-3x3", 0.051, 6.416, 6.215, 12.631),
    ("SNB-5x5", 0.063, 8.898, 8.673, 17.571),
    ("SNB-7x7", 0.080, 11.834, 11.582, 23.416),
    ("SNB-7x7", 0.091, 14.168, 13.891, 28.059),
    ("SNB-5x5", 0.098, 15.448, 15.146, 30.594),
    ("SNB-7x7", 0.103, 16.501, 16.199, 32.700),
    ("SNB-3x3", 0.323, 25.640, 25.380, 51.020),
    ("SNB-3x3", 0.244, 8.311, 8.196, 16.507),
    ("SNB-7x7", 0.298, 10.983, 10.856, 21.839),
    ("SNB-3x3", 0.368, 14.445, 14.293, 28.738),
    ("GAP", 0.000, 0.001, 0.031, 0.032),
    ("Last conv", 0.656, 0.655, 0.655, 1.310),
    ("HSwish", 0.000, 0.003, 0.001, 0.004),
    ("Classifier", 1.025, 1.024, 1.024, 2.048),
];

// The seed's rows are sums of its per-op values each already rounded to 0.001M
// (upstream's `utils/summary_profile.py` summed its printed per-op table), so its rows
// do not sum to its own exact totals (mults 299.612 vs 299.621). `RowRounding::PerOp`
// forms the rows the same way; the totals above stay exact. See docs/seed-fidelity.md.
const ROW_TOLERANCE: f64 = 0.002;
#[test]
fn every_row_of_the_seed_profile_table_is_reproduced() {
    let space = SearchSpace::oneshot_plus();
    let net = cost::architecture_ops(&space, &Architecture::oneshot_s_plus()).unwrap();
    assert_eq!(net.layers.len(), SEED_ROWS.len());
    for (i, (layer, (name, params, mults, adds, mflops))) in net.layers.iter().zip(SEED_ROWS).enumerate() {
        assert_eq!(layer.name, name, "row {i}");
        let v = layer.row_values(&Convention::default(), RowRounding::PerOp);
        let ours = [v.params, v.mults, v.adds, v.mflops()];
        for (column, (ours, seed)) in ours.into_iter().zip([params, mults, adds, mflops]).enumerate() {
            assert!(
                (ours - seed).abs() <= ROW_TOLERANCE,
                "row {i} ({name}) column {column}: ours {ours:.4}, seed {seed}"
            );
            // Stronger than the tolerance: every printed digit agrees.
            assert_eq!(format!("{ours:.3}"), format!("{seed:.3}"), "row {i} ({name}) column {column}");
        }
    }
}

/// Exact row sums differ from the seed's rows by more than its rounding, which is why the
/// profile table rounds per op by default.
#[test]
fn exact_row_sums_are_the_totals() {
    let space = SearchSpace::oneshot_plus();
    let net = cost::architecture_ops(&space, &Architecture::oneshot_s_plus()).unwrap();
    let convention = Convention::default();
    let mults: f64 = net.layers.iter().map(|l| l.row_values(&convention, RowRounding::Exact).mults).sum();
    assert!((mults - 299.620_672).abs() < 1e-9, "{mults}");
    let rounded: f64 = net.layers.iter().map(|l| l.row_values(&convention, RowRounding::PerOp).mults).sum();
    assert!((rounded - 299.612).abs() < 0.0015, "per-op rounded rows sum to {rounded}, the seed's to 299.612");
}

#[test]
fn the_profile_table_prints_the_seed_totals() {
    let space = SearchSpace::oneshot_plus();
    let net = cost::architecture_ops(&space, &Architecture::oneshot_s_plus()).unwrap();
    let table = net.profile(Convention::clip2()).layer_table();
    assert!(table.contains("| Total_quant | True | 3.520 | 292.8 | 286.2 | 579.0 |"), "{table}");
    assert!(table.contains("| Total | 3.652 | 301.4 | 288.3 | 589.7 |"), "{table}");
    assert!(table.contains("| SXB-3x3 | Mixed | 28 | 3 | 160 | 320 |"), "{table}");
}

#[test]
fn the_oneshot_row_is_656m_flops_and_3_5m_params() {
    let space = SearchSpace::oneshot_original();
    let c = cost::architecture_ops(&space, &Architecture::oneshot()).unwrap().counts(&Convention::default());
    assert_eq!(format!("{:.0}", c.mflops()), "656");
    assert_eq!(format!("{:.1}", c.params() / 1e6), "3.5");
    // SPOS reports 328M MACs for its searched model; this is its genome's MAC count.
    assert_eq!(format!("{:.0}", c.macs as f64 / 1e6), "328");
}

#[test]
fn supernet_trainable_parameters_match_the_upstream_code() {
    let with_se = cost::supernet_ops(&SearchSpace::oneshot_plus()).unwrap();
    let c = with_se.counts(&Convention::default());
    assert_eq!(c.trainable_params, 17_180_248);
    let bn: u64 = with_se
        .layers
        .iter()
        .flat_map(|layer| &layer.ops)
        .filter_map(|op| match op.kind {
            micronet_score::OpKind::BatchNorm { channels } => Some(2 * channels),
            _ => None,
        })
        .sum();
    assert_eq!(bn, 159_584);
    let plain = cost::supernet_ops(&SearchSpace::oneshot_original()).unwrap();
    assert_eq!(plain.counts(&Convention::default()).trainable_params, 15_939_672);
}

#[test]
fn subnet_flops_and_params_span_the_documented_range() {
    let table = CostTable::new(&SearchSpace::oneshot_plus(), Convention::default()).unwrap();
    let (min, max) = table.range(|c| c.flops() as f64);
    assert_eq!(format!("{:.1} {:.1}", min / 1e6, max / 1e6), "301.9 1706.6");
    let smallest = table.argmin(|c| c.flops() as f64);
    let largest = table.argmax(|c| c.flops() as f64);
    assert_eq!(table.cost(&smallest).unwrap().flops() as f64, min);
    assert_eq!(format!("{:.3}", table.cost(&smallest).unwrap().params() / 1e6), "3.108");
    assert_eq!(format!("{:.3}", table.cost(&largest).unwrap().params() / 1e6), "7.062");
    assert_eq!(largest, Architecture::supernet_max());
}

#[test]
fn the_cost_table_agrees_with_the_op_list_for_random_genomes() {
    let full = SearchSpace { searchable_min_id: 0, ..SearchSpace::oneshot_plus() };
    for space in [full.clone(), SearchSpace::oneshot_original(), SearchSpace::small_input(1, 10)] {
        for convention in [Convention::default(), Convention::clip2(), Convention::strict()] {
            let table = CostTable::new(&space, convention).unwrap();
            for seed in 0..20 {
                let arch = Architecture::random_seeded(&full, seed);
                let direct = cost::architecture_ops(&space, &arch).unwrap().counts(&convention);
                assert_eq!(table.cost(&arch).unwrap(), direct, "seed {seed}");
            }
        }
    }
}

#[test]
fn the_cost_table_rejects_bad_genomes_with_the_gene_named() {
    let table = CostTable::new(&SearchSpace::oneshot_plus(), Convention::default()).unwrap();
    let mut arch = Architecture::oneshot_s_plus();
    arch.channels[7] = shufflenas_model::ChannelChoice(12);
    assert_eq!(table.cost(&arch).unwrap_err().to_string(), "channel gene 7 is 12, allowed range is 0..=9");
    arch.channels.pop();
    assert!(table.cost(&arch).is_err());
}
