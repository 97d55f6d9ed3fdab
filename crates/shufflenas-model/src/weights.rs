//! Pretrained weights of the original MXNet/Gluon implementation.
//!
//! The original `ShuffleNasOneShotFix` names its parameters structurally
//! (`features.3.main_branch.0.weight`, …). [`load_gluon`] maps them onto a
//! [`ShuffleNasNet`]:
//!
//! | gluon name | our module |
//! |---|---|
//! | `features.0.weight`, `features.1.*` | `stem.conv`, `stem.bn` |
//! | `features.{3+i}.proj_branch.{0,1,2,3}` | `blocks[i].projection[0].{conv,bn}`, `[1].{conv,bn}` |
//! | `features.{3+i}.main_branch.{j}` | `blocks[i].main[u]`: each unit takes a conv index and the next as its BN, then one index for its activation if it has one |
//! | `features.{3+i}.main_branch.{k}.channel_attention.{1,3}` | `blocks[i].se.squeeze`, `.excitation` (k follows the last unit) |
//! | `features.{4+n}.weight/bias` (MobileNetV3 head; `{3+n}` is the pool) | `head.last_conv` |
//! | `features.{3+n}.weight`, `features.{4+n}.*` (original head) | `head.last_conv.conv`, `.bn` |
//! | `output.0.weight/bias` | `head.classifier` |
//!
//! BN: `gamma`, `beta`, `running_mean`, `running_var`. `n` is the number of blocks (20).
//!
//! [`read_mxnet_params`] reads the original release's `.params` files (MXNet's NDArray
//! list format) and [`read_safetensors`] the golden reference.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::prelude::*;

use crate::nn::{ChoiceBlock, ConvBnAct, ShuffleNasNet, SlicedBatchNorm};

/// A host tensor: shape and float32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// Named host tensors.
pub type TensorMap = HashMap<String, RawTensor>;

/// Errors of reading or mapping pretrained weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// File system error.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not in the expected format, or is truncated.
    #[error("corrupt weights file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong, with the tensor name or index where known.
        reason: String,
    },
    /// A tensor the network needs is missing.
    #[error("tensor '{0}' is missing from the weights")]
    Missing(String),
    /// A tensor of the wrong shape.
    #[error("tensor '{name}' has shape {found:?}, the network expects {expected:?}")]
    Shape {
        /// Gluon name.
        name: String,
        /// What the network needs.
        expected: Vec<usize>,
        /// What the file holds.
        found: Vec<usize>,
    },
}

fn take<'a>(map: &'a TensorMap, name: &str, expected: &[usize]) -> Result<&'a RawTensor, WeightsError> {
    let t = map.get(name).ok_or_else(|| WeightsError::Missing(name.to_string()))?;
    if t.shape != expected {
        return Err(WeightsError::Shape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: t.shape.clone(),
        });
    }
    Ok(t)
}

fn tensor<B: Backend, const D: usize>(t: &RawTensor, device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(t.values.clone(), t.shape.clone()), device)
}

fn load_bn<B: Backend>(
    bn: &SlicedBatchNorm<B>,
    map: &TensorMap,
    prefix: &str,
) -> Result<SlicedBatchNorm<B>, WeightsError> {
    let c = [bn.channels()];
    let device = bn.gamma.device();
    let get = |suffix: &str| take(map, &format!("{prefix}.{suffix}"), &c).map(|t| tensor::<B, 1>(t, &device));
    let mut out = bn.narrowed(bn.channels());
    out.gamma = Param::from_tensor(get("gamma")?);
    out.beta = Param::from_tensor(get("beta")?);
    out.running_mean = RunningState::new(get("running_mean")?);
    out.running_var = RunningState::new(get("running_var")?);
    Ok(out)
}

