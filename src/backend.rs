//! The tensor backend the examples run on, chosen by cargo feature:
//! `cuda` > `wgpu` > `flex` (the default CPU backend).
//!
//! Library code never uses this module: it is generic over `B: Backend`.

use burn::backend::Autodiff;

#[cfg(feature = "cuda")]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Cuda;
    /// The same backend with another float element type (half precision).
    pub type WithFloat<F> = burn::backend::Cuda<F>;
    /// Its device type.
    pub type Device = burn::backend::cuda::CudaDevice;
    /// Backend name for logs and reports.
    pub const NAME: &str = "cuda";
    /// The default device.
    ///
    /// # Errors
    /// A message when the backend has no usable device.
    pub fn device() -> Result<Device, String> {
        // Burn panics on the first use of a CUDA device when there is none: check first.
        let present = std::path::Path::new("/dev/nvidiactl").exists() || std::path::Path::new("/dev/nvidia0").exists();
        if !present {
            return Err("CUDA backend selected but no CUDA device/driver found".into());
        }
        Ok(Device::default())
    }

    /// GPUs `0..n`.
    ///
    /// # Errors
    /// A message naming the first GPU that is not there.
    pub fn devices(n: usize) -> Result<Vec<Device>, String> {
        device()?;
        (0..n)
            .map(|index| match std::path::Path::new(&format!("/dev/nvidia{index}")).exists() {
                true => Ok(Device { index }),
                false => Err(format!("--devices {n}: CUDA device {index} (/dev/nvidia{index}) not found")),
            })
            .collect()
    }
}

#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Wgpu;
    /// The same backend with another float element type (half precision).
    pub type WithFloat<F> = burn::backend::Wgpu<F>;
    /// Its device type.
    pub type Device = burn::backend::wgpu::WgpuDevice;
    /// Backend name for logs and reports.
    pub const NAME: &str = "wgpu";
    /// The default device.
    ///
    /// # Errors
    /// A message when the backend has no usable device.
    pub fn device() -> Result<Device, String> {
        Ok(Device::default())
    }

    /// The default adapter for one device, discrete GPUs `0..n` for more.
    ///
    /// # Errors
    /// Never (a missing adapter shows on first use).
    pub fn devices(n: usize) -> Result<Vec<Device>, String> {
        Ok(match n {
            1 => vec![Device::default()],
            _ => (0..n).map(Device::DiscreteGpu).collect(),
        })
    }
}

#[cfg(all(feature = "flex", not(any(feature = "wgpu", feature = "cuda"))))]
mod chosen {
    /// The inference backend.
    pub type Inference = burn::backend::Flex;
    /// Its device type.
    pub type Device = burn::backend::flex::FlexDevice;
    /// Backend name for logs and reports.
    pub const NAME: &str = "flex";
    /// The default device.
    ///
    /// # Errors
    /// A message when the backend has no usable device.
    pub fn device() -> Result<Device, String> {
        Ok(burn::backend::flex::FlexDevice)
    }

    /// The one CPU device.
    ///
    /// # Errors
    /// For more than one device: flex has only one.
    pub fn devices(n: usize) -> Result<Vec<Device>, String> {
        match n {
            1 => Ok(vec![burn::backend::flex::FlexDevice]),
            _ => Err(format!("--devices {n}: the flex (CPU) backend has one device; use --features cuda or wgpu")),
        }
    }
}

#[cfg(not(any(feature = "flex", feature = "wgpu", feature = "cuda")))]
compile_error!("enable one backend feature of shufflenas: flex (default), wgpu or cuda");

pub use chosen::{Device, Inference, NAME, device, devices};

/// Devices of `n` DDP peers in this process: GPUs `0..n`, or on flex the one CPU device
/// `n` times (peers then share the CPU, which is useful across nodes).
///
/// # Errors
/// As [`devices`].
#[cfg(feature = "ddp")]
pub fn peer_devices(n: usize) -> Result<Vec<Device>, String> {
    if cfg!(any(feature = "wgpu", feature = "cuda")) { devices(n) } else { Ok(vec![device()?; n]) }
}

/// The training backend: autodiff over the inference backend.
pub type Training = Autodiff<Inference>;

/// Half-precision training backend (float16 tensors), on the GPU backends only.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub type TrainingF16 = Autodiff<chosen::WithFloat<burn::tensor::f16>>;

/// Half-precision training backend (bfloat16 tensors), on the GPU backends only.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub type TrainingBf16 = Autodiff<chosen::WithFloat<burn::tensor::bf16>>;

/// Threads the CPU backend uses (rayon's pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}
