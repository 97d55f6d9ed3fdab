//! Training end to end on tiny configurations: exact resume, non-finite loss handling,
//! incompatible checkpoints, a supernet whose loss falls, mixup, distillation and the
//! per-step callback.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use shufflenas_model::nn::{ShuffleNasNet, ShuffleNasNetConfig, SupernetConfig};
use shufflenas_model::{Architecture, SearchSpace};
use shufflenas_train::data::{BatchLoader, ImageDataset, Normalization, Transform, embedded_fashion_mnist};
use shufflenas_train::distill::{Distillation, Teacher, distillation_kl, soft_targets};
use shufflenas_train::sampler::{PathSampler, Sampling};
use shufflenas_train::schedule::ChannelSchedule;
use shufflenas_train::trainer::{StepInfo, TrainConfig, TrainError, Trainer};

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
    let train = Arc::new(data.subset((0..items).collect()).unwrap());
    let valid = Arc::new(data.subset((items..items + 32).collect()).unwrap());
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

/// The trainable parameters (not the BN running statistics) of an autodiff module.
fn trainable(model: &impl burn::module::Module<B>) -> Vec<f32> {
    let mut out = Vec::new();
    struct Collect<'a>(&'a mut Vec<f32>);
    impl burn::module::ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            if param.val().is_require_grad() {
                self.0.extend(param.val().into_data().into_vec::<f32>().unwrap());
            }
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
        on_step: None,
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

    // A sampler of another space would draw paths that do not fit the supernet.
    let other_space = SearchSpace { stage_out_channels: vec![16, 32, 64, 256], ..space.clone() };
    let schedule = ChannelSchedule::WarmUp { epochs: 2, lowest: 2, highest: 9 };
    let other_sampler = PathSampler::new(other_space, schedule, Sampling::Uniform, 5).unwrap();
    let err = Trainer { sampler: Some(&other_sampler), ..trainer(run_dir("other-space"), None) }
        .fit(make(), &device, false, &mut |_| {})
        .unwrap_err();
    assert!(matches!(&err, TrainError::Config(m) if m.contains("not the supernet's")), "{err}");

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
fn a_diverging_run_stops_with_the_step_and_a_fresh_run_keeps_off_an_earlier_one() {
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
        on_step: None,
    };
    good.fit(make(), &device, false, &mut |_| {}).unwrap();
    let saved = std::fs::read(dir.join("checkpoint-0001").join("model.mpk")).unwrap();
    // Training from scratch into that directory would replace its checkpoints epoch by
    // epoch: it is refused, and the run is left as it was.
    let diverging = Trainer { config: TrainConfig { epochs: 3, lr: 1e18, ..config() }, stop_after: None, ..good };
    let err = diverging.fit(make(), &device, false, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
    assert_eq!(std::fs::read(dir.join("checkpoint-0001").join("model.mpk")).unwrap(), saved);
    // In a directory of its own, the diverging run stops at the first non-finite loss,
    // naming the step, and saves no checkpoint of its broken weights.
    let fresh = run_dir("nan-fresh");
    let diverging = Trainer { dir: fresh.clone(), ..diverging };
    let err = diverging.fit(make(), &device, false, &mut |_| {}).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("step") && err.to_string().contains("no checkpoint was written yet"), "{err}");
    assert!(!fresh.join("latest.json").exists());
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(fresh);
}

// With `drop_last`, a split smaller than a batch has no step per epoch: the run would
// "train" every epoch at loss 0 and save the untrained weights.
#[test]
fn a_training_split_smaller_than_a_batch_is_refused() {
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(8);
    let train = train.drop_last();
    let dir = run_dir("too-small");
    let arch = Architecture::random_seeded(&space, 1);
    let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
    let trainer = Trainer {
        config: config(),
        train: &train,
        valid: None,
        sampler: None,
        dir: dir.clone(),
        model_id: arch.to_string(),
        stop_after: None,
        on_step: None,
    };
    let err = trainer.fit(net, &device, false, &mut |_| {}).unwrap_err();
    assert!(matches!(&err, TrainError::Config(m) if m.contains("8 images, fewer than one batch of 16")), "{err}");
    assert!(!dir.exists());
}

