//! What a user's own project does with the crates: build a supernet, sample a genome,
//! extract the subnet with the supernet's weights, run it, and profile it.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;
use micronet_score::{Baseline, Convention};
use shufflenas_model::nn::SupernetConfig;
use shufflenas_model::{Architecture, SearchSpace, cost};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let space = SearchSpace::small_input(1, 10);
    let supernet = SupernetConfig::new(space.clone()).init::<Flex>(&device)?;
    let arch = Architecture::random_seeded(&space, 42);
    let subnet = supernet.extract(&arch)?;
    let x = Tensor::<Flex, 4>::random([2, 1, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let logits = subnet.forward(x.clone());
    let same = supernet.forward(x, &arch)?;
    let gap = (logits.clone() - same).abs().max().into_scalar();
    let counts = cost::architecture_ops(&space, &arch)?.counts(&Convention::default());
    let scores = counts.scores(&Baseline::default());
    println!("genome {arch}");
    println!("logits {:?}, max |subnet - supernet path| = {gap:.2e}", logits.dims());
    println!(
        "{:.2} MFLOPs, {:.4}M params, {} trainable; MicroNet fp32 {:.4}, fp16 {:.4}, int8 {:.4}",
        counts.mflops(),
        counts.params() / 1e6,
        subnet.trainable_params(),
        scores.fp32,
        scores.fp16,
        scores.int8
    );
    if gap > 1e-4 || subnet.trainable_params() as u64 != counts.trainable_params {
        return Err("the extracted subnet disagrees with the supernet or the counter".into());
    }
    Ok(())
}
