//! Parity with the original MXNet OneShot-S+ (../shared/golden): the same weights and
//! input must give the same logits.

use std::path::PathBuf;

use burn::backend::Flex;
use burn::prelude::*;
use shufflenas_model::nn::ShuffleNasNetConfig;
use shufflenas_model::weights::{
    RawTensor, WeightsError, load_gluon, parse_mxnet_params, read_mxnet_params, read_safetensors,
};
use shufflenas_model::{Architecture, SearchSpace};

fn golden_dir() -> PathBuf {
    let dir = std::env::var_os("SHUFFLENAS_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden"));
    assert!(dir.join("oneshot_s_plus_mxnet.safetensors").is_file(), "golden files not found in {}", dir.display());
    dir
}

fn relative_l2(ours: &[f32], reference: &[f32]) -> f64 {
    let diff: f64 = ours.iter().zip(reference).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum();
    let norm: f64 = reference.iter().map(|b| f64::from(*b).powi(2)).sum();
    (diff / norm).sqrt()
}

fn to_tensor(t: &RawTensor) -> Tensor<Flex, 4> {
    Tensor::from_data(TensorData::new(t.values.clone(), t.shape.clone()), &Default::default())
}

#[test]
fn oneshot_s_plus_reproduces_the_mxnet_logits() {
    let dir = golden_dir();
    let golden = read_safetensors(dir.join("oneshot_s_plus_mxnet.safetensors"), "param:").unwrap();
    let device = Default::default();
    let net = ShuffleNasNetConfig::new(SearchSpace::oneshot_plus(), Architecture::oneshot_s_plus())
        .init::<Flex>(&device)
        .unwrap();
    let net = load_gluon(&net, &golden).unwrap();
    let logits = net.forward(to_tensor(&golden["input"]));
    let ours: Vec<f32> = logits.clone().into_data().into_vec().unwrap();
    let error = relative_l2(&ours, &golden["logits"].values);
    assert!(error < 1e-4, "relative L2 error {error}");

    // Folding BN into the convs must not change the output.
    let fused: Vec<f32> = net.fuse_bn().forward(to_tensor(&golden["input"])).into_data().into_vec().unwrap();
    let fused_error = relative_l2(&fused, &ours);
    assert!(fused_error < 1e-5, "fused relative L2 error {fused_error}");
}

#[test]
fn the_mxnet_params_file_holds_the_same_weights() {
    let dir = golden_dir();
    let params = read_mxnet_params(dir.join("oneshot_s_plus_mxnet.params")).unwrap();
    let golden = read_safetensors(dir.join("oneshot_s_plus_mxnet.safetensors"), "param:").unwrap();
    assert_eq!(params.len(), 412);
    for (name, tensor) in &params {
        assert_eq!(&golden[name], tensor, "{name}");
    }
    let net = ShuffleNasNetConfig::new(SearchSpace::oneshot_plus(), Architecture::oneshot_s_plus())
        .init::<Flex>(&Default::default())
        .unwrap();
    load_gluon(&net, &params).unwrap();
}

#[test]
fn truncated_corrupt_or_mismatched_params_name_the_problem() {
    let dir = golden_dir();
    let bytes = std::fs::read(dir.join("oneshot_s_plus_mxnet.params")).unwrap();
    let err = parse_mxnet_params(&bytes[..bytes.len() / 2], "half.params").unwrap_err();
    assert!(matches!(err, WeightsError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated while reading array"), "{err}");
    let err = parse_mxnet_params(b"not a params file at all", "junk.params").unwrap_err();
    assert!(err.to_string().contains("not an MXNet NDArray list"), "{err}");

    // The weights of OneShot-S+ do not fit another genome: the first mismatch is named.
    let params = parse_mxnet_params(&bytes, "golden.params").unwrap();
    let other = ShuffleNasNetConfig::new(SearchSpace::oneshot_plus(), Architecture::oneshot())
        .init::<Flex>(&Default::default())
        .unwrap();
    let err = load_gluon(&other, &params).unwrap_err();
    assert!(matches!(err, WeightsError::Shape { .. }), "{err}");
    assert!(err.to_string().starts_with("tensor 'features.3."), "{err}");
}