// Resuming with another batch size would keep the old LR iteration under a schedule of
// other steps per epoch: refused, naming both.
#[test]
fn resuming_with_other_training_data_is_refused() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(48);
    let arch = Architecture::random_seeded(&space, 3);
    let make = || ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
    let dir = run_dir("other-data");
    let first = Trainer { stop_after: Some(1), ..fixed_trainer(&train, config(), dir.clone(), &arch) };
    first.fit(make(), &device, false, &mut |_| {}).unwrap();
    let data = embedded_fashion_mnist(false).unwrap();
    let norm = Normalization::fashion_mnist();
    let transform = Transform::SmallTrain { size: 32, padding: 2, norm };
    for (items, batch) in [(48, 8), (64, 16)] {
        let other = BatchLoader::new(Arc::new(data.subset((0..items).collect()).unwrap()), transform.clone(), batch, 1)
            .unwrap();
        let err =
            fixed_trainer(&other, config(), dir.clone(), &arch).fit(make(), &device, true, &mut |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TrainError::Incompatible { .. }), "{text}");
        assert!(text.contains("48 images in batches of 16, 3 steps per epoch"), "{text}");
        assert!(text.contains(&format!("{items} images in batches of {batch}")), "{text}");
    }
    // The same data resumes.
    let (_, history) =
        fixed_trainer(&train, config(), dir.clone(), &arch).fit(make(), &device, true, &mut |_| {}).unwrap();
    assert_eq!(history.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

// A dataset with more classes than the network, or images of other channels, stop with
// an error naming both numbers before Burn panics.
#[test]
fn data_that_does_not_fit_the_network_is_an_error() {
    let _guard = serial();
    let device = Default::default();
    let (train, valid) = loaders(16);
    let five_classes = SearchSpace::tiny(1, 5);
    let rgb = SearchSpace::tiny(3, 10);
    for (space, expect) in
        [(five_classes, "outside the network's 5 classes"), (rgb, "1 channels, the network's first conv takes 3")]
    {
        let arch = Architecture::random_seeded(&space, 1);
        let dir = run_dir("misfit");
        let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
        let err =
            fixed_trainer(&train, config(), dir.clone(), &arch).fit(net, &device, false, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        // Validation checks the same.
        let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<Flex>(&device).unwrap();
        let err = shufflenas_train::trainer::ValidNet::accuracy(&net, &valid, None).unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
    // So does the BN recalibration of a supernet path.
    let supernet = SupernetConfig::new(SearchSpace::tiny(3, 10)).init::<Flex>(&device).unwrap();
    let plan = supernet.space().decode(&Architecture::random_seeded(supernet.space(), 1)).unwrap();
    let err = shufflenas_train::recalibrate::recalibrate_supernet(&supernet, &plan, &train, 16).unwrap_err();
    assert!(matches!(err, TrainError::InputChannels { got: 1, expected: 3 }), "{err}");
    // A path decoded from another space is refused before it reaches the weights, in
    // recalibration, validation and training alike.
    let other = SearchSpace { num_classes: 7, ..SearchSpace::tiny(3, 10) };
    let foreign = other.decode(&Architecture::random_seeded(&other, 1)).unwrap();
    let err = shufflenas_train::recalibrate::recalibrate_supernet(&supernet, &foreign, &train, 16).unwrap_err();
    assert!(err.to_string().contains("not decoded from this supernet's search space"), "{err}");
    let err = shufflenas_train::trainer::ValidNet::accuracy(&supernet, &valid, Some(&foreign)).unwrap_err();
    assert!(err.to_string().contains("not decoded from this supernet's search space"), "{err}");
}

#[test]
fn a_fixed_net_learns_on_the_embedded_data() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let data = embedded_fashion_mnist(true).unwrap();
    let train = Arc::new(data.subset((0..400).collect()).unwrap());
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
        on_step: None,
    };
    let (_, history) = trainer.fit(net, &device, false, &mut |_| {}).unwrap();
    assert!(history[2].train_loss < history[0].train_loss, "{history:?}");
    let _ = std::fs::remove_dir_all(&trainer.dir);
}

/// A fixed-net trainer over `train` with no validation and no callback.
fn fixed_trainer<'a>(train: &'a BatchLoader, config: TrainConfig, dir: PathBuf, arch: &Architecture) -> Trainer<'a> {
    Trainer {
        config,
        train,
        valid: None,
        sampler: None,
        dir,
        model_id: arch.to_string(),
        stop_after: None,
        on_step: None,
    }
}

// Mixup must change what the net sees (so the loss), keep it finite, and, because λ and
// the permutation are drawn from (seed, step), resume exactly like an uninterrupted run.
#[test]
fn mixup_changes_the_loss_and_resumes_bit_identically() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(48);
    let arch = Architecture::random_seeded(&space, 4);
    let make = || {
        B::seed(&device, 21);
        ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap()
    };
    let mixup = TrainConfig { mixup_alpha: 0.4, ..config() };

    let plain_dir = run_dir("mixup-off");
    let (_, plain) =
        fixed_trainer(&train, config(), plain_dir.clone(), &arch).fit(make(), &device, false, &mut |_| {}).unwrap();
    let straight_dir = run_dir("mixup-straight");
    let (straight, mixed) = fixed_trainer(&train, mixup.clone(), straight_dir.clone(), &arch)
        .fit(make(), &device, false, &mut |_| {})
        .unwrap();
    assert!(mixed.iter().all(|m| m.train_loss.is_finite()), "{mixed:?}");
    assert_ne!(plain[0].train_loss, mixed[0].train_loss);
    // Mixup off for the last epoch: epoch 0 mixes, the last epoch trains on clean images.
    let epochs = config().epochs;
    let off_dir = run_dir("mixup-off-last");
    let off_last = TrainConfig { mixup_off_last_epochs: epochs, ..mixup.clone() };
    let (_, off) =
        fixed_trainer(&train, off_last, off_dir.clone(), &arch).fit(make(), &device, false, &mut |_| {}).unwrap();
    assert_eq!(off[0].train_loss, plain[0].train_loss, "mixup off for every epoch is plain training");
    let _ = std::fs::remove_dir_all(&off_dir);
    let last_only = TrainConfig { mixup_off_last_epochs: 1, ..mixup.clone() };
    let (_, last) =
        fixed_trainer(&train, last_only, off_dir.clone(), &arch).fit(make(), &device, false, &mut |_| {}).unwrap();
    assert_eq!(last[0].train_loss, mixed[0].train_loss, "earlier epochs still mix");
    let _ = std::fs::remove_dir_all(off_dir);

    let dir = run_dir("mixup-resumed");
    let first = Trainer { stop_after: Some(1), ..fixed_trainer(&train, mixup.clone(), dir.clone(), &arch) };
    first.fit(make(), &device, false, &mut |_| {}).unwrap();
    let (resumed, history) =
        fixed_trainer(&train, mixup, dir.clone(), &arch).fit(make(), &device, true, &mut |_| {}).unwrap();
    let (a, b) = (
        params(&burn::module::AutodiffModule::valid(&straight)),
        params(&burn::module::AutodiffModule::valid(&resumed)),
    );
    assert_eq!(a.iter().zip(&b).filter(|(x, y)| x != y).count(), 0);
    let losses = |h: &[shufflenas_train::trainer::EpochMetrics]| -> Vec<(f64, f64)> {
        h.iter().map(|m| (m.train_loss, m.train_top1)).collect()
    };
    // Epoch 0 of the resumed run was read back from state.json: compare the epoch the
    // resumed process trained itself.
    assert_eq!(losses(&mixed)[1], losses(&history)[1]);
    for dir in [plain_dir, straight_dir, dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

// The callback sees every step once, in order, with the schedule's LR.
#[test]
fn the_step_callback_sees_every_step() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(32);
    let arch = Architecture::random_seeded(&space, 5);
    let calls = Cell::new(0u64);
    let last = Cell::new(None::<StepInfo>);
    let on_step = |s: &StepInfo| {
        calls.set(calls.get() + 1);
        assert_eq!(s.global_step, calls.get());
        assert_eq!(s.step, (s.global_step as usize - 1) % s.steps_per_epoch + 1);
        assert!(s.loss.is_finite() && s.mean_loss.is_finite() && s.images_per_s > 0.0 && s.lr > 0.0);
        last.set(Some(*s));
    };
    let dir = run_dir("on-step");
    let trainer = Trainer { on_step: Some(&on_step), ..fixed_trainer(&train, config(), dir.clone(), &arch) };
    let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
    let (_, history) = trainer.fit(net, &device, false, &mut |_| {}).unwrap();
    assert_eq!(calls.get(), 2 * train.batches_per_epoch() as u64);
    let last = last.get().unwrap();
    assert_eq!((last.epoch, last.epochs, last.step), (1, 2, train.batches_per_epoch()));
    assert_eq!(last.mean_loss, history[1].train_loss);
    let _ = std::fs::remove_dir_all(dir);
}

