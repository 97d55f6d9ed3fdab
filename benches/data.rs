//! The data pipeline alone, in images per second: augmentation and batching of the
//! embedded Fashion-MNIST subset (small-image recipe) and of synthetic 256×256 RGB
//! images through the seed's ImageNet recipe, on all cores (rayon).
//!
//!     cargo bench --bench data

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shufflenas::train::data::{BatchLoader, InMemoryDataset, Normalization, Transform, embedded_fashion_mnist};

fn loaders(c: &mut Criterion) {
    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    let small = Arc::new(embedded_fashion_mnist(true).expect("embedded data"));
    let transform = Transform::SmallTrain { size: 32, padding: 4, norm: Normalization::fashion_mnist() };
    let loader = BatchLoader::new(small, transform, 128, 0).expect("loader");
    group.throughput(Throughput::Elements(loader.len() as u64));
    group.bench_function("fashion_mnist_small_recipe_epoch", |b| {
        b.iter(|| loader.epoch(0).map(|batch| batch.expect("batch").labels.len()).sum::<usize>())
    });

    let n = 256;
    let pixels: Vec<u8> = (0..n * 256 * 256 * 3).map(|i| (i * 31 % 251) as u8).collect();
    let labels: Vec<u16> = (0..n).map(|i| (i % 10) as u16).collect();
    let rgb = Arc::new(InMemoryDataset::new("synthetic", (256, 256, 3), pixels, labels, 10).expect("dataset"));
    let transform = Transform::ImageNetTrain { size: 224, jitter: 0.4, lighting: 0.1, norm: Normalization::imagenet() };
    let loader = BatchLoader::new(rgb, transform, 64, 0).expect("loader");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("imagenet_train_recipe_224_epoch", |b| {
        b.iter(|| loader.epoch(0).map(|batch| batch.expect("batch").labels.len()).sum::<usize>())
    });
    group.finish();
}

criterion_group!(benches, loaders);
criterion_main!(benches);
