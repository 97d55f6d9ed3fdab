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

/// Where the data comes from and how it is batched.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Dataset format.
    #[arg(long, value_enum, default_value = "embedded")]
    pub format: DataFormat,
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
}

/// Training and validation loaders with their image geometry.
pub struct Loaders {
    /// Training batches (shuffled, augmented).
    pub train: BatchLoader,
    /// Validation batches (in order, no augmentation).
    pub valid: BatchLoader,
    /// Image channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
    /// Network input side.
    pub size: usize,
}

impl Loaders {
    /// The seed's search space for this data: the small-input preset (stem stride 1)
    /// for 32-pixel data, otherwise the OneShot-S+ space at the data's size; image
    /// channels and classes from the data.
    pub fn search_space(&self) -> SearchSpace {
        let base = if self.size == 32 {
            SearchSpace::small_input(self.channels, self.classes)
        } else {
            SearchSpace::oneshot_plus()
        };
        SearchSpace { input_size: self.size, input_channels: self.channels, num_classes: self.classes, ..base }
    }
}

fn limit(set: InMemoryDataset, n: usize) -> InMemoryDataset {
    if n == 0 || n >= set.len() { set } else { set.subset((0..n).collect()) }
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
            let train = limit(train, self.train_limit);
            let valid = limit(valid, self.val_limit);
            let t = Transform::SmallTrain { size: 32, padding: 4, norm: norm.clone() };
            let v = Transform::SmallEval { size: 32, norm };
            Ok(Loaders {
                train: BatchLoader::new(Arc::new(train), t, self.batch, seed)?.drop_last(),
                valid: BatchLoader::new(Arc::new(valid), v, self.batch, seed)?.without_shuffle(),
                channels,
                classes,
                size: 32,
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
                let d = dir()?;
                let options = ImageFolderOptions { skip_corrupt: self.skip_corrupt };
                let train = ImageFolder::open(&d.join("train"), options)?;
                let valid = ImageFolder::open(&d.join("val"), options)?;
                let classes = train.num_classes();
                let norm = Normalization::imagenet();
                let size = self.image_size;
                let t = Transform::ImageNetTrain { size, jitter: 0.4, lighting: 0.1, norm: norm.clone() };
                let v = Transform::ImageNetEval { size, norm };
                Ok(Loaders {
                    train: BatchLoader::new(Arc::new(train), t, self.batch, seed)?.drop_last(),
                    valid: BatchLoader::new(Arc::new(valid), v, self.batch, seed)?.without_shuffle(),
                    channels: 3,
                    classes,
                    size,
                })
            }
        }
    }
}