/// A random teacher of another genome, on the inference backend, with its lazily
/// initialised parameters drawn now (so that they do not depend on when it first runs).
fn teacher(space: &SearchSpace) -> ShuffleNasNet<Flex> {
    let device = Default::default();
    B::seed(&device, 99);
    let net =
        ShuffleNasNetConfig::new(space.clone(), Architecture::random_seeded(space, 9)).init::<Flex>(&device).unwrap();
    let _ = params(&net);
    net
}

// w = 0 must be plain training exactly; w > 0 must change the loss; a teacher without a
// distillation setting (or the reverse) is a configuration error, not a silent no-op.
#[test]
fn distillation_with_zero_weight_is_plain_training() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(32);
    let arch = Architecture::random_seeded(&space, 6);
    let teacher = teacher(&space);
    let make = || {
        B::seed(&device, 31);
        ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap()
    };
    let distill = |weight| TrainConfig { distill: Some(Distillation { weight, temperature: 4.0 }), ..config() };

    let plain_dir = run_dir("distill-plain");
    let (plain, plain_history) =
        fixed_trainer(&train, config(), plain_dir.clone(), &arch).fit(make(), &device, false, &mut |_| {}).unwrap();
    let zero_dir = run_dir("distill-zero");
    let (zero, zero_history) = fixed_trainer(&train, distill(0.0), zero_dir.clone(), &arch)
        .fit_with_teacher(make(), &teacher, &device, false, &mut |_| {})
        .unwrap();
    assert_eq!(
        params(&burn::module::AutodiffModule::valid(&plain)),
        params(&burn::module::AutodiffModule::valid(&zero))
    );
    assert_eq!(
        plain_history.iter().map(|m| m.train_loss).collect::<Vec<_>>(),
        zero_history.iter().map(|m| m.train_loss).collect::<Vec<_>>()
    );
    let half_dir = run_dir("distill-half");
    let (_, half_history) = fixed_trainer(&train, distill(0.5), half_dir.clone(), &arch)
        .fit_with_teacher(make(), &teacher, &device, false, &mut |_| {})
        .unwrap();
    assert!(half_history[0].train_loss.is_finite());
    assert_ne!(half_history[0].train_loss, plain_history[0].train_loss);

    let err = fixed_trainer(&train, distill(0.5), run_dir("distill-none"), &arch)
        .fit(make(), &device, false, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, TrainError::Config(_)) && err.to_string().contains("no teacher"), "{err}");
    let err = fixed_trainer(&train, config(), run_dir("distill-unset"), &arch)
        .fit_with_teacher(make(), &teacher, &device, false, &mut |_| {})
        .unwrap_err();
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    for dir in [plain_dir, zero_dir, half_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

// A teacher of other classes, of other image channels, or a supernet path of another
// space is an error naming the teacher, before any step or at the first, not a panic.
#[test]
fn a_teacher_that_does_not_fit_is_an_error() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(32);
    let arch = Architecture::random_seeded(&space, 6);
    let distill = TrainConfig { distill: Some(Distillation { weight: 0.5, temperature: 4.0 }), ..config() };
    let supernet = SupernetConfig::new(space.clone()).init::<Flex>(&device).unwrap();
    let other = SearchSpace { num_classes: 7, ..space.clone() };
    let foreign = other.decode(&Architecture::random_seeded(&other, 1)).unwrap();
    let teachers: [(Box<dyn Teacher<Flex>>, &str); 3] = [
        (Box::new(teacher(&SearchSpace::tiny(1, 5))), "it gives 5 classes, the student 10"),
        (Box::new(teacher(&SearchSpace::tiny(3, 10))), "the images have 1 channels, the teacher's first conv takes 3"),
        (
            Box::new(shufflenas_train::distill::SupernetPath { supernet: &supernet, plan: &foreign }),
            "not decoded from this supernet's search space",
        ),
    ];
    for (teacher, expected) in teachers {
        let dir = run_dir("misfit-teacher");
        let net = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
        let err = fixed_trainer(&train, distill.clone(), dir.clone(), &arch)
            .fit_with_teacher(net, teacher.as_ref(), &device, false, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, TrainError::Teacher(_)) && err.to_string().contains(expected), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A teacher with confident, image-dependent predictions (a random or briefly trained
/// tiny net is nearly uniform, which leaves nothing to distil): the logits are a linear
/// function of each image's mean brightness, with a skewed class prior.
struct BrightnessTeacher;

impl Teacher<Flex> for BrightnessTeacher {
    fn teacher_logits(&self, images: Tensor<Flex, 4>) -> Tensor<Flex, 2> {
        let [n, c, h, w] = images.dims();
        let device = images.device();
        let brightness = images.reshape([n, c * h * w]).mean_dim(1);
        let slope = Tensor::<Flex, 1>::from_floats([-3.0, -2.0, -1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0], &device);
        let prior = Tensor::<Flex, 1>::from_floats([2.0, 1.5, 1.0, 0.5, 0.0, 0.0, -0.5, -1.0, -1.5, -2.0], &device);
        brightness * slope.reshape([1, 10]).mul_scalar(3.0) + prior.reshape([1, 10])
    }
}

// Pure distillation (w = 1) must bring the student's predictions closer to the teacher's
// on the images it trains on.
#[test]
fn distillation_lowers_the_kl_to_the_teacher() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let data = embedded_fashion_mnist(false).unwrap();
    let images = Arc::new(data.subset((0..64).collect()).unwrap());
    let norm = Normalization::fashion_mnist();
    let train = BatchLoader::new(images.clone(), Transform::SmallEval { size: 32, norm: norm.clone() }, 16, 1).unwrap();
    let probe = BatchLoader::new(images, Transform::SmallEval { size: 32, norm }, 64, 1).unwrap().without_shuffle();
    let probe = probe.epoch(0).next().unwrap().unwrap();
    let teacher = BrightnessTeacher;
    let t = 2.0;
    let targets = soft_targets(teacher.teacher_logits(probe.to_tensors::<Flex>(&device).0), t);
    // Training-mode forward (batch statistics), as the loss sees the student.
    let kl = |student: &ShuffleNasNet<B>| -> f64 {
        let logits = student.forward(probe.to_tensors::<B>(&device).0);
        distillation_kl(logits.inner(), targets.clone(), t).into_scalar().elem::<f64>()
    };
    let arch = Architecture::random_seeded(&space, 7);
    B::seed(&device, 41);
    let student = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
    let before = kl(&student);
    let config = TrainConfig {
        epochs: 3,
        lr: 0.2,
        warmup_epochs: 0,
        distill: Some(Distillation { weight: 1.0, temperature: t }),
        ..config()
    };
    let dir = run_dir("distill-kl");
    let (student, _) = fixed_trainer(&train, config, dir.clone(), &arch)
        .fit_with_teacher(student, &teacher, &device, false, &mut |_| {})
        .unwrap();
    let after = kl(&student);
    eprintln!("KL to the teacher {before} -> {after}");
    assert!(after < 0.7 * before, "KL to the teacher {before} -> {after}");
    let _ = std::fs::remove_dir_all(dir);
}

// Data parallel over two replicas of the net, on batches whose two halves are the same
// images: each shard then has the full batch's BN statistics and loss, so the averaged
// gradient equals one device's. After one step the weights agree to rounding; over two
// epochs the losses agree (the weights drift apart by amplified rounding: the batch-norm
// backward of near-constant channels is ill-conditioned). A sum instead of an average, or
// a replica that misses the optimizer's update, fails both.
#[test]
fn data_parallel_over_two_replicas_equals_one_device_on_mirrored_batches() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace { dropout: 0.0, ..SearchSpace::tiny(1, 10) };
    let data = embedded_fashion_mnist(true).unwrap();
    let norm = Normalization::fashion_mnist();
    let mirrored = |halves: Vec<std::ops::Range<usize>>| {
        let images = Arc::new(data.subset(halves.into_iter().flatten().collect()).unwrap());
        BatchLoader::new(images, Transform::SmallEval { size: 32, norm: norm.clone() }, 16, 1)
            .unwrap()
            .without_shuffle()
    };
    let arch = Architecture::random_seeded(&space, 4);
    B::seed(&device, 5);
    let net = ShuffleNasNetConfig::new(space, arch.clone()).init::<B>(&device).unwrap();
    shufflenas_train::checkpoint::tensor_shapes(&net);
    let both = |train: &BatchLoader, config: TrainConfig, name: &str| {
        let one = fixed_trainer(train, config.clone(), run_dir(&format!("{name}-one")), &arch);
        let single = one.fit(net.clone(), &device, false, &mut |_| {}).unwrap();
        let two = fixed_trainer(train, config, run_dir(&format!("{name}-two")), &arch);
        let parallel = two.fit_data_parallel(net.clone(), &[device, device], false, &mut |_| {}).unwrap();
        for dir in [&one.dir, &two.dir] {
            let _ = std::fs::remove_dir_all(dir);
        }
        (single, parallel)
    };

    let one_step = TrainConfig { epochs: 1, warmup_epochs: 0, lr: 0.2, ..config() };
    let ((single, _), (parallel, _)) = both(&mirrored(vec![0..8, 0..8]), one_step, "dp-step");
    // Running statistics are left out: they are updated once per shard.
    let (before, a, b) = (trainable(&net), trainable(&single), trainable(&parallel));
    let moved = before.iter().zip(&a).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    let apart = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(moved > 1e-2, "the step moved the weights by only {moved}");
    assert!(apart < 1e-3 * moved, "one data-parallel step differs from one device's by {apart} (moved {moved})");

    let two_epochs = TrainConfig { epochs: 2, lr: 0.2, ..config() };
    let ((_, single), (_, parallel)) = both(&mirrored(vec![0..8, 0..8, 8..16, 8..16]), two_epochs, "dp-epochs");
    for (s, p) in single.iter().zip(&parallel) {
        assert!((s.train_loss - p.train_loss).abs() < 1e-3, "{s:?} vs {p:?}");
        assert_eq!(s.train_top1, p.train_top1);
    }

    let train = mirrored(vec![0..8, 0..8]);
    let no_device = fixed_trainer(&train, config(), run_dir("dp-none"), &arch);
    let err = no_device.fit_data_parallel::<B, _>(net, &[], false, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("at least one device"), "{err}");
}

// A freshly built net initialises its parameters on first use, and a clone made before
// that draws its own values. The weights the first step differentiates must be the
// model's own, on one device and on forked replicas: with a negligible learning rate the
// loss the step reports is the returned model's loss on the same batch.
#[test]
fn the_first_step_differentiates_the_models_own_fresh_weights() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace { dropout: 0.0, ..SearchSpace::tiny(1, 10) };
    let data = embedded_fashion_mnist(true).unwrap();
    let images = Arc::new(data.subset((0..16).collect()).unwrap());
    let norm = Normalization::fashion_mnist();
    let train = BatchLoader::new(images, Transform::SmallEval { size: 32, norm }, 16, 1).unwrap().without_shuffle();
    let arch = Architecture::random_seeded(&space, 6);
    let config = TrainConfig { epochs: 1, warmup_epochs: 0, lr: 1e-12, ..config() };
    let (x, y) = train.epoch(0).next().unwrap().unwrap().to_tensors::<B>(&device);
    let loss_fn =
        burn::nn::loss::CrossEntropyLossConfig::new().with_smoothing(Some(config.label_smoothing)).init(&device);
    for devices in [vec![device], vec![device, device]] {
        let fresh = ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<B>(&device).unwrap();
        let trainer = fixed_trainer(&train, config.clone(), run_dir(&format!("fresh-{}", devices.len())), &arch);
        let (trained, history) = trainer.fit_data_parallel(fresh, &devices, false, &mut |_| {}).unwrap();
        // Per shard, as the step computes it (batch norm sees each shard's statistics).
        let half = 16 / devices.len();
        let own: f64 = (0..devices.len())
            .map(|k| {
                let rows = k * half..(k + 1) * half;
                let logits = trained.forward(x.clone().slice([rows.clone()]));
                let loss = loss_fn.forward(logits, y.clone().slice([rows])).into_scalar().elem::<f64>();
                loss / devices.len() as f64
            })
            .sum();
        let reported = history[0].train_loss;
        assert!((own - reported).abs() < 1e-5, "{} device(s): step loss {reported}, model's own {own}", devices.len());
        let _ = std::fs::remove_dir_all(&trainer.dir);
    }
}

