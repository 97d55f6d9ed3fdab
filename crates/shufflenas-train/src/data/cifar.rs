//! CIFAR-10 / CIFAR-100 binary batches.
//!
//! CIFAR-10 records are 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024
//! blue, row-major 32×32); CIFAR-100 records carry a coarse and a fine label byte.

use std::path::{Path, PathBuf};

use super::{DataError, InMemoryDataset, io_error};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;

fn read_records(
    files: &[PathBuf],
    label_bytes: usize,
    label_offset: usize,
    classes: usize,
) -> Result<InMemoryDataset, DataError> {
    let record = label_bytes + 3 * PLANE;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(DataError::Format {
                format: "CIFAR",
                path: path.display().to_string(),
                reason: format!("{} bytes is not a whole number of {record}-byte records", bytes.len()),
            });
        }
        for (i, chunk) in bytes.chunks_exact(record).enumerate() {
            let label = usize::from(chunk[label_offset]);
            if label >= classes {
                return Err(DataError::LabelOutOfRange { path: path.display().to_string(), index: i, label, classes });
            }
            labels.push(label as u16);
            let planes = &chunk[label_bytes..];
            // Planar RGB → interleaved HWC.
            for p in 0..PLANE {
                pixels.extend_from_slice(&[planes[p], planes[PLANE + p], planes[2 * PLANE + p]]);
            }
        }
    }
    let source = files.first().map(|p| p.display().to_string()).unwrap_or_default();
    InMemoryDataset::new(&source, (SIDE, SIDE, 3), pixels, labels, classes)
}

fn existing(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>, DataError> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            if path.is_file() { Ok(path) } else { Err(io_error(&path, "not found")) }
        })
        .collect()
}

/// CIFAR-10 from the directory of `data_batch_{1..5}.bin` and `test_batch.bin`.
///
/// # Errors
/// [`DataError`] naming the missing, truncated or invalid file.
pub fn load_cifar10(dir: &Path, train: bool) -> Result<InMemoryDataset, DataError> {
    let names: Vec<&str> = if train {
        vec!["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
    } else {
        vec!["test_batch.bin"]
    };
    read_records(&existing(dir, &names)?, 1, 0, 10)
}

/// CIFAR-100 (fine labels) from the directory of `train.bin` and `test.bin`.
///
/// # Errors
/// [`DataError`] naming the missing, truncated or invalid file.
pub fn load_cifar100(dir: &Path, train: bool) -> Result<InMemoryDataset, DataError> {
    read_records(&existing(dir, &[if train { "train.bin" } else { "test.bin" }])?, 2, 1, 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageDataset;

    fn record(label: &[u8], red: u8) -> Vec<u8> {
        let mut r = label.to_vec();
        r.extend(std::iter::repeat_n(red, PLANE));
        r.extend(std::iter::repeat_n(1, PLANE));
        r.extend(std::iter::repeat_n(2, PLANE));
        r
    }

    #[test]
    fn reads_cifar10_and_cifar100_fixtures() {
        let dir = std::env::temp_dir().join(format!("shufflenas-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("test_batch.bin"), [record(&[3], 200), record(&[7], 9)].concat()).unwrap();
        let set = load_cifar10(&dir, false).unwrap();
        assert_eq!(set.len(), 2);
        let (image, label) = set.get(0).unwrap();
        assert_eq!(label, 3);
        assert_eq!(&image.pixels[..6], &[200, 1, 2, 200, 1, 2]);
        std::fs::write(dir.join("test.bin"), record(&[4, 42], 5)).unwrap();
        assert_eq!(load_cifar100(&dir, false).unwrap().get(0).unwrap().1, 42);

        // Truncated file, bad label, missing file: each names the file.
        std::fs::write(dir.join("test_batch.bin"), &record(&[3], 0)[..100]).unwrap();
        assert!(load_cifar10(&dir, false).unwrap_err().to_string().contains("test_batch.bin"));
        std::fs::write(dir.join("test_batch.bin"), record(&[11], 0)).unwrap();
        assert!(matches!(load_cifar10(&dir, false).unwrap_err(), DataError::LabelOutOfRange { label: 11, .. }));
        assert!(load_cifar10(&dir, true).unwrap_err().to_string().contains("data_batch_1.bin"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
