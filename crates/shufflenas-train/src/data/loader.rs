//! Shuffled, augmented mini-batches, transformed on all cores with rayon.

use std::sync::Arc;

use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{DataError, ImageDataset, Transform};

/// One mini-batch on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[n, c, h, w]` row-major.
    pub images: Vec<f32>,
    /// Shape of `images`.
    pub shape: [usize; 4],
    /// Class of each image.
    pub labels: Vec<i64>,
}

impl Batch {
    /// The batch as tensors on `device`: images `[N, C, H, W]`, labels `[N]`.
    pub fn to_tensors<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        let images = Tensor::from_data(TensorData::new(self.images.clone(), self.shape), device);
        let labels = Tensor::from_data(TensorData::new(self.labels.clone(), [self.labels.len()]), device);
        (images, labels)
    }

    /// Images and labels `rows` of the batch, as a batch of their own.
    ///
    /// # Panics
    /// If `rows` reaches past the batch.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Batch {
        let [_, c, h, w] = self.shape;
        let per_image = c * h * w;
        Batch {
            images: self.images[rows.start * per_image..rows.end * per_image].to_vec(),
            shape: [rows.len(), c, h, w],
            labels: self.labels[rows].to_vec(),
        }
    }
}

/// Splits a dataset into mini-batches, in a seeded order per epoch, with a seeded
/// transform per item: the same (seed, epoch) always gives the same batches.
#[derive(Clone)]
pub struct BatchLoader {
    dataset: Arc<dyn ImageDataset>,
    transform: Transform,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
}

impl BatchLoader {
    /// A loader over `dataset`.
    ///
    /// # Errors
    /// [`DataError::Empty`] for an empty dataset or a zero batch size,
    /// [`DataError::Transform`] for an invalid transform.
    pub fn new(
        dataset: Arc<dyn ImageDataset>,
        transform: Transform,
        batch_size: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        if dataset.is_empty() {
            return Err(DataError::Empty("the dataset has no items".into()));
        }
        if batch_size == 0 {
            return Err(DataError::Empty("batch size must be positive".into()));
        }
        transform.check()?;
        Ok(Self { dataset, transform, batch_size, shuffle: true, drop_last: false, seed })
    }

    /// Keep the dataset order (evaluation).
    pub fn without_shuffle(mut self) -> Self {
        self.shuffle = false;
        self
    }

    /// Leave out the last incomplete batch (training with BN).
    pub fn drop_last(mut self) -> Self {
        self.drop_last = true;
        self
    }

    /// The same items and order (seed, shuffling, dropped last batch) with another
    /// transform: e.g. the training images with the evaluation transform, for BN
    /// recalibration.
    ///
    /// # Errors
    /// [`DataError::Transform`] for an invalid transform.
    pub fn with_transform(mut self, transform: Transform) -> Result<Self, DataError> {
        transform.check()?;
        self.transform = transform;
        Ok(self)
    }

