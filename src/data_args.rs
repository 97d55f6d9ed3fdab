//! Data-source flags shared by the training examples.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use shufflenas_model::SearchSpace;
use shufflenas_train::data::{
    BatchLoader, DataError, ImageDataset, ImageFolder, ImageFolderOptions, InMemoryDataset, Normalization, Transform,
    embedded_fashion_mnist, load_cifar10, load_cifar100, load_fashion_mnist,
};

/// Dataset formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// The embedded Fashion-MNIST subset (no files needed).
    Embedded,
    /// IDX files (MNIST / Fashion-MNIST names), plain or .gz.
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-100 binary files.
    Cifar100,
    /// `train/<class>/*.jpg` and `val/<class>/*.jpg`.
    Folder,
}

/// Which search space the data is searched in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpaceArg {
    /// The seed's space: the small-input preset (stem stride 1) for 32-pixel data,
    /// the OneShot-S+ space otherwise.
    Seed,
    /// The seed's topology at a fifth to a quarter of its widths (16–128 channels): fast on a CPU.
    Tiny,
}

/// Where the data comes from and how it is batched.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Dataset format.
    #[arg(long, value_enum, default_value = "embedded")]
    pub format: DataFormat,
    /// Search space.
    #[arg(long, value_enum, default_value = "seed")]
    pub space: SpaceArg,
    /// Dataset directory (not used by `embedded`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Use only the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    pub train_limit: usize,
    /// Use only the first N validation images (0: all).
    #[arg(long, default_value_t = 0)]
    pub val_limit: usize,
    /// Input side for folder data (small formats use 32).
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Skip (and count) corrupt images of folder data instead of failing.
    #[arg(long)]
    pub skip_corrupt: bool,
    /// Hold out N training images (IDX, CIFAR, embedded data; a fixed-seed draw) as the
    /// architecture-search validation split, so that the test split stays unseen
    /// until the final model is measured (0: search on the validation split).
    #[arg(long, default_value_t = 0)]
    pub holdout: usize,
}

/// Training and validation loaders with their image geometry.
pub struct Loaders {
    /// Training batches (shuffled, augmented).
    pub train: BatchLoader,
    /// Validation batches (in order, no augmentation).
    pub valid: BatchLoader,
    /// Training images with the evaluation transform in a seeded random order, for BN
    /// recalibration of search candidates.
    pub recalibration: BatchLoader,
    /// The split the search validates candidates on: the held-out training images
    /// (`--holdout`), otherwise the validation split.
    pub search_valid: BatchLoader,
    /// Image channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
    /// Network input side.
    pub size: usize,
    /// The chosen search space preset.
    pub space: SpaceArg,
}

impl Loaders {
    /// The search space for this data: `--space seed` is the small-input preset (stem
    /// stride 1) for 32-pixel data and the OneShot-S+ space otherwise, `--space tiny`
    /// the tiny preset; input size, image channels and classes from the data.
    pub fn search_space(&self) -> SearchSpace {
        let base = match (self.space, self.size) {
            (SpaceArg::Tiny, _) => SearchSpace::tiny(self.channels, self.classes),
            (SpaceArg::Seed, 32) => SearchSpace::small_input(self.channels, self.classes),
            (SpaceArg::Seed, _) => SearchSpace::oneshot_plus(),
        };
        SearchSpace { input_size: self.size, input_channels: self.channels, num_classes: self.classes, ..base }
    }
}

fn limit(set: InMemoryDataset, n: usize) -> Result<InMemoryDataset, DataError> {
    if n == 0 || n >= set.len() { Ok(set) } else { set.subset((0..n).collect()) }
}

/// Seed of the held-out split: fixed, so that the supernet (trained without it) and the
/// search (validating on it) hold out the same images whatever their run seeds.
const HOLDOUT_SEED: u64 = 0x4f1d_0e7d;

/// Splits `train` into (kept, held out) with `held` images drawn by a fixed-seed
/// shuffle, each part in dataset order: the last images of a class-ordered file (the
/// embedded subset is) would hold out a few classes only.
fn split_holdout(train: &InMemoryDataset, held: usize) -> Result<(InMemoryDataset, InMemoryDataset), DataError> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(HOLDOUT_SEED));
    let (mut out, mut kept) = (order[..held].to_vec(), order[held..].to_vec());
    out.sort_unstable();
    kept.sort_unstable();
    Ok((train.subset(kept)?, train.subset(out)?))
}

