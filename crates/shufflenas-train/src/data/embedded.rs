//! The embedded default data: a stratified Fashion-MNIST subset shipped in the
//! repository (`crates/shufflenas-train/data/`, MIT licence, see
//! `LICENSE-fashion-mnist.txt` there): the first 500 training and the first 100 test
//! images of each class.

use super::idx::parse_idx;
use super::{DataError, InMemoryDataset};
use std::io::Read;

const TRAIN_IMAGES: &[u8] = include_bytes!("../../data/fashion-mnist-subset-train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../../data/fashion-mnist-subset-train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../../data/fashion-mnist-subset-test-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../../data/fashion-mnist-subset-test-labels-idx1-ubyte.gz");

fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).map_err(|e| DataError::Format {
        format: "gzip",
        path: name.to_string(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// The embedded Fashion-MNIST subset: 5,000 training or 1,000 test images, 28×28×1,
/// 10 classes, balanced.
///
/// # Errors
/// Only if the embedded bytes were damaged at build time.
pub fn embedded_fashion_mnist(train: bool) -> Result<InMemoryDataset, DataError> {
    let (images, labels, name) = if train {
        (TRAIN_IMAGES, TRAIN_LABELS, "embedded train")
    } else {
        (TEST_IMAGES, TEST_LABELS, "embedded test")
    };
    let (dims, pixels) = parse_idx(&gunzip(images, name)?, name)?;
    let (_, labels) = parse_idx(&gunzip(labels, name)?, name)?;
    InMemoryDataset::new(name, (dims[1], dims[2], 1), pixels, labels.into_iter().map(u16::from).collect(), 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageDataset;

    #[test]
    fn the_embedded_subset_is_balanced() {
        for (train, per_class) in [(true, 500), (false, 100)] {
            let set = embedded_fashion_mnist(train).unwrap();
            assert_eq!(set.len(), 10 * per_class);
            let mut counts = [0usize; 10];
            for label in set.labels() {
                counts[label] += 1;
            }
            assert!(counts.iter().all(|&c| c == per_class), "{counts:?}");
        }
    }
}
