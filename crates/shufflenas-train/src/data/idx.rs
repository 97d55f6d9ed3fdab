//! IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.

use std::io::Read;
use std::path::Path;

use super::{DataError, InMemoryDataset, io_error};

fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| DataError::Format {
            format: "gzip",
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes of unsigned bytes (`0x08` type): returns the dimensions and data.
///
/// # Errors
/// [`DataError::Format`] for a wrong magic, a non-byte type or a truncated file.
pub fn parse_idx(bytes: &[u8], path: &str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bad = |reason: String| DataError::Format { format: "IDX", path: path.to_string(), reason };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("wrong magic: expected 0x0000 then a type and a rank".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!("data type {:#04x} is not unsigned byte (0x08)", bytes[2])));
    }
    let rank = usize::from(bytes[3]);
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(bad(format!("truncated header for rank {rank}")));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow the address space")))?;
    let data = &bytes[header..];
    if data.len() != count {
        return Err(bad(format!("dimensions {dims:?} need {count} bytes of data, found {}", data.len())));
    }
    Ok((dims, data.to_vec()))
}

/// Loads an IDX image file (`[n, h, w]` or `[n, h, w, c]`) and its label file.
///
/// # Errors
/// [`DataError`] naming the file: unreadable, wrong magic, truncated, count mismatch,
/// label out of range.
pub fn load_idx(images: &Path, labels: &Path, classes: usize) -> Result<InMemoryDataset, DataError> {
    let shown = images.display().to_string();
    let (dims, pixels) = parse_idx(&read_maybe_gzip(images)?, &shown)?;
    let (label_dims, label_bytes) = parse_idx(&read_maybe_gzip(labels)?, &labels.display().to_string())?;
    let (n, h, w, c) = match dims[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] => (n, h, w, c),
        _ => {
            return Err(DataError::Format {
                format: "IDX",
                path: shown,
                reason: format!("expected images of rank 3 or 4, got dimensions {dims:?}"),
            });
        }
    };
    if n == 0 || h == 0 || w == 0 || c == 0 {
        let reason = match n {
            0 => "the file holds no images".to_string(),
            _ => format!("images of dimensions {dims:?} have a side of 0"),
        };
        return Err(DataError::Format { format: "IDX", path: shown, reason });
    }
    if label_dims != [n] {
        return Err(DataError::Format {
            format: "IDX",
            path: labels.display().to_string(),
            reason: format!("{label_dims:?} labels for {n} images"),
        });
    }
    // Named against the labels file, which holds them.
    if let Some((index, &label)) = label_bytes.iter().enumerate().find(|&(_, &label)| usize::from(label) >= classes) {
        return Err(DataError::LabelOutOfRange {
            path: labels.display().to_string(),
            index,
            label: label.into(),
            classes,
        });
    }
    InMemoryDataset::new(&shown, (h, w, c), pixels, label_bytes.into_iter().map(u16::from).collect(), classes)
}