impl DataArgs {
    /// Opens the dataset and builds the loaders.
    ///
    /// # Errors
    /// [`DataError`] naming the missing or invalid file.
    pub fn loaders(&self, seed: u64) -> Result<Loaders, DataError> {
        let dir = || {
            self.data
                .clone()
                .ok_or_else(|| DataError::Empty(format!("--data DIR is required for --format {:?}", self.format)))
        };
        let small = |train: InMemoryDataset, valid: InMemoryDataset, norm: Normalization| {
            let (channels, classes) = (train.channels(), train.num_classes());
            if valid.channels() != channels {
                return Err(DataError::SplitMismatch {
                    path: format!(
                        "the test split of {}",
                        self.data.as_ref().map_or_else(|| "the embedded data".into(), |d| d.display().to_string())
                    ),
                    reason: format!("{} channels per image, the training split has {channels}", valid.channels()),
                });
            }
            let train = limit(train, self.train_limit)?;
            if self.holdout >= train.len() {
                let limited = match self.train_limit {
                    0 => String::new(),
                    n => format!(" after --train-limit {n}"),
                };
                return Err(DataError::Empty(format!(
                    "--holdout {} leaves no training images (the training split has {}{limited})",
                    self.holdout,
                    train.len()
                )));
            }
            let (train, held) = split_holdout(&train, self.holdout)?;
            let valid = limit(valid, self.val_limit)?;
            let t = Transform::SmallTrain { size: 32, padding: 4, norm: norm.clone() };
            let v = Transform::SmallEval { size: 32, norm };
            let valid = BatchLoader::new(Arc::new(valid), v.clone(), self.batch, seed)?.without_shuffle();
            let search_valid = if self.holdout > 0 {
                BatchLoader::new(Arc::new(held), v.clone(), self.batch, seed)?.without_shuffle()
            } else {
                valid.clone()
            };
            let train = Arc::new(train);
            Ok(Loaders {
                recalibration: BatchLoader::new(train.clone(), v, self.batch, seed ^ 0x5eed)?,
                train: BatchLoader::new(train, t, self.batch, seed)?.drop_last(),
                valid,
                search_valid,
                channels,
                classes,
                size: 32,
                space: self.space,
            })
        };
        match self.format {
            DataFormat::Embedded => {
                if let Some(d) = &self.data {
                    return Err(DataError::Empty(format!(
                        "--data {} is not read with --format embedded (the default): add --format idx, cifar10, \
                         cifar100 or folder",
                        d.display()
                    )));
                }
                small(embedded_fashion_mnist(true)?, embedded_fashion_mnist(false)?, Normalization::fashion_mnist())
            }
            DataFormat::Idx => {
                let d = dir()?;
                small(load_fashion_mnist(&d, true)?, load_fashion_mnist(&d, false)?, Normalization::fashion_mnist())
            }
            DataFormat::Cifar10 => {
                let d = dir()?;
                small(load_cifar10(&d, true)?, load_cifar10(&d, false)?, Normalization::cifar10())
            }
            DataFormat::Cifar100 => {
                let d = dir()?;
                small(load_cifar100(&d, true)?, load_cifar100(&d, false)?, Normalization::cifar10())
            }
            DataFormat::Folder => {
                if self.holdout > 0 {
                    return Err(DataError::Empty(
                        "--holdout is for IDX, CIFAR and embedded data; give folder data its own val/ split".into(),
                    ));
                }
                if self.train_limit > 0 || self.val_limit > 0 {
                    return Err(DataError::Empty(
                        "--train-limit and --val-limit are for IDX, CIFAR and embedded data; folder data uses every \
                         image of train/ and val/"
                            .into(),
                    ));
                }
                let d = dir()?;
                let options = ImageFolderOptions { skip_corrupt: self.skip_corrupt };
                let train = ImageFolder::open(&d.join("train"), options)?;
                let valid = ImageFolder::open(&d.join("val"), options)?;
                for (split, folder) in [("train", &train), ("val", &valid)] {
                    if let Some(first) = folder.skipped().first() {
                        eprintln!(
                            "--skip-corrupt: skipped {} unreadable images of {}/{split} (first: {})",
                            folder.skipped().len(),
                            d.display(),
                            first.display()
                        );
                    }
                }
                train.check_same_classes(&valid, &d.join("val"))?;
                let classes = train.num_classes();
                let norm = Normalization::imagenet();
                let size = self.image_size;
                let t = Transform::ImageNetTrain { size, jitter: 0.4, lighting: 0.1, norm: norm.clone() };
                let v = Transform::ImageNetEval { size, norm };
                let train = Arc::new(train);
                let valid = BatchLoader::new(Arc::new(valid), v.clone(), self.batch, seed)?.without_shuffle();
                Ok(Loaders {
                    recalibration: BatchLoader::new(train.clone(), v, self.batch, seed ^ 0x5eed)?,
                    train: BatchLoader::new(train, t, self.batch, seed)?.drop_last(),
                    search_valid: valid.clone(),
                    valid,
                    channels: 3,
                    classes,
                    size,
                    space: self.space,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The embedded subset is in class-ordered runs: its last 500 images held 89 of class
    // 0 and 3 of class 1. The shuffled draw holds out every class, disjoint from the
    // kept images, and the same images every time.
    #[test]
    fn the_holdout_is_drawn_from_every_class_and_is_fixed() {
        let train = embedded_fashion_mnist(true).unwrap();
        let (kept, held) = split_holdout(&train, 500).unwrap();
        assert_eq!((kept.len(), held.len()), (train.len() - 500, 500));
        let mut per_class = [0usize; 10];
        for label in held.labels() {
            per_class[label] += 1;
        }
        assert!(per_class.iter().all(|&n| (25..=75).contains(&n)), "{per_class:?}");
        let (_, again) = split_holdout(&train, 500).unwrap();
        assert_eq!(again.labels(), held.labels());
        let mut all: Vec<usize> = kept.labels().into_iter().chain(held.labels()).collect();
        let mut original = train.labels();
        all.sort_unstable();
        original.sort_unstable();
        assert_eq!(all, original);
    }

    #[test]
    fn data_flags_the_format_does_not_read_are_errors() {
        let args = |format, data: Option<&str>, train_limit| DataArgs {
            format,
            space: SpaceArg::Tiny,
            data: data.map(PathBuf::from),
            batch: 16,
            train_limit,
            val_limit: 0,
            image_size: 224,
            skip_corrupt: false,
            holdout: 0,
        };
        let err = args(DataFormat::Embedded, Some("/usr/share/datasets/fashion-mnist"), 0).loaders(0).err().unwrap();
        assert!(err.to_string().contains("is not read with --format embedded"), "{err}");
        let err = args(DataFormat::Folder, Some("/nonexistent"), 100).loaders(0).err().unwrap();
        assert!(err.to_string().contains("--train-limit and --val-limit are for"), "{err}");
        let err = DataArgs { holdout: 400, ..args(DataFormat::Embedded, None, 400) }.loaders(0).err().unwrap();
        assert!(err.to_string().contains("after --train-limit 400"), "{err}");
    }
}
