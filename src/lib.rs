//! # shufflenas
//!
//! Weight-sharing one-shot neural architecture search (Single Path One Shot with
//! ShuffleNetV2 choice blocks, squeeze-excitation, hard-swish and a MobileNetV3 head)
//! in pure Rust on [Burn](https://burn.dev).
//!
//! This package re-exports the workspace crates and holds what the examples share:
//! - [`micronet_score`]: MicroNet Challenge counting;
//! - [`model`]: search space, genomes, plans, op lists (and the Burn modules);
//! - [`train`]: supernet and subnet training;
//! - [`search`]: architecture search.
//!
//! The tensor backend is chosen with a cargo feature: `flex` (CPU, default), `wgpu`
//! or `cuda`.

#![warn(missing_docs)]

pub use micronet_score;
pub use shufflenas_model as model;
pub use shufflenas_search as search;
pub use shufflenas_train as train;

/// mimalloc as the global allocator (feature `mimalloc`, on by default). CPU training
/// and inference allocate and free many large tensors; glibc's allocator returns them
/// to the OS and page-faults them back in, which costs more than the arithmetic
/// (e.g. a `cat` of two 25 MB tensors: 38 ms with glibc, 3.8 ms with mimalloc).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e`, the same in
/// mimalloc 2 and 3; libmimalloc-sys does not export it). Checked by a test.
#[cfg(feature = "mimalloc")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the memory the program frees for reuse instead of returning it to the OS, as
/// `MIMALLOC_PURGE_DELAY=-1` does. A training step allocates and frees the same large
/// activations every time; pages given back come back through page faults and kernel
/// zeroing (15 training steps of OneShot-S+ at batch 32, 32×32: 6,753 page faults, or
/// 326 with this). Peak memory is unchanged; the resident size stays at the peak.
///
/// The examples call it first. A `MIMALLOC_PURGE_DELAY` set in the environment wins;
/// without the `mimalloc` feature this does nothing.
pub fn keep_freed_memory() {
    #[cfg(feature = "mimalloc")]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; any value is valid for it.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    use super::*;

    /// mimalloc reads `MIMALLOC_PURGE_DELAY` into the option `keep_freed_memory` sets:
    /// this test runs itself again with that variable set and reads the option back.
    #[test]
    fn purge_delay_option_is_the_one_the_environment_sets() {
        const CHILD: &str = "SHUFFLENAS_TEST_PURGE_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: reads one integer option.
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, 1234);
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["tests::purge_delay_option_is_the_one_the_environment_sets", "--exact"])
            .env(CHILD, "1")
            .env("MIMALLOC_PURGE_DELAY", "1234")
            .status()
            .unwrap();
        assert!(status.success(), "the option read back is not MIMALLOC_PURGE_DELAY's");
        keep_freed_memory();
        // SAFETY: reads one integer option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, -1);
    }
}

pub mod backend;
pub mod cli;
pub mod data_args;
/// File helpers (atomic writes), shared with the training crate.
pub use shufflenas_train::io;
pub mod npy;
pub mod pipeline;
pub mod search_args;
pub mod train_args;
pub mod workload_args;
