//! The Fashion-MNIST NAS recipe: the whole pipeline (supernet, genetic search with a
//! random baseline, retraining from scratch, MicroNet profile) on the full dataset
//! (Debian package `dataset-fashion-mnist`), with the configuration recorded in
//! docs/results.md. 5,000 training images are held out as the search's validation
//! split; the 10,000 test images are only used to measure the final model.
//!
//! Usage:
//!
//!     cargo run --release --example fashion_mnist -- --data /usr/share/datasets/fashion-mnist
//!
//! Every flag of the pipeline can be changed (`--help`); the defaults are the recorded
//! configuration.

use std::process::ExitCode;

use shufflenas::pipeline::{parse_with_defaults, run_pipeline};

fn main() -> ExitCode {
    shufflenas::keep_freed_memory();
    let args = parse_with_defaults(&[
        ("format", "idx"),
        ("data", "/usr/share/datasets/fashion-mnist"),
        ("space", "tiny"),
        ("holdout", "5000"),
        ("batch", "64"),
        ("supernet_epochs", "3"),
        ("subnet_epochs", "4"),
        ("population", "20"),
        ("retain", "5"),
        ("iterations", "6"),
        ("recal_images", "2000"),
        ("flops_max", "3.5"),
    ]);
    shufflenas::cli::finish(run_pipeline(args))
}