// One code path for supernet and subnet: a supernet trained on one fixed path takes
// the same steps as the network extracted from it before training, trained alone on the
// same batches with the same optimizer (Nesterov momentum, weight decay, the mask of
// entries the step used). Slicing, its gradients and the batch norms' sliced running
// statistics must change nothing but which weights exist.
#[test]
fn a_supernet_on_one_path_trains_like_its_extracted_network() {
    use burn::module::AutodiffModule;
    use burn::optim::{GradientsParams, Optimizer};
    use shufflenas_model::nn::Supernet;
    use shufflenas_train::optim::SliceSgdConfig;

    let _guard = serial();
    let device = Default::default();
    // No dropout: its masks are the only randomness of a step.
    let space = SearchSpace { dropout: 0.0, ..SearchSpace::tiny(1, 10) };
    let (train, _) = loaders(64);
    B::seed(&device, 11);
    let mut supernet = SupernetConfig::new(space.clone()).init::<B>(&device).unwrap();
    let arch = Architecture::random_seeded(&space, 4);
    let mut net = supernet.extract(&arch).unwrap();
    let initial = params(&net.valid());
    let loss_fn = burn::nn::loss::CrossEntropyLossConfig::new().with_smoothing(Some(0.1)).init(&device);
    let sgd = SliceSgdConfig::new().with_momentum(0.9).with_weight_decay(4e-5);
    let mut supernet_optim = sgd.init::<B, Supernet<B>>();
    let mut net_optim = sgd.init::<B, ShuffleNasNet<B>>();
    for batch in train.epoch(0).chain(train.epoch(1)) {
        let (x, y) = batch.unwrap().to_tensors::<B>(&device);
        let loss = loss_fn.forward(supernet.forward(x.clone(), &arch).unwrap(), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &supernet);
        supernet = supernet_optim.step(0.2, supernet, grads);
        let loss = loss_fn.forward(net.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = net_optim.step(0.2, net, grads);
    }
    // Every float of the network (weights and running statistics), in the same order.
    let ours = params(&supernet.valid().extract(&arch).unwrap());
    let alone = params(&net.valid());
    assert_eq!(ours.len(), alone.len());
    let scale = alone.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let worst = ours.iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5 * scale, "largest difference {worst} (scale {scale})");
    // The steps did move the weights: this compares two trained networks.
    let moved = initial.iter().zip(&alone).filter(|(a, b)| (*a - *b).abs() > 1e-4).count();
    assert!(moved > alone.len() / 2, "only {moved} of {} values moved", alone.len());
}

