//! The whole NAS pipeline in one command, on the embedded Fashion-MNIST subset:
//! 1. train a supernet (block selection, then the channel warm-up);
//! 2. recalibrate BN per candidate and run the genetic search under a FLOPs cap
//!    (and random search at the same budget);
//! 3. train the best genome from scratch;
//! 4. profile it with the MicroNet rules;
//! 5. write runs/<timestamp>/report.md, the plots, checkpoints and metrics logs.
//!
//! Usage:
//!
//!     cargo run --release --example quickstart
//!     cargo run --release --example quickstart -- --supernet-epochs 20 --subnet-epochs 30 \
//!       --population 50 --iterations 20 --format idx --data /usr/share/datasets/fashion-mnist --space seed
//!
//! Defaults are sized for 2 CPU cores: the tiny space (16–128 channels) and a few
//! epochs. Every flag of the `search` example is accepted.

use std::process::ExitCode;

use shufflenas::pipeline::{parse_with_defaults, run_pipeline};

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    let args = parse_with_defaults(&[
        ("space", "tiny"),
        ("holdout", "500"),
        ("batch", "32"),
        ("population", "12"),
        ("retain", "4"),
        ("iterations", "4"),
        ("recal_images", "320"),
        ("flops_max", "3.5"),
    ]);
    shufflenas::cli::finish(run_pipeline(args))
}