    /// The transform applied to each item.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.dataset.len()
    }

    /// Whether the dataset is empty (never: `new` rejects it).
    pub fn is_empty(&self) -> bool {
        self.dataset.is_empty()
    }

    /// Images per batch (the last one of an epoch may hold fewer).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last { self.len() / self.batch_size } else { self.len().div_ceil(self.batch_size) }
    }

    /// Images in the smallest batch of an epoch: the last one unless it is dropped or
    /// the batch size divides the dataset.
    pub fn smallest_batch(&self) -> usize {
        match self.len() % self.batch_size {
            0 => self.batch_size,
            _ if self.drop_last && self.len() >= self.batch_size => self.batch_size,
            rest => rest,
        }
    }

    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if self.shuffle {
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(
                self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
        }
        order
    }

    /// Batch `index` of `epoch`.
    ///
    /// # Errors
    /// The first [`DataError`] of its items (e.g. a corrupt image, named).
    pub fn batch(&self, epoch: usize, index: usize) -> Result<Batch, DataError> {
        let order = self.order(epoch);
        let start = index * self.batch_size;
        let end = (start + self.batch_size).min(order.len());
        self.assemble(epoch, &order[start.min(end)..end])
    }

    /// All batches of `epoch`, in order.
    pub fn epoch(&self, epoch: usize) -> impl Iterator<Item = Result<Batch, DataError>> + '_ {
        let order = self.order(epoch);
        (0..self.batches_per_epoch()).map(move |b| {
            let start = b * self.batch_size;
            let end = (start + self.batch_size).min(order.len());
            self.assemble(epoch, &order[start..end])
        })
    }

    fn assemble(&self, epoch: usize, items: &[usize]) -> Result<Batch, DataError> {
        let seed = self.seed;
        let transformed: Vec<(Vec<f32>, usize)> = items
            .par_iter()
            .map(|&item| {
                let (image, label) = self.dataset.get(item)?;
                let stream = seed ^ ((epoch as u64) << 32) ^ (item as u64).wrapping_mul(0xD134_2543_DE82_EF95);
                let mut rng = ChaCha8Rng::seed_from_u64(stream);
                Ok((self.transform.apply(&image, &mut rng), label))
            })
            .collect::<Result<_, DataError>>()?;
        let size = self.transform.size();
        let per_image = transformed.first().map_or(0, |(v, _)| v.len());
        let channels = per_image / (size * size).max(1);
        let mut images = Vec::with_capacity(per_image * transformed.len());
        let mut labels = Vec::with_capacity(transformed.len());
        for (values, label) in transformed {
            images.extend_from_slice(&values);
            labels.push(label as i64);
        }
        Ok(Batch { shape: [labels.len(), channels, size, size], images, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Normalization, embedded_fashion_mnist};

    #[test]
    fn epochs_are_reproducible_and_cover_every_item_once() {
        let data = Arc::new(embedded_fashion_mnist(false).unwrap());
        let transform = Transform::SmallTrain { size: 32, padding: 2, norm: Normalization::fashion_mnist() };
        let loader = BatchLoader::new(data, transform, 128, 7).unwrap();
        assert_eq!(loader.batches_per_epoch(), 8);
        let first: Vec<Batch> = loader.epoch(0).map(Result::unwrap).collect();
        assert_eq!(first[0].shape, [128, 1, 32, 32]);
        assert_eq!(first.last().unwrap().labels.len(), 1000 - 7 * 128);
        assert_eq!(loader.smallest_batch(), 1000 - 7 * 128);
        assert_eq!(loader.clone().drop_last().smallest_batch(), 128);
        assert_eq!(loader.batch(0, 3).unwrap(), first[3]);
        let again: Vec<Batch> = loader.epoch(0).map(Result::unwrap).collect();
        assert_eq!(first, again);
        let next = loader.batch(1, 0).unwrap();
        assert_ne!(next.labels, first[0].labels);
        let mut counts = [0usize; 10];
        for batch in &first {
            for &l in &batch.labels {
                counts[l as usize] += 1;
            }
        }
        assert_eq!(counts, [100; 10]);
    }

    #[test]
    fn an_empty_dataset_is_an_error() {
        let data = embedded_fashion_mnist(false).unwrap().subset(Vec::new()).unwrap();
        let transform = Transform::SmallEval { size: 32, norm: Normalization::fashion_mnist() };
        assert!(matches!(BatchLoader::new(Arc::new(data), transform, 8, 0), Err(DataError::Empty(_))));
    }

    #[test]
    fn invalid_transforms_are_named() {
        let data = Arc::new(embedded_fashion_mnist(false).unwrap());
        let norm = Normalization::fashion_mnist();
        let bad = [
            (Transform::SmallEval { size: 0, norm: norm.clone() }, "size must be positive"),
            (
                Transform::SmallEval { size: 32, norm: Normalization { mean: vec![0.5], std: vec![0.0] } },
                "positive finite",
            ),
            (Transform::SmallEval { size: 32, norm: Normalization { mean: vec![], std: vec![] } }, "one mean per"),
            (
                Transform::SmallEval { size: 32, norm: Normalization { mean: vec![0.5, 0.5], std: vec![1.0] } },
                "one mean per",
            ),
            (Transform::ImageNetTrain { size: 32, jitter: -0.4, lighting: 0.1, norm: norm.clone() }, "jitter strength"),
            (
                Transform::ImageNetTrain { size: 32, jitter: 0.4, lighting: f32::NAN, norm: norm.clone() },
                "lighting strength",
            ),
        ];
        for (transform, expected) in bad {
            let err = BatchLoader::new(data.clone(), transform.clone(), 8, 0).err().unwrap().to_string();
            assert!(err.contains(expected), "{transform:?}: {err}");
        }
        let good = BatchLoader::new(data, Transform::SmallEval { size: 32, norm }, 8, 0).unwrap();
        assert!(good.with_transform(Transform::SmallEval { size: 0, norm: Normalization::fashion_mnist() }).is_err());
    }

    // A subset of a subset maps through both; an index past the end is named, not a panic.
    #[test]
    fn subsets_compose_and_check_their_indices() {
        let data = embedded_fashion_mnist(false).unwrap();
        let labels = data.labels();
        let tail = data.subset((990..1000).collect()).unwrap();
        let picked = tail.subset(vec![9, 0]).unwrap();
        assert_eq!(picked.labels(), [labels[999], labels[990]]);
        let err = tail.subset(vec![3, 10]).unwrap_err().to_string();
        assert!(err.contains("index 10 is past the end of the dataset (10 items)"), "{err}");
        assert!(data.subset(vec![1000]).is_err());
    }
}