/// Trains `net` as each of `world` DDP peers in threads of this process (one node), and
/// returns every peer's model and metrics, rank 0 first. Rank 1 and up start from
/// `others`, different weights that rank 0's broadcast must replace.
#[cfg(feature = "ddp")]
fn ddp_on_one_node<'a, M>(
    world: usize,
    net: &M,
    others: &M,
    trainer: &(dyn Fn(PathBuf) -> Trainer<'a> + Sync),
    name: &str,
) -> Vec<(M, Vec<shufflenas_train::trainer::EpochMetrics>, PathBuf)>
where
    M: shufflenas_train::trainer::TrainNet<B>,
    M::InnerModule: shufflenas_train::trainer::ValidNet<Flex>,
{
    let dirs: Vec<PathBuf> = (0..world).map(|rank| run_dir(&format!("{name}-rank{rank}"))).collect();
    let results = ddp_peers(net, others, trainer, &dirs, false);
    results
        .into_iter()
        .zip(dirs)
        .map(|(result, dir)| {
            let (model, metrics) = result.unwrap();
            (model, metrics, dir)
        })
        .collect()
}

/// Runs one DDP peer per directory in `dirs` (rank 0 first) as threads of this process,
/// and returns each peer's outcome.
#[cfg(feature = "ddp")]
fn ddp_peers<'a, M>(
    net: &M,
    others: &M,
    trainer: &(dyn Fn(PathBuf) -> Trainer<'a> + Sync),
    dirs: &[PathBuf],
    resume: bool,
) -> Vec<Result<(M, Vec<shufflenas_train::trainer::EpochMetrics>), TrainError>>
where
    M: shufflenas_train::trainer::TrainNet<B>,
    M::InnerModule: shufflenas_train::trainer::ValidNet<Flex>,
{
    use shufflenas_train::ddp::DdpPeer;
    shufflenas_train::ddp::reset::<Flex>();
    let world = dirs.len();
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(rank, dir)| {
                let start = if rank == 0 { net.clone() } else { others.clone() };
                scope.spawn(move || {
                    let peer = DdpPeer::single_node(rank, world).unwrap();
                    trainer(dir.clone()).fit_distributed(start, &Default::default(), &peer, resume, &mut |_| {})
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    shufflenas_train::ddp::reset::<Flex>();
    results
}

/// Eight images twice (so a half batch has the statistics of the whole), 16 validation
/// images, and a fixed genome of the tiny space without dropout.
#[cfg(feature = "ddp")]
struct Mirrored {
    space: SearchSpace,
    arch: Architecture,
    train: BatchLoader,
    valid: BatchLoader,
}

#[cfg(feature = "ddp")]
impl Mirrored {
    fn new() -> Self {
        let space = SearchSpace { dropout: 0.0, ..SearchSpace::tiny(1, 10) };
        let data = embedded_fashion_mnist(true).unwrap();
        let norm = Normalization::fashion_mnist();
        let loader = |indices: Vec<usize>| {
            BatchLoader::new(
                Arc::new(data.subset(indices).unwrap()),
                Transform::SmallEval { size: 32, norm: norm.clone() },
                16,
                1,
            )
            .unwrap()
            .without_shuffle()
        };
        let train = loader([0..8, 0..8].into_iter().flatten().collect());
        let valid = loader((8..24).collect());
        let arch = Architecture::random_seeded(&space, 4);
        Self { space, arch, train, valid }
    }

    fn net(&self, seed: u64) -> ShuffleNasNet<B> {
        let device = Default::default();
        B::seed(&device, seed);
        let net = ShuffleNasNetConfig::new(self.space.clone(), self.arch.clone()).init::<B>(&device).unwrap();
        shufflenas_train::checkpoint::tensor_shapes(&net);
        net
    }

    /// One step of lr 0.2 on the 16 images, validating on the other 16.
    fn trainer(&self, dir: PathBuf) -> Trainer<'_> {
        let one_step = TrainConfig { epochs: 1, warmup_epochs: 0, lr: 0.2, ..config() };
        Trainer { valid: Some(&self.valid), ..fixed_trainer(&self.train, one_step, dir, &self.arch) }
    }

    /// Asserts that `other` (trainable weights) is where one device's step from `net` goes.
    fn assert_same_step_as_one_device(&self, net: &ShuffleNasNet<B>, other: &[f32]) {
        let dir = run_dir("ddp-single");
        let (single, _) = self.trainer(dir.clone()).fit(net.clone(), &Default::default(), false, &mut |_| {}).unwrap();
        let _ = std::fs::remove_dir_all(dir);
        let (before, a) = (trainable(net), trainable(&single));
        let moved = before.iter().zip(&a).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        let apart = a.iter().zip(other).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(moved > 1e-2, "the step moved the weights by only {moved}");
        assert!(apart < 1e-3 * moved, "one DDP step differs from one device's by {apart} (moved {moved})");
    }
}

// Two DDP peers (threads, burn-collective) on mirrored batches take the step of one
// device on the whole batch, as the single-process data-parallel path does; rank 1 starts
// from other weights and must end with rank 0's; only rank 0 validates and checkpoints.
// A mean instead of a sum of the gradients, or a missing broadcast, fails.
#[cfg(feature = "ddp")]
#[test]
fn ddp_over_two_peers_equals_one_device_on_mirrored_batches() {
    let _guard = serial();
    let fixture = Mirrored::new();
    let (net, other) = (fixture.net(5), fixture.net(6));
    assert_ne!(trainable(&net), trainable(&other));
    let peers = ddp_on_one_node(2, &net, &other, &|dir| fixture.trainer(dir), "ddp-step");
    fixture.assert_same_step_as_one_device(&net, &trainable(&peers[0].0));
    assert_eq!(trainable(&peers[0].0), trainable(&peers[1].0), "the peers' weights differ after the step");
    assert!(peers[0].1[0].val_top1.is_some() && peers[1].1[0].val_top1.is_none());
    assert!(peers[0].2.join("latest.json").is_file() && !peers[1].2.join("latest.json").exists());
    for (_, _, dir) in &peers {
        let _ = std::fs::remove_dir_all(dir);
    }
}

// Peers with node-local run directories: a resumed run needs rank 0's checkpoint on every
// peer. A peer without it (it would start from epoch 0) or with a corrupt copy stops every
// peer with an error, where before the others waited forever in a collective operation;
// with a good copy, the two peers resume together and end with the same weights.
#[cfg(feature = "ddp")]
#[test]
fn ddp_peers_that_cannot_resume_together_all_stop_with_errors() {
    let _guard = serial();
    let fixture = Mirrored::new();
    let (net, other) = (fixture.net(5), fixture.net(6));
    let two_epochs = |dir: PathBuf, stop_after: Option<usize>| {
        let trainer = fixture.trainer(dir);
        Trainer { config: TrainConfig { epochs: 2, ..trainer.config.clone() }, stop_after, ..trainer }
    };
    let dirs = [run_dir("ddp-resume-rank0"), run_dir("ddp-resume-rank1")];
    let first = ddp_peers(&net, &other, &|dir| two_epochs(dir, Some(1)), &dirs, false);
    assert!(first.iter().all(Result::is_ok));
    // The first epoch as its checkpoint stores it (serde_json's float parsing is not
    // bit-exact, so the in-memory metrics can differ in the last place).
    let latest = |dir: &PathBuf| -> String {
        serde_json::from_str(&std::fs::read_to_string(dir.join("latest.json")).unwrap()).unwrap()
    };
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join(latest(&dirs[0])).join("state.json")).unwrap())
            .unwrap();
    let saved_first_epoch: shufflenas_train::trainer::EpochMetrics =
        serde_json::from_value(state["history"][0].clone()).unwrap();
    let resume = |dirs: &[PathBuf]| ddp_peers(&net, &other, &|dir| two_epochs(dir, None), dirs, true);

    // Rank 1's directory is empty: it would start over while rank 0 resumes after epoch 1.
    let results = resume(&dirs);
    for result in &results {
        let Err(err) = result else { panic!("a peer trained although the peers disagree") };
        assert!(matches!(err, TrainError::Distributed(m) if m.contains("another epoch")), "{err}");
    }

    // A copy of rank 0's run whose state is corrupt: rank 1 has its own error, rank 0 learns that a peer failed.
    copy_dir(&dirs[0], &dirs[1]);
    std::fs::write(dirs[1].join(latest(&dirs[1])).join("state.json"), "{ not json").unwrap();
    let results = resume(&dirs);
    assert!(
        matches!(&results[0], Err(TrainError::Distributed(m)) if m.contains("1 of 2")),
        "{:?}",
        results[0].as_ref().err()
    );
    assert!(matches!(&results[1], Err(TrainError::Checkpoint { .. })), "{:?}", results[1].as_ref().err());

    // A good copy: both resume for the second epoch and stay identical.
    copy_dir(&dirs[0], &dirs[1]);
    let results = resume(&dirs);
    let (rank0, rank1) = (results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
    // The history's first epoch is the checkpoint's, timing included: it was not run again.
    assert_eq!(rank0.1.len(), 2);
    assert_eq!(rank0.1[0], saved_first_epoch, "rank 0 did not resume after the first epoch");
    assert_eq!(trainable(&rank0.0), trainable(&rank1.0), "the resumed peers' weights differ");
    for dir in &dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

// A last batch of 2 images cannot give each of 3 peers a shard: every peer stops with the
// same error before the first collective operation (none waits for the others).
#[cfg(feature = "ddp")]
#[test]
fn ddp_refuses_a_batch_smaller_than_the_peers() {
    let _guard = serial();
    let fixture = Mirrored::new();
    let data = embedded_fashion_mnist(true).unwrap();
    let transform = Transform::SmallEval { size: 32, norm: Normalization::fashion_mnist() };
    let train = BatchLoader::new(Arc::new(data.subset((0..18).collect()).unwrap()), transform, 16, 1).unwrap();
    let net = fixture.net(5);
    let dirs = [run_dir("ddp-small-0"), run_dir("ddp-small-1"), run_dir("ddp-small-2")];
    let trainer = |dir: PathBuf| Trainer { train: &train, ..fixture.trainer(dir) };
    for result in ddp_peers(&net, &net, &trainer, &dirs, false) {
        let Err(err) = result else { panic!("a peer trained on an empty shard") };
        assert!(
            matches!(&err, TrainError::Config(m) if m.contains("batch of 2 images cannot be split over 3 peers")),
            "{err}"
        );
    }
    assert!(dirs.iter().all(|dir| !dir.exists()));
}

/// Replaces `to` by a copy of the directory tree `from`.
#[cfg(feature = "ddp")]
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// Two nodes: this test binary runs again as a child process for node 1, and the nodes
// meet through Burn's orchestrator over WebSockets on localhost. Node 1 starts from other
// weights and writes its trained weights to a file; both must equal one device's step.
// Every step ends in several global all-reduces: this needs the patched burn-collective of
// vendor/ (0.21.0's global barrier waited forever from its second use on).
#[cfg(feature = "ddp")]
#[test]
fn ddp_over_two_nodes_through_the_orchestrator() {
    use shufflenas_train::ddp::{DdpPeer, NodeAddresses, run_orchestrator};
    const NODE_VAR: &str = "SHUFFLENAS_TEST_DDP_NODE";
    let child_port = std::env::var(NODE_VAR).ok().map(|p| p.parse::<u16>().unwrap());
    let _guard = serial();
    let port = child_port.unwrap_or(20_000 + (std::process::id() % 20_000) as u16);
    let node_rank = usize::from(child_port.is_some());
    let nodes = NodeAddresses {
        nodes: 2,
        node_rank,
        orchestrator: format!("ws://127.0.0.1:{port}"),
        node: format!("ws://127.0.0.1:{}", port + 1 + node_rank as u16),
    };
    let weights_file = std::env::temp_dir().join(format!("shufflenas-ddp-node1-{port}.json"));
    let child = match child_port {
        Some(_) => None,
        None => {
            std::thread::spawn(move || run_orchestrator(port));
            let exe = std::env::current_exe().unwrap();
            let args = ["ddp_over_two_nodes_through_the_orchestrator", "--exact", "--nocapture", "--test-threads", "1"];
            Some(std::process::Command::new(exe).args(args).env(NODE_VAR, port.to_string()).spawn().unwrap())
        }
    };
    let fixture = Mirrored::new();
    let net = fixture.net(5 + node_rank as u64);
    let peer = DdpPeer::multi_node(0, 1, &nodes).unwrap();
    let dir = run_dir(&format!("ddp-node{node_rank}"));
    let (done, result) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let trained = fixture.trainer(dir.clone()).fit_distributed(
                net.clone(),
                &Default::default(),
                &peer,
                false,
                &mut |_| {},
            );
            let _ = done.send(trained.map(|(model, _)| trainable(&model)));
        });
        let weights =
            result.recv_timeout(std::time::Duration::from_secs(300)).expect("the two-node run timed out").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        if child_port.is_some() {
            std::fs::write(&weights_file, serde_json::to_string(&weights).unwrap()).unwrap();
            return;
        }
        let status = child.unwrap().wait().unwrap();
        assert!(status.success(), "node 1 failed: {status}");
        let text = std::fs::read_to_string(&weights_file).unwrap();
        let _ = std::fs::remove_file(&weights_file);
        let node1: Vec<f32> = serde_json::from_str(&text).unwrap();
        assert_eq!(weights, node1, "the nodes' weights differ after the step");
        fixture.assert_same_step_as_one_device(&fixture.net(5), &weights);
    });
}

