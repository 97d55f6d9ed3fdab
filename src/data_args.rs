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
    /// Hold out the last N training images (IDX, CIFAR, embedded data) as the
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
                return Err(DataError::Empty(format!(
                    "--holdout {} leaves no training images (the training split has {})",
                    self.holdout,
                    train.len()
                )));
            }
            let kept = train.len() - self.holdout;
            let held = train.subset((kept..train.len()).collect())?;
            let train = train.subset((0..kept).collect())?;
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
                let d = dir()?;
                let options = ImageFolderOptions { skip_corrupt: self.skip_corrupt };
                let train = ImageFolder::open(&d.join("train"), options)?;
                let valid = ImageFolder::open(&d.join("val"), options)?;
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