fn load_unit<B: Backend>(
    unit: &ConvBnAct<B>,
    map: &TensorMap,
    conv: &str,
    bn: Option<&str>,
) -> Result<ConvBnAct<B>, WeightsError> {
    let device = unit.conv.weight.device();
    let mut out = unit.narrowed(unit.max_out(), unit.conv.weight.dims()[1]);
    let w = take(map, &format!("{conv}.weight"), &unit.conv.weight.dims())?;
    out.conv.weight = Param::from_tensor(tensor(w, &device));
    if let Some(bias) = &unit.conv.bias {
        let b = take(map, &format!("{conv}.bias"), &bias.dims())?;
        out.conv.bias = Some(Param::from_tensor(tensor(b, &device)));
    }
    if let (Some(bn_module), Some(prefix)) = (&unit.bn, bn) {
        out.bn = Some(load_bn(bn_module, map, prefix)?);
    }
    Ok(out)
}

/// Loads units laid out gluon-style under `prefix`: conv at `j`, BN at `j+1`, one more
/// index for the activation. Returns the units and the next free index.
fn load_branch<B: Backend>(
    units: &[ConvBnAct<B>],
    map: &TensorMap,
    prefix: &str,
) -> Result<(Vec<ConvBnAct<B>>, usize), WeightsError> {
    let mut index = 0;
    let mut loaded = Vec::with_capacity(units.len());
    for unit in units {
        let conv = format!("{prefix}.{index}");
        let bn = format!("{prefix}.{}", index + 1);
        loaded.push(load_unit(unit, map, &conv, Some(&bn))?);
        index += 2 + usize::from(unit.activation().is_some());
    }
    Ok((loaded, index))
}

fn load_block<B: Backend>(
    block: &ChoiceBlock<B>,
    map: &TensorMap,
    prefix: &str,
) -> Result<ChoiceBlock<B>, WeightsError> {
    let mut out = block.narrowed(block.max_mid());
    (out.projection, _) = load_branch(&block.projection, map, &format!("{prefix}.proj_branch"))?;
    let (main, next) = load_branch(&block.main, map, &format!("{prefix}.main_branch"))?;
    out.main = main;
    if let (Some(se), Some(target)) = (&block.se, out.se.as_mut()) {
        let attention = format!("{prefix}.main_branch.{next}.channel_attention");
        target.squeeze = load_unit(&se.squeeze, map, &format!("{attention}.1"), None)?;
        target.excitation = load_unit(&se.excitation, map, &format!("{attention}.3"), None)?;
    }
    Ok(out)
}

/// Loads gluon-named weights (see the module docs) into a copy of `net`, checking
/// every shape.
///
/// # Errors
/// [`WeightsError::Missing`] or [`WeightsError::Shape`] naming the tensor.
pub fn load_gluon<B: Backend>(net: &ShuffleNasNet<B>, map: &TensorMap) -> Result<ShuffleNasNet<B>, WeightsError> {
    let n = net.blocks.len();
    let stem = load_unit(&net.stem, map, "features.0", Some("features.1"))?;
    let blocks = net
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| load_block(b, map, &format!("features.{}", 3 + i)))
        .collect::<Result<_, _>>()?;
    let mut head = net.head.copied();
    head.last_conv = if net.head.after_pooling {
        load_unit(&net.head.last_conv, map, &format!("features.{}", 4 + n), None)?
    } else {
        load_unit(&net.head.last_conv, map, &format!("features.{}", 3 + n), Some(&format!("features.{}", 4 + n)))?
    };
    head.classifier = load_unit(&net.head.classifier, map, "output.0", None)?;
    Ok(ShuffleNasNet { stem, blocks, head })
}

const LIST_MAGIC: u64 = 0x112;
const NDARRAY_V1: u32 = 0xF993_FAC8;
const NDARRAY_V2: u32 = 0xF993_FAC9;
const NDARRAY_V3: u32 = 0xF993_FACA;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl Reader<'_> {
    fn corrupt(&self, reason: String) -> WeightsError {
        WeightsError::Corrupt { path: self.path.to_string(), reason: format!("{reason} (at byte {})", self.pos) }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], WeightsError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.corrupt(format!("truncated while reading {what}: need {n} bytes")));
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u32(&mut self, what: &str) -> Result<u32, WeightsError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, WeightsError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

