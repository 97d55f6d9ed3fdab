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
    /// A tensor whose values do not fill its shape.
    #[error("tensor '{name}' holds {values} values, its shape needs {needed}")]
    ValueCount {
        /// The tensor.
        name: String,
        /// Values it holds.
        values: usize,
        /// Values its shape needs.
        needed: usize,
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
    // A hand-built tensor may hold another number of values than its shape says
    // (Burn's TensorData would panic on it).
    let needed = expected.iter().product::<usize>();
    if t.values.len() != needed {
        return Err(WeightsError::ValueCount { name: name.to_string(), values: t.values.len(), needed });
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
    let mut out = unit.copied();
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

/// Gluon names of the units of a branch under `prefix`: conv at `j`, BN at `j+1`,
/// one more index for the activation. Returns the (conv, BN) names and the next index.
fn branch_names<B: Backend>(units: &[ConvBnAct<B>], prefix: &str) -> (Vec<(String, String)>, usize) {
    let mut index = 0;
    let mut names = Vec::with_capacity(units.len());
    for unit in units {
        names.push((format!("{prefix}.{index}"), format!("{prefix}.{}", index + 1)));
        index += 2 + usize::from(unit.activation().is_some());
    }
    (names, index)
}

/// Every unit of `net` with its gluon conv name and BN name (if it has a BN), in order.
fn named_units<B: Backend>(net: &ShuffleNasNet<B>) -> Vec<(&ConvBnAct<B>, String, Option<String>)> {
    let n = net.blocks.len();
    let mut units = vec![(&net.stem, "features.0".to_string(), Some("features.1".to_string()))];
    for (i, block) in net.blocks.iter().enumerate() {
        let prefix = format!("features.{}", 3 + i);
        let (proj, _) = branch_names(&block.projection, &format!("{prefix}.proj_branch"));
        let (main, next) = branch_names(&block.main, &format!("{prefix}.main_branch"));
        for (unit, (conv, bn)) in block.projection.iter().zip(proj).chain(block.main.iter().zip(main)) {
            units.push((unit, conv, Some(bn)));
        }
        if let Some(se) = &block.se {
            let attention = format!("{prefix}.main_branch.{next}.channel_attention");
            units.push((&se.squeeze, format!("{attention}.1"), None));
            units.push((&se.excitation, format!("{attention}.3"), None));
        }
    }
    if net.head.after_pooling {
        units.push((&net.head.last_conv, format!("features.{}", 4 + n), None));
    } else {
        units.push((&net.head.last_conv, format!("features.{}", 3 + n), Some(format!("features.{}", 4 + n))));
    }
    units.push((&net.head.classifier, "output.0".to_string(), None));
    units
}

fn load_block<B: Backend>(block: &ChoiceBlock<B>, loaded: &mut impl Iterator<Item = ConvBnAct<B>>) -> ChoiceBlock<B> {
    let mut out = block.narrowed(block.max_mid());
    out.projection = block.projection.iter().filter_map(|_| loaded.next()).collect();
    out.main = block.main.iter().filter_map(|_| loaded.next()).collect();
    if let Some(se) = out.se.as_mut() {
        if let Some(squeeze) = loaded.next() {
            se.squeeze = squeeze;
        }
        if let Some(excitation) = loaded.next() {
            se.excitation = excitation;
        }
    }
    out
}

/// Loads gluon-named weights (see the module docs) into a copy of `net`, checking
/// every shape.
///
/// # Errors
/// [`WeightsError::Missing`] or [`WeightsError::Shape`] naming the tensor.
pub fn load_gluon<B: Backend>(net: &ShuffleNasNet<B>, map: &TensorMap) -> Result<ShuffleNasNet<B>, WeightsError> {
    let loaded = named_units(net)
        .into_iter()
        .map(|(unit, conv, bn)| load_unit(unit, map, &conv, bn.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut loaded = loaded.into_iter();
    let stem = loaded.next().ok_or_else(|| WeightsError::Missing("features.0.weight".into()))?;
    let blocks = net.blocks.iter().map(|b| load_block(b, &mut loaded)).collect();
    let mut head = net.head.copied();
    if let Some(last_conv) = loaded.next() {
        head.last_conv = last_conv;
    }
    if let Some(classifier) = loaded.next() {
        head.classifier = classifier;
    }
    Ok(ShuffleNasNet { stem, blocks, head })
}

fn raw<B: Backend, const D: usize>(t: Tensor<B, D>) -> RawTensor {
    let shape = t.dims().to_vec();
    let values = t.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
    RawTensor { shape, values }
}

/// The gluon-named tensors of `net` (the inverse of [`load_gluon`]), e.g. to write an
/// MXNet `.params` file with [`encode_mxnet_params`].
pub fn export_gluon<B: Backend>(net: &ShuffleNasNet<B>) -> TensorMap {
    let mut map = TensorMap::new();
    for (unit, conv, bn) in named_units(net) {
        map.insert(format!("{conv}.weight"), raw(unit.conv.weight.val()));
        if let Some(bias) = &unit.conv.bias {
            map.insert(format!("{conv}.bias"), raw(bias.val()));
        }
        if let (Some(module), Some(prefix)) = (&unit.bn, bn) {
            map.insert(format!("{prefix}.gamma"), raw(module.gamma.val()));
            map.insert(format!("{prefix}.beta"), raw(module.beta.val()));
            map.insert(format!("{prefix}.running_mean"), raw(module.running_mean.value_sync()));
            map.insert(format!("{prefix}.running_var"), raw(module.running_var.value_sync()));
        }
    }
    map
}

/// Encodes tensors in MXNet's NDArray-list format (what `save_parameters` writes),
/// sorted by name.
pub fn encode_mxnet_params(map: &TensorMap) -> Vec<u8> {
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    let mut out = Vec::new();
    out.extend_from_slice(&LIST_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&(names.len() as u64).to_le_bytes());
    for name in &names {
        let t = &map[*name];
        out.extend_from_slice(&NDARRAY_V2.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // dense storage
        out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for &d in &t.shape {
            out.extend_from_slice(&(d as u64).to_le_bytes());
        }
        out.extend_from_slice(&1u32.to_le_bytes()); // CPU
        out.extend_from_slice(&0u32.to_le_bytes()); // device id
        out.extend_from_slice(&0u32.to_le_bytes()); // float32
        for v in &t.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(&(names.len() as u64).to_le_bytes());
    for name in names {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    out
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

/// Reads one NDArray. An array MXNet saved without a shape (a parameter never
/// initialised: rank 0 in the V1/V2 formats, an unknown rank or dimension, -1, in V3's
/// NumPy semantics, where rank 0 is a scalar) has no data in the file; it is returned
/// with shape `[0]` and no values, so using it is a shape mismatch naming it.
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
    let numpy_shape = magic == NDARRAY_V3;
    let unset = RawTensor { shape: vec![0], values: Vec::new() };
    if (numpy_shape && ndim == u32::MAX) || (!numpy_shape && ndim == 0) {
        return Ok(unset);
    }
    if ndim > 8 {
        return Err(r.corrupt(format!("{what}: implausible rank {ndim}")));
    }
    let mut shape = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        shape.push(r.u64(&what)?);
    }
    if numpy_shape && shape.contains(&u64::MAX) {
        return Ok(unset);
    }
    let shape: Vec<usize> = shape.into_iter().map(|d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
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
        return Err(r.corrupt(format!(
            "the header lists {count} arrays, more than a file of {} bytes can hold: truncated, or not a .params file",
            bytes.len()
        )));
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
        if map.contains_key(&name) {
            return Err(r.corrupt(format!("array {i}: the name '{name}' appears twice")));
        }
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
        if map.contains_key(&key) {
            return Err(corrupt(format!("two tensors are named '{key}' once '{prefix}' is removed")));
        }
        map.insert(key, RawTensor { shape: view.shape().to_vec(), values });
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::Distribution;

    use super::*;
    use crate::nn::ShuffleNasNetConfig;
    use crate::{Architecture, SearchSpace};

    // Any genome, both heads, with or without SE, any input size and class count:
    // writing a network as a `.params` file and importing it back gives the same network.
    #[test]
    fn mxnet_params_round_trip_for_every_head_and_se_setting() {
        let device = Default::default();
        for (i, (use_se, after_pooling)) in
            [(true, true), (true, false), (false, true), (false, false)].into_iter().enumerate()
        {
            let space = SearchSpace {
                use_se,
                last_conv_after_pooling: after_pooling,
                num_classes: 7 + i,
                input_size: 64,
                ..SearchSpace::tiny(3, 10)
            };
            let arch = Architecture::random_seeded(&space, i as u64);
            let config = ShuffleNasNetConfig::new(space, arch);
            Flex::seed(&device, 10 + i as u64);
            let original = config.init::<Flex>(&device).unwrap();
            let bytes = encode_mxnet_params(&export_gluon(&original));
            let map = parse_mxnet_params(&bytes, "roundtrip.params").unwrap();
            Flex::seed(&device, 99);
            let template = config.init::<Flex>(&device).unwrap();
            let imported = load_gluon(&template, &map).unwrap();
            let x = Tensor::<Flex, 4>::random([2, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
            let a: Vec<f32> = original.forward(x.clone()).into_data().into_vec().unwrap();
            let b: Vec<f32> = imported.forward(x).into_data().into_vec().unwrap();
            assert_eq!(a, b, "use_se {use_se}, after_pooling {after_pooling}");
        }
    }

    /// A tiny-space network of a fixed genome.
    fn tiny_net() -> ShuffleNasNet<Flex> {
        let space = SearchSpace::tiny(3, 10);
        ShuffleNasNetConfig::new(space.clone(), Architecture::random_seeded(&space, 1))
            .init::<Flex>(&Default::default())
            .unwrap()
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let net = tiny_net();
        let mut map = export_gluon(&net);
        map.remove("features.5.main_branch.1.running_var");
        let err = load_gluon(&net, &map).unwrap_err();
        assert_eq!(err.to_string(), "tensor 'features.5.main_branch.1.running_var' is missing from the weights");
    }

    // A hand-built tensor short of values, and two arrays that are one name once the
    // "arg:"/"aux:" prefix is removed: errors naming them, not a panic or a silent pick.
    #[test]
    fn short_tensors_and_duplicate_names_are_errors() {
        let net = tiny_net();
        let mut map = export_gluon(&net);
        map.get_mut("features.0.weight").unwrap().values.pop();
        let err = load_gluon(&net, &map).unwrap_err();
        assert!(matches!(err, WeightsError::ValueCount { ref name, .. } if name == "features.0.weight"), "{err}");

        let mut map = export_gluon(&net);
        let stem = map["features.0.weight"].clone();
        map.insert("arg:features.0.weight".into(), stem);
        let err = parse_mxnet_params(&encode_mxnet_params(&map), "twice.params").unwrap_err().to_string();
        assert!(err.contains("'features.0.weight' appears twice"), "{err}");
    }

    // MXNet writes a parameter without a shape as a header alone (rank 0 in V2, rank -1
    // in V3, where rank 0 is a scalar with one value): the arrays after it still parse,
    // and loading the empty one into a network is a shape error naming it.
    #[test]
    fn arrays_saved_without_a_shape_are_read_as_empty() {
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut bytes = Vec::new();
        bytes.extend(LIST_MAGIC.to_le_bytes());
        bytes.extend(0u64.to_le_bytes());
        bytes.extend(4u64.to_le_bytes());
        bytes.extend(u32s(&[NDARRAY_V2, 0, 0]));
        bytes.extend(u32s(&[NDARRAY_V3, 0, 0, 1, 0, 0]));
        bytes.extend(2.5f32.to_le_bytes());
        bytes.extend(u32s(&[NDARRAY_V3, 0, u32::MAX]));
        bytes.extend(u32s(&[NDARRAY_V2, 0, 1]));
        bytes.extend(2u64.to_le_bytes());
        bytes.extend(u32s(&[1, 0, 0]));
        bytes.extend([1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()));
        let names = ["features.0.weight", "scalar", "unknown", "vector"];
        bytes.extend((names.len() as u64).to_le_bytes());
        for name in names {
            bytes.extend((name.len() as u64).to_le_bytes());
            bytes.extend(name.as_bytes());
        }
        let map = parse_mxnet_params(&bytes, "unset.params").unwrap();
        let shape = |name: &str| (map[name].shape.clone(), map[name].values.clone());
        assert_eq!(shape("features.0.weight"), (vec![0], vec![]));
        assert_eq!(shape("scalar"), (vec![], vec![2.5]));
        assert_eq!(shape("unknown"), (vec![0], vec![]));
        assert_eq!(shape("vector"), (vec![2], vec![1.0, 2.0]));

        let net = tiny_net();
        let mut weights = export_gluon(&net);
        weights.insert("features.0.weight".into(), map["features.0.weight"].clone());
        let err = load_gluon(&net, &weights).unwrap_err().to_string();
        assert!(err.contains("features.0.weight"), "{err}");
    }
}
