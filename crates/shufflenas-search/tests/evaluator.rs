//! The supernet evaluator on real (embedded Fashion-MNIST) images with a tiny supernet:
//! replicas are independent and deterministic, bad input is an error.

use std::sync::Arc;

use burn::backend::Flex;
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use shufflenas_model::nn::{Supernet, SupernetConfig};
use shufflenas_model::{Architecture, SearchSpace};
use shufflenas_search::{Evaluator, SearchError, SupernetEvaluator, load_supernet};
use shufflenas_train::data::{BatchLoader, Normalization, Transform, embedded_fashion_mnist};
use shufflenas_train::recalibrate::recalibrate_supernet;
use shufflenas_train::trainer::ValidNet;

fn loader(train: bool, n: usize) -> BatchLoader {
    let data = embedded_fashion_mnist(train).unwrap();
    let data = data.subset((0..n).collect()).unwrap();
    BatchLoader::new(Arc::new(data), Transform::SmallEval { size: 32, norm: Normalization::fashion_mnist() }, 16, 0)
        .unwrap()
        .without_shuffle()
}

/// A tiny random supernet, 48 recalibration and 40 validation images, four genomes.
struct Fixture {
    space: SearchSpace,
    supernet: Supernet<Flex>,
    recal: BatchLoader,
    valid: BatchLoader,
    archs: Vec<Architecture>,
}

impl Fixture {
    fn new() -> Self {
        let space = SearchSpace::tiny(1, 10);
        let supernet = SupernetConfig::new(space.clone()).init::<Flex>(&Default::default()).unwrap();
        let archs = (0..4).map(|seed| Architecture::random_seeded(&space, seed)).collect();
        Self { space, supernet, recal: loader(true, 48), valid: loader(false, 40), archs }
    }
}

#[test]
fn replicas_give_the_same_results_as_one_network_in_any_order() {
    let Fixture { supernet, recal, valid, archs, .. } = Fixture::new();
    let device = Default::default();
    let mut one = SupernetEvaluator::new(&supernet, &[device], &recal, 40, &valid).unwrap();
    let mut two = SupernetEvaluator::new(&supernet, &[device, device], &recal, 40, &valid).unwrap();
    assert_eq!(one.context(), two.context());
    assert_eq!(two.parallelism(), 2);
    let a = one.evaluate(&archs).unwrap();
    let mut reversed = archs.clone();
    reversed.reverse();
    let mut b = two.evaluate(&reversed).unwrap();
    b.reverse();
    assert_eq!(a, b, "recalibration makes each result independent of earlier evaluations");
    assert!(a.iter().all(|e| (0.0..=1.0).contains(&e.top1) && e.top5 >= e.top1));
    // Another data sample is another cache context.
    let other = loader(true, 32);
    let three = SupernetEvaluator::new(&supernet, &[device], &other, 32, &valid).unwrap();
    assert_ne!(one.context(), three.context());
}

// The evaluator measures each genome's extracted network with its batch norms folded;
// that must score what the recalibrated supernet path scores.
#[test]
fn folded_evaluation_scores_what_the_supernet_path_scores() {
    let Fixture { space, supernet, recal, valid, archs } = Fixture::new();
    let mut evaluator = SupernetEvaluator::new(&supernet, &[Default::default()], &recal, 40, &valid).unwrap();
    let folded = evaluator.evaluate(&archs).unwrap();
    for (arch, folded) in archs.iter().zip(folded) {
        let plan = space.decode(arch).unwrap();
        recalibrate_supernet(&supernet, &plan, &recal, 40).unwrap();
        let (top1, top5) = supernet.accuracy(&valid, Some(&plan)).unwrap();
        assert_eq!((folded.top1, folded.top5), (top1, top5), "{arch}");
    }
}

#[test]
fn bad_checkpoints_and_empty_data_are_errors() {
    let device = Default::default();
    let tiny = SearchSpace::tiny(1, 10);
    let supernet = SupernetConfig::new(tiny.clone()).init::<Flex>(&device).unwrap();
    let dir = std::env::temp_dir().join(format!("shufflenas-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (recal, valid) = (loader(true, 16), loader(false, 16));
    let arch = [Architecture::random_seeded(&tiny, 7)];
    // (The evaluator initialises the fresh supernet's lazy parameters, so the saved
    // copy holds the same values.)
    let a = SupernetEvaluator::new(&supernet, &[device], &recal, 16, &valid).unwrap().evaluate(&arch).unwrap();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    supernet.clone().save_file(dir.join("model"), &recorder).unwrap();
    let loaded = load_supernet::<Flex>(&dir.join("model.mpk"), &tiny, &device).unwrap();
    let b = SupernetEvaluator::new(&loaded, &[device], &recal, 16, &valid).unwrap().evaluate(&arch).unwrap();
    assert_eq!(a, b);

    // Another space (10 → 5 classes, another width, fewer blocks) does not load.
    let fewer_blocks = SearchSpace { stage_repeats: vec![1, 1, 2, 1], ..tiny.clone() };
    for space in [SearchSpace::tiny(1, 5), SearchSpace::small_input(1, 10), fewer_blocks] {
        let err = load_supernet::<Flex>(&dir.join("model.mpk"), &space, &device).unwrap_err();
        assert!(matches!(err, SearchError::Checkpoint(_)) && err.to_string().contains("does not match"), "{err}");
    }
    // Missing and corrupt files name the path.
    let err = load_supernet::<Flex>(&dir.join("nothing"), &tiny, &device).unwrap_err();
    assert!(err.to_string().contains("nothing"), "{err}");
    std::fs::write(dir.join("bad.mpk"), b"not a checkpoint").unwrap();
    let err = load_supernet::<Flex>(&dir.join("bad.mpk"), &tiny, &device).unwrap_err();
    assert!(err.to_string().contains("bad.mpk"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);

    let err = SupernetEvaluator::new(&supernet, &[device], &recal, 0, &valid).err().unwrap();
    assert!(matches!(err, SearchError::EmptyValidation(_)), "{err}");
}