fn read_ndarray(r: &mut Reader<'_>, index: usize) -> Result<RawTensor, WeightsError> {
    let what = format!("array {index}");
    let magic = r.u32(&what)?;
    let ndim = match magic {
        NDARRAY_V2 | NDARRAY_V3 => {
            let storage = r.u32(&what)? as i32;
            if storage != 0 {
                return Err(r.corrupt(format!("{what}: sparse storage type {storage} is not supported")));
            }
            r.u32(&what)?
        }
        NDARRAY_V1 => r.u32(&what)?,
        other => return Err(r.corrupt(format!("{what}: unknown NDArray magic {other:#x}"))),
    };
    if ndim > 8 {
        return Err(r.corrupt(format!("{what}: implausible rank {ndim}")));
    }
    let mut shape = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        shape.push(r.u64(&what)? as usize);
    }
    let _device = r.take(8, &what)?; // device type and id
    let dtype = r.u32(&what)?;
    if dtype != 0 {
        return Err(r.corrupt(format!("{what}: dtype flag {dtype} is not float32")));
    }
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(count) = count.filter(|c| *c <= r.bytes.len() / 4) else {
        return Err(r.corrupt(format!("{what}: shape {shape:?} larger than the file")));
    };
    let data = r.take(count * 4, &what)?;
    let values = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(RawTensor { shape, values })
}

/// Parses MXNet's NDArray-list bytes (`.params`), dense float32 arrays with names.
///
/// # Errors
/// [`WeightsError::Corrupt`] naming what could not be read and where.
pub fn parse_mxnet_params(bytes: &[u8], path: &str) -> Result<TensorMap, WeightsError> {
    let mut r = Reader { bytes, pos: 0, path };
    let magic = r.u64("header")?;
    if magic != LIST_MAGIC {
        return Err(r.corrupt(format!("not an MXNet NDArray list (magic {magic:#x}, expected 0x112)")));
    }
    r.u64("header")?;
    let count = r.u64("array count")? as usize;
    if count > bytes.len() / 8 {
        return Err(r.corrupt(format!("implausible array count {count}")));
    }
    let arrays = (0..count).map(|i| read_ndarray(&mut r, i)).collect::<Result<Vec<_>, _>>()?;
    let names = r.u64("name count")? as usize;
    if names != count {
        return Err(r.corrupt(format!("{count} arrays but {names} names")));
    }
    let mut map = TensorMap::with_capacity(count);
    for (i, array) in arrays.into_iter().enumerate() {
        let len = r.u64("name length")? as usize;
        let raw = r.take(len, &format!("name of array {i}"))?;
        let name = String::from_utf8_lossy(raw).into_owned();
        // `save_parameters` writes structural names; older `collect_params().save`
        // prefixes "arg:"/"aux:".
        let name = name.strip_prefix("arg:").or_else(|| name.strip_prefix("aux:")).unwrap_or(&name).to_string();
        map.insert(name, array);
    }
    Ok(map)
}

/// Reads an MXNet `.params` file.
///
/// # Errors
/// [`WeightsError::Io`] or [`WeightsError::Corrupt`].
pub fn read_mxnet_params(path: impl AsRef<Path>) -> Result<TensorMap, WeightsError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io { path: shown.clone(), source })?;
    parse_mxnet_params(&bytes, &shown)
}

/// Reads the float32 tensors of a safetensors file; names with `prefix` have it removed
/// (e.g. `"param:"` for the golden reference), other names are kept as they are.
///
/// # Errors
/// [`WeightsError::Io`] or [`WeightsError::Corrupt`].
pub fn read_safetensors(path: impl AsRef<Path>, prefix: &str) -> Result<TensorMap, WeightsError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io { path: shown.clone(), source })?;
    let corrupt = |reason: String| WeightsError::Corrupt { path: shown.clone(), reason };
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut map = TensorMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(corrupt(format!("tensor '{name}' is {:?}, expected F32", view.dtype())));
        }
        let values = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let key = name.strip_prefix(prefix).unwrap_or(&name).to_string();
        map.insert(key, RawTensor { shape: view.shape().to_vec(), values });
    }
    Ok(map)
}