// A supernet under DDP: all peers sample the same path at every step, so the gradient
// buckets line up although most blocks get none; the weights stay identical and the
// loss is the same finite value on every peer.
#[cfg(feature = "ddp")]
#[test]
fn ddp_trains_a_supernet_with_identical_peers() {
    let _guard = serial();
    let device = Default::default();
    let space = SearchSpace::tiny(1, 10);
    let (train, _) = loaders(32);
    let schedule = ChannelSchedule::WarmUp { epochs: 1, lowest: 2, highest: 9 };
    let sampler = PathSampler::new(space.clone(), schedule, Sampling::Uniform, 5).unwrap();
    B::seed(&device, 11);
    let net = SupernetConfig::new(space.clone()).init::<B>(&device).unwrap();
    shufflenas_train::checkpoint::tensor_shapes(&net);
    let trainer = |dir: PathBuf| Trainer {
        config: TrainConfig { epochs: 1, ..config() },
        train: &train,
        valid: None,
        sampler: Some(&sampler),
        dir,
        model_id: "supernet".into(),
        stop_after: None,
        on_step: None,
    };
    let peers = ddp_on_one_node(2, &net, &net, &trainer, "ddp-supernet");
    assert_eq!(trainable(&peers[0].0), trainable(&peers[1].0));
    assert_ne!(trainable(&peers[0].0), trainable(&net));
    let (l0, l1) = (peers[0].1[0].train_loss, peers[1].1[0].train_loss);
    assert!(l0.is_finite() && l0 == l1, "{l0} vs {l1}");
    for (_, _, dir) in &peers {
        let _ = std::fs::remove_dir_all(dir);
    }
}
