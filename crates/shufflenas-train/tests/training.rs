//! Training end to end on tiny configurations: exact resume, non-finite loss handling,
//! incompatible checkpoints, and a supernet whose loss falls.

use std::path::PathBuf;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use shufflenas_model::nn::{ShuffleNasNetConfig, SupernetConfig};
use shufflenas_model::{Architecture, SearchSpace};
use shufflenas_train::data::{BatchLoader, ImageDataset, Normalization, Transform, embedded_fashion_mnist};
use shufflenas_train::sampler::{PathSampler, Sampling};
use shufflenas_train::schedule::ChannelSchedule;
use shufflenas_train::trainer::{TrainConfig, TrainError, Trainer};

type B = Autodiff<Flex>;

/// Burn's backend RNG (weight init, dropout) is global: tests that train run one at a
/// time so that each sees only its own seeds.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shufflenas-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn loaders(items: usize) -> (BatchLoader, BatchLoader) {
    let data = embedded_fashion_mnist(false).unwrap();
    let train = Arc::new(data.subset((0..items).collect()));
    let valid = Arc::new(data.subset((items..items + 32).collect()));
    let norm = Normalization::fashion_mnist();
    let t = BatchLoader::new(train, Transform::SmallTrain { size: 32, padding: 2, norm: norm.clone() }, 16, 1).unwrap();
    let v = BatchLoader::new(valid, Transform::SmallEval { size: 32, norm }, 16, 1).unwrap().without_shuffle();
    (t, v)
}

fn params(model: &impl burn::module::Module<Flex>) -> Vec<f32> {
    let mut out = Vec::new();
    struct Collect<'a>(&'a mut Vec<f32>);
    impl burn::module::ModuleVisitor<Flex> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<Flex, D>>) {
            self.0.extend(param.val().into_data().into_vec::<f32>().unwrap());
        }
    }
    model.visit(&mut Collect(&mut out));
    out
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        lr: 0.05,
        warmup_epochs: 1,
        recalibration_images: 32,
        validation_paths: 1,
        ..TrainConfig::default()
    }
}

// Kill after epoch 1, resume, finish: the same weights (bit for bit) as a straight run,
// including the sampled paths, the channel schedule, the LR and the momentum.
#[test]
fn supernet_resume_is_bit_identical_to_a_straight_run() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, valid) = loaders(48);
    let schedule = ChannelSchedule::WarmUp { epochs: 2, lowest: 2, highest: 9 };
    let sampler = PathSampler::new(space.clone(), schedule, Sampling::Uniform, 5).unwrap();
    let make = || {
        B::seed(&device, 11);
        SupernetConfig::new(space.clone()).init::<B>(&device).unwrap()
    };
    let trainer = |dir: PathBuf, stop_after| Trainer {
        config: config(),
        train: &train,
        valid: Some(&valid),
        sampler: Some(&sampler),
        dir,
        model_id: "tiny supernet".into(),
        stop_after,
    };
    let straight_dir = run_dir("straight");
    let (straight, history) = trainer(straight_dir.clone(), None).fit(make(), &device, false, &mut |_| {}).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|m| m.val_top1.is_some()));

    let dir = run_dir("resumed");
    let (_, first) = trainer(dir.clone(), Some(1)).fit(make(), &device, false, &mut |_| {}).unwrap();
    assert_eq!(first.len(), 1);
    let (resumed, history2) = trainer(dir.clone(), None).fit(make(), &device, true, &mut |_| {}).unwrap();
    assert_eq!(history2.len(), 2);
    let (a, b) = (
        params(&burn::module::AutodiffModule::valid(&straight)),
        params(&burn::module::AutodiffModule::valid(&resumed)),
    );
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert_eq!(differing, 0);
    assert_eq!(history[1].train_loss, history2[1].train_loss);

    // A different model refuses to resume from this run.
    let other = Trainer { model_id: "another model".into(), ..trainer(dir.clone(), None) };
    let err = other.fit(make(), &device, true, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::Incompatible { .. }), "{err}");
    // A corrupt checkpoint names the file; the run directory is left as it was.
    let latest: String = serde_json::from_str(&std::fs::read_to_string(dir.join("latest.json")).unwrap()).unwrap();
    std::fs::write(dir.join(&latest).join("model.mpk"), b"garbage").unwrap();
    let err = trainer(dir.clone(), None).fit(make(), &device, true, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("model.mpk"), "{err}");
    let _ = std::fs::remove_dir_all(straight_dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_diverging_run_stops_with_the_step_and_keeps_the_checkpoint() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(32);
    let dir = run_dir("nan");
    let arch = Architecture::random_seeded(&space, 1);
    let make = || ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
    let good = Trainer {
        config: TrainConfig { epochs: 3, ..config() },
        train: &train,
        valid: None,
        sampler: None,
        dir: dir.clone(),
        model_id: arch.to_string(),
        stop_after: Some(1),
    };
    good.fit(make(), &device, false, &mut |_| {}).unwrap();
    let diverging = Trainer { config: TrainConfig { epochs: 3, lr: 1e18, ..config() }, stop_after: None, ..good };
    let err = diverging.fit(make(), &device, false, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("step"), "{err}");
    assert!(dir.join("checkpoint-0001").join("model.mpk").is_file());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_fixed_net_learns_on_the_embedded_data() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let data = embedded_fashion_mnist(true).unwrap();
    let train = Arc::new(data.subset((0..400).collect()));
    assert_eq!(train.len(), 400);
    let norm = Normalization::fashion_mnist();
    let loader = BatchLoader::new(train, Transform::SmallTrain { size: 32, padding: 2, norm }, 32, 3).unwrap();
    let arch = Architecture::random_seeded(&space, 2);
    B::seed(&device, 3);
    let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
    let trainer = Trainer {
        config: TrainConfig { epochs: 3, lr: 0.1, ..config() },
        train: &loader,
        valid: None,
        sampler: None,
        dir: run_dir("learn"),
        model_id: arch.to_string(),
        stop_after: None,
    };
    let (_, history) = trainer.fit(net, &device, false, &mut |_| {}).unwrap();
    assert!(history[2].train_loss < history[0].train_loss, "{history:?}");
    let _ = std::fs::remove_dir_all(&trainer.dir);
}
