// shufflenas patch: the depthwise data-gradient kernel.
pub(crate) mod depthwise;
pub mod fallback;
pub mod implicit_gemm;

#[cfg(feature = "autotune")]
pub mod tune;

#[cfg(feature = "autotune")]
pub(crate) use tune::*;
