//! The tensor backend the examples run on, chosen by cargo feature:
//! `cuda` > `wgpu` > `flex` (the default CPU backend).
//!
//! Library code never uses this module: it is generic over `B: Backend`.

use burn::backend::Autodiff;

#[cfg(feature = "cuda")]
mod chosen {
    pub type Inference = burn::backend::Cuda;
    pub type Device = burn::backend::cuda::CudaDevice;
    pub const NAME: &str = "cuda";
    pub fn device() -> Result<Device, String> {
        // Burn panics on the first use of a CUDA device when there is none: check first.
        let present = std::path::Path::new("/dev/nvidiactl").exists() || std::path::Path::new("/dev/nvidia0").exists();
        if !present {
            return Err("CUDA backend selected but no CUDA device/driver found".into());
        }
        Ok(Device::default())
    }
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod chosen {
    pub type Inference = burn::backend::Wgpu;
    pub type Device = burn::backend::wgpu::WgpuDevice;
    pub const NAME: &str = "wgpu";
    pub fn device() -> Result<Device, String> {
        Ok(Device::default())
    }
}

#[cfg(all(feature = "flex", not(any(feature = "wgpu", feature = "cuda"))))]
mod chosen {
    pub type Inference = burn::backend::Flex;
    pub type Device = burn::backend::flex::FlexDevice;
    pub const NAME: &str = "flex";
    pub fn device() -> Result<Device, String> {
        Ok(burn::backend::flex::FlexDevice)
    }
}

#[cfg(not(any(feature = "flex", feature = "wgpu", feature = "cuda")))]
compile_error!("enable one backend feature of shufflenas: flex (default), wgpu or cuda");

pub use chosen::{Device, Inference, NAME, device};

/// The training backend: autodiff over the inference backend.
pub type Training = Autodiff<Inference>;

/// Threads the CPU backend uses (rayon's pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}
