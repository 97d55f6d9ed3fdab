//! The backend that `tests/backend_parity.rs` checks against flex, chosen by cargo
//! feature: `cuda` > `wgpu` > flex itself (the default, where the test is flex against
//! flex). `cargo test --release -p backend-parity --features wgpu`.

use burn::backend::Autodiff;

#[cfg(feature = "cuda")]
mod chosen {
    pub type Inference = burn::backend::Cuda;
    pub const NAME: &str = "cuda";
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod chosen {
    pub type Inference = burn::backend::Wgpu;
    pub const NAME: &str = "wgpu";
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
mod chosen {
    pub type Inference = burn::backend::Flex;
    pub const NAME: &str = "flex";
}

/// The inference backend under test.
pub use chosen::Inference;
/// Its name, for assertion messages.
pub use chosen::NAME;

/// The training backend under test: autodiff over [`Inference`].
pub type Training = Autodiff<Inference>;

/// The backend's default device.
pub fn device() -> <Inference as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}
