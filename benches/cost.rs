//! Analytic cost of a genome: the search filters every candidate with it, so it must
//! reach ≥ 1M evaluations per second on one core (`cost_table_*`), constraints
//! included (`constraint_filter_*`).
//!
//!     cargo bench --bench cost

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::SeedableRng;
use shufflenas::micronet_score::Convention;
use shufflenas::model::{Architecture, CostTable, SearchSpace, cost};
use shufflenas::search::{Constraints, CostModel};

fn cost_table(c: &mut Criterion) {
    let space = SearchSpace::oneshot_plus();
    let table = CostTable::new(&space, Convention::default()).expect("valid space");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let genomes: Vec<Architecture> = (0..1024).map(|_| Architecture::random(&space, &mut rng)).collect();
    let mut group = c.benchmark_group("cost");
    group.throughput(Throughput::Elements(genomes.len() as u64));
    group.bench_function("cost_table_1024_genomes", |b| {
        b.iter(|| {
            let mut flops = 0u64;
            for arch in &genomes {
                flops = flops.wrapping_add(table.cost(arch).expect("valid genome").flops());
            }
            flops
        })
    });
    // What the search runs on every candidate: the cost (with the score) and the caps.
    let model = CostModel { table: table.clone(), latency: None };
    let caps =
        Constraints { max_flops: Some(600e6), max_params: Some(4e6), max_score: Some(1.1), ..Constraints::default() };
    group.bench_function("constraint_filter_1024_genomes", |b| {
        b.iter(|| genomes.iter().filter(|arch| model.cost(arch).is_ok_and(|cost| caps.allows(&cost))).count())
    });
    group.finish();
    c.bench_function("cost/op_list_one_genome", |b| {
        b.iter_batched(
            || genomes[0].clone(),
            |arch| cost::architecture_ops(&space, &arch).expect("valid").counts(&Convention::default()),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("cost/table_build", |b| b.iter(|| CostTable::new(&space, Convention::default())));
}

criterion_group!(benches, cost_table);
criterion_main!(benches);