/// Loads Fashion-MNIST (or MNIST) from a directory with the standard file names
/// (`train-images-idx3-ubyte[.gz]`, …), as Debian's `dataset-fashion-mnist` installs them
/// under /usr/share/datasets/fashion-mnist.
///
/// # Errors
/// [`DataError`]; a missing directory or file says which and how to get it.
pub fn load_fashion_mnist(dir: &Path, train: bool) -> Result<InMemoryDataset, DataError> {
    let prefix = if train { "train" } else { "t10k" };
    let find = |kind: &str| {
        let plain = dir.join(format!("{prefix}-{kind}-idx{}-ubyte", if kind == "images" { 3 } else { 1 }));
        let gz = std::path::PathBuf::from(format!("{}.gz", plain.display()));
        if gz.is_file() {
            Ok(gz)
        } else if plain.is_file() {
            Ok(plain)
        } else {
            Err(DataError::Io {
                path: plain.display().to_string(),
                reason: "not found (plain or .gz); on Debian: apt-get install dataset-fashion-mnist".into(),
            })
        }
    };
    load_idx(&find("images")?, &find("labels")?, 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ImageDataset;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_images_and_labels_plain_and_gzip() {
        let dir = std::env::temp_dir().join(format!("shufflenas-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let images: Vec<u8> = (0..2 * 3 * 2).collect();
        std::fs::write(dir.join("img"), idx_bytes(&[2, 3, 2], &images)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx_bytes(&[2], &[1, 9])).unwrap();
        std::fs::write(dir.join("lab.gz"), gz.finish().unwrap()).unwrap();
        let set = load_idx(&dir.join("img"), &dir.join("lab.gz"), 10).unwrap();
        assert_eq!(set.len(), 2);
        let (image, label) = set.get(1).unwrap();
        assert_eq!((image.height, image.width, image.channels, label), (3, 2, 1, 9));
        assert_eq!(image.pixels, (6..12).collect::<Vec<u8>>());

        // A label out of range names the file and the item.
        std::fs::write(dir.join("lab"), idx_bytes(&[2], &[1, 12])).unwrap();
        let err = load_idx(&dir.join("img"), &dir.join("lab"), 10).unwrap_err();
        assert!(matches!(err, DataError::LabelOutOfRange { index: 1, label: 12, .. }), "{err}");
        assert!(err.to_string().contains(&dir.join("lab").display().to_string()), "{err}");
        // No images, or images with a side of 0, are named as such.
        std::fs::write(dir.join("none"), idx_bytes(&[0, 3, 2], &[])).unwrap();
        std::fs::write(dir.join("lab0"), idx_bytes(&[0], &[])).unwrap();
        let err = load_idx(&dir.join("none"), &dir.join("lab0"), 10).unwrap_err();
        assert!(err.to_string().contains("holds no images"), "{err}");
        std::fs::write(dir.join("flat"), idx_bytes(&[2, 0, 2], &[])).unwrap();
        let err = load_idx(&dir.join("flat"), &dir.join("lab"), 10).unwrap_err();
        assert!(err.to_string().contains("have a side of 0"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wrong_magic_and_truncation_are_named() {
        let err = parse_idx(&[1, 2, 3, 4, 5], "x.idx").unwrap_err();
        assert!(err.to_string().contains("wrong magic"), "{err}");
        let mut bytes = idx_bytes(&[2, 2, 2], &[0; 8]);
        bytes.truncate(bytes.len() - 1);
        let err = parse_idx(&bytes, "y.idx").unwrap_err();
        assert!(err.to_string().contains("need 8 bytes of data, found 7"), "{err}");
    }

    // A corrupt header whose dimensions multiply past usize (here 2^64, which wraps to
    // 0 and would match an empty body) is an error, not a wrapped count or a panic.
    #[test]
    fn dimensions_that_overflow_are_named() {
        let err = parse_idx(&idx_bytes(&[65_536, 65_536, 65_536, 65_536], &[]), "z.idx").unwrap_err();
        assert!(err.to_string().contains("overflow"), "{err}");
    }

    #[test]
    fn a_missing_dataset_says_how_to_get_it() {
        let err = load_fashion_mnist(Path::new("/nonexistent/fashion"), true).unwrap_err();
        assert!(err.to_string().contains("apt-get install dataset-fashion-mnist"), "{err}");
    }

    // The real dataset, when installed (CI installs it): 60k/10k images of 28×28.
    #[test]
    fn loads_the_installed_fashion_mnist() {
        let dir = Path::new("/usr/share/datasets/fashion-mnist");
        if !dir.is_dir() {
            eprintln!("skipping: {} not installed", dir.display());
            return;
        }
        let test = load_fashion_mnist(dir, false).unwrap();
        assert_eq!(test.len(), 10_000);
        let (image, _) = test.get(0).unwrap();
        assert_eq!((image.height, image.width, image.channels), (28, 28, 1));
    }
}
