//! Image datasets in the formats users bring, the embedded Fashion-MNIST subset,
//! the seed's transforms and multi-threaded batching.
//!
//! Every dataset yields 8-bit images (`H × W × C`, row-major) and a class index; the
//! transforms turn them into normalised `C × H × W` floats.

mod cifar;
mod embedded;
mod folder;
mod idx;
mod loader;
mod transform;

pub use cifar::{load_cifar10, load_cifar100};
pub use embedded::embedded_fashion_mnist;
pub use folder::{ImageFolder, ImageFolderOptions};
pub use idx::{load_fashion_mnist, load_idx, parse_idx};
pub use loader::{Batch, BatchLoader};
pub use transform::{Normalization, Transform};

use std::sync::Arc;

/// Errors of reading data. Each names the file (and the item) it is about.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    /// The file or directory cannot be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The path.
        path: String,
        /// Cause.
        reason: String,
    },
    /// The file is not in the expected format, or is truncated.
    #[error("invalid {format} file {path}: {reason}")]
    Format {
        /// Format name (IDX, CIFAR, image).
        format: &'static str,
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A label outside the class range.
    #[error("{path}: label {label} of item {index} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The path.
        path: String,
        /// Item index.
        index: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// Two splits of one dataset that disagree (class folders, channels per image).
    #[error("{path} does not match the training split: {reason}")]
    SplitMismatch {
        /// The split that differs.
        path: String,
        /// What differs.
        reason: String,
    },
    /// A dataset with nothing in it.
    #[error("{0}")]
    Empty(String),
    /// A transform that cannot be applied (zero size, a bad normalisation or strength).
    #[error("invalid transform: {0}")]
    Transform(String),
}

pub(crate) fn io_error(path: &std::path::Path, e: impl std::fmt::Display) -> DataError {
    DataError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// An 8-bit image, `height × width × channels`, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// `height · width · channels` bytes.
    pub pixels: Vec<u8>,
}

/// A labelled image collection.
pub trait ImageDataset: Send + Sync {
    /// Number of items.
    fn len(&self) -> usize;
    /// Whether there are no items.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes.
    fn num_classes(&self) -> usize;
    /// Channels of every image.
    fn channels(&self) -> usize;
    /// Item `index`: image and class.
    ///
    /// # Errors
    /// [`DataError`] when the item cannot be read (e.g. a corrupt image file).
    fn get(&self, index: usize) -> Result<(Image, usize), DataError>;
}

/// Images held in memory (IDX and CIFAR files are read whole).
#[derive(Debug, Clone)]
pub struct InMemoryDataset {
    height: usize,
    width: usize,
    channels: usize,
    classes: usize,
    pixels: Arc<Vec<u8>>,
    labels: Arc<Vec<u16>>,
    indices: Option<Arc<Vec<usize>>>,
}

impl InMemoryDataset {
    /// Images `[n, height, width, channels]` as bytes, one label each.
    ///
    /// # Errors
    /// [`DataError::Format`] on a size mismatch, [`DataError::LabelOutOfRange`].
    pub fn new(
        source: &str,
        (height, width, channels): (usize, usize, usize),
        pixels: Vec<u8>,
        labels: Vec<u16>,
        classes: usize,
    ) -> Result<Self, DataError> {
        let per_image = height.checked_mul(width).and_then(|n| n.checked_mul(channels)).unwrap_or(0);
        if per_image == 0 || labels.len().checked_mul(per_image) != Some(pixels.len()) {
            return Err(DataError::Format {
                format: "dataset",
                path: source.to_string(),
                reason: format!("{} bytes of pixels for {} labels of {per_image} bytes", pixels.len(), labels.len()),
            });
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| usize::from(**l) >= classes) {
            return Err(DataError::LabelOutOfRange { path: source.to_string(), index, label: label.into(), classes });
        }
        Ok(Self { height, width, channels, classes, pixels: Arc::new(pixels), labels: Arc::new(labels), indices: None })
    }

    /// A view of the items at `indices` (no copy), in that order.
    ///
    /// # Errors
    /// [`DataError::Empty`] naming the first index past the end.
    pub fn subset(&self, indices: Vec<usize>) -> Result<Self, DataError> {
        let len = self.len();
        if let Some(&index) = indices.iter().find(|&&index| index >= len) {
            return Err(DataError::Empty(format!("subset index {index} is past the end of the dataset ({len} items)")));
        }
        let mapped = match self.indices.as_deref() {
            Some(base) => indices.into_iter().map(|i| base[i]).collect(),
            None => indices,
        };
        Ok(Self { indices: Some(Arc::new(mapped)), ..self.clone() })
    }

    /// Labels of all items, in order.
    pub fn labels(&self) -> Vec<usize> {
        (0..self.len()).map(|i| usize::from(self.labels[self.resolve(i)])).collect()
    }

    fn resolve(&self, index: usize) -> usize {
        self.indices.as_ref().map_or(index, |ids| ids[index])
    }
}

impl ImageDataset for InMemoryDataset {
    fn len(&self) -> usize {
        self.indices.as_ref().map_or(self.labels.len(), |ids| ids.len())
    }

    fn num_classes(&self) -> usize {
        self.classes
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn get(&self, index: usize) -> Result<(Image, usize), DataError> {
        if index >= self.len() {
            return Err(DataError::Empty(format!("item {index} is past the end ({} items)", self.len())));
        }
        let i = self.resolve(index);
        let size = self.height * self.width * self.channels;
        let pixels = self.pixels[i * size..(i + 1) * size].to_vec();
        let image = Image { height: self.height, width: self.width, channels: self.channels, pixels };
        Ok((image, usize::from(self.labels[i])))
    }
}
