//! ImageNet-style folders: `root/<class>/*.{jpg,jpeg,png}`, classes in sorted order.

use std::path::{Path, PathBuf};

use super::{DataError, Image, ImageDataset, io_error};

/// Options of [`ImageFolder::open`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageFolderOptions {
    /// Check every image when opening and leave out (and count) the ones that cannot
    /// be decoded, instead of failing when they are read.
    pub skip_corrupt: bool,
}

/// A folder of class sub-folders of JPEG/PNG images, decoded on access to RGB.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    classes: Vec<String>,
    items: Vec<(PathBuf, usize)>,
    skipped: Vec<PathBuf>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn decode(path: &Path) -> Result<Image, DataError> {
    let image = image::open(path).map_err(|e| DataError::Format {
        format: "image",
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let rgb = image.to_rgb8();
    let (width, height) = rgb.dimensions();
    Ok(Image { height: height as usize, width: width as usize, channels: 3, pixels: rgb.into_raw() })
}

impl ImageFolder {
    /// Scans `root`: every sub-folder is a class (sorted by name), every JPEG/PNG in
    /// it an item.
    ///
    /// # Errors
    /// [`DataError`] for an unreadable folder, a folder without classes, or a class
    /// folder with no images, or none left after `skip_corrupt` (named).
    pub fn open(root: &Path, options: ImageFolderOptions) -> Result<Self, DataError> {
        let mut classes: Vec<String> = std::fs::read_dir(root)
            .map_err(|e| io_error(root, e))?
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        classes.sort();
        if classes.is_empty() {
            return Err(DataError::Empty(format!("{}: no class folders", root.display())));
        }
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let dir = root.join(class);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| io_error(&dir, e))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(DataError::Empty(format!("class folder {} has no .jpg/.jpeg/.png images", dir.display())));
            }
            let (found, kept_before, skipped_before) = (files.len(), items.len(), skipped.len());
            for file in files {
                if options.skip_corrupt && decode(&file).is_err() {
                    skipped.push(file);
                } else {
                    items.push((file, label));
                }
            }
            if items.len() == kept_before {
                return Err(DataError::Empty(format!(
                    "class folder {} has no readable image: all {found} were skipped as corrupt (the first: {})",
                    dir.display(),
                    skipped[skipped_before].display()
                )));
            }
        }
        Ok(Self { classes, items, skipped })
    }

    /// Class names, index = label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Checks that `other` (e.g. the `val/` split next to this `train/` one) has the
    /// same class folders, so that a label means the same class in both.
    ///
    /// # Errors
    /// [`DataError::SplitMismatch`] naming the first class folder that differs.
    pub fn check_same_classes(&self, other: &ImageFolder, other_root: &Path) -> Result<(), DataError> {
        if self.classes == other.classes {
            return Ok(());
        }
        let missing = self.classes.iter().find(|c| !other.classes.contains(c));
        let extra = other.classes.iter().find(|c| !self.classes.contains(c));
        let reason = match (missing, extra) {
            (_, Some(extra)) => format!("class folder '{extra}' is not in the training split"),
            (Some(missing), None) => format!("class folder '{missing}' of the training split is missing"),
            (None, None) => "the class folders are in another order".into(),
        };
        Err(DataError::SplitMismatch {
            path: other_root.display().to_string(),
            reason: format!("{reason} ({} classes here, {} in training)", other.classes.len(), self.classes.len()),
        })
    }

    /// Files left out by `skip_corrupt`.
    pub fn skipped(&self) -> &[PathBuf] {
        &self.skipped
    }
}

impl ImageDataset for ImageFolder {
    fn len(&self) -> usize {
        self.items.len()
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }

    fn channels(&self) -> usize {
        3
    }

    fn get(&self, index: usize) -> Result<(Image, usize), DataError> {
        let (path, label) = self
            .items
            .get(index)
            .ok_or_else(|| DataError::Empty(format!("item {index} is past the end ({} items)", self.items.len())))?;
        Ok((decode(path)?, *label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_classes_in_order_and_names_corrupt_files() {
        let root = std::env::temp_dir().join(format!("shufflenas-folder-{}", std::process::id()));
        for class in ["cat", "ant"] {
            std::fs::create_dir_all(root.join(class)).unwrap();
        }
        image::RgbImage::from_pixel(5, 4, image::Rgb([10, 20, 30])).save(root.join("ant/a.png")).unwrap();
        image::RgbImage::from_pixel(3, 3, image::Rgb([1, 2, 3])).save(root.join("cat/b.jpg")).unwrap();
        std::fs::write(root.join("cat/broken.png"), b"not a png").unwrap();

        let folder = ImageFolder::open(&root, ImageFolderOptions::default()).unwrap();
        assert_eq!(folder.classes(), ["ant", "cat"]);
        assert_eq!(folder.len(), 3);
        let (image, label) = folder.get(0).unwrap();
        assert_eq!((image.width, image.height, label), (5, 4, 0));
        assert_eq!(&image.pixels[..3], &[10, 20, 30]);
        let err = folder.get(2).unwrap_err();
        assert!(err.to_string().contains("broken.png"), "{err}");

        let skipping = ImageFolder::open(&root, ImageFolderOptions { skip_corrupt: true }).unwrap();
        assert_eq!(skipping.len(), 2);
        assert_eq!(skipping.skipped().len(), 1);
        // A class whose every image is corrupt has nothing left to learn from.
        std::fs::remove_file(root.join("cat/b.jpg")).unwrap();
        let err = ImageFolder::open(&root, ImageFolderOptions { skip_corrupt: true }).unwrap_err().to_string();
        assert!(err.contains("has no readable image: all 1 were skipped") && err.contains("broken.png"), "{err}");

        std::fs::create_dir_all(root.join("empty")).unwrap();
        let err = ImageFolder::open(&root, ImageFolderOptions::default()).unwrap_err();
        assert!(err.to_string().contains("empty") && err.to_string().contains("has no"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    // Labels are indices into the sorted class list: a val/ split with another class
    // set would mislabel images or index past the logits, so it is refused by name.
    #[test]
    fn splits_with_other_classes_are_named() {
        let base = std::env::temp_dir().join(format!("shufflenas-splits-{}", std::process::id()));
        let split = |name: &str, classes: &[&str]| {
            let root = base.join(name);
            for class in classes {
                std::fs::create_dir_all(root.join(class)).unwrap();
                image::RgbImage::from_pixel(2, 2, image::Rgb([0, 0, 0])).save(root.join(class).join("x.png")).unwrap();
            }
            (ImageFolder::open(&root, ImageFolderOptions::default()).unwrap(), root)
        };
        let (train, _) = split("train", &["ant", "cat"]);
        let (same, same_root) = split("same", &["cat", "ant"]);
        assert!(train.check_same_classes(&same, &same_root).is_ok());
        let (extra, extra_root) = split("extra", &["ant", "bee", "cat"]);
        let err = train.check_same_classes(&extra, &extra_root).unwrap_err().to_string();
        assert!(err.contains("'bee' is not in the training split") && err.contains("extra"), "{err}");
        let (fewer, fewer_root) = split("fewer", &["ant"]);
        let err = train.check_same_classes(&fewer, &fewer_root).unwrap_err().to_string();
        assert!(err.contains("'cat' of the training split is missing"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
