//! The seed's image transforms, deterministic for a seed.
//!
//! - ImageNet training: random resized crop (scale 0.08–1, ratio 3/4–4/3), horizontal
//!   flip, colour jitter 0.4 (brightness, contrast, saturation), PCA lighting 0.1,
//!   normalise;
//! - ImageNet validation: resize the shorter side to `size / 0.875`, centre crop;
//! - small images (28/32 px): zero-pad to `size`, pad by `padding` more and take a
//!   random `size` crop, horizontal flip.

use rand::Rng;

use super::{DataError, Image};

/// Per-channel mean and standard deviation of the inputs (on a 0–1 scale).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Mean per channel.
    pub mean: Vec<f32>,
    /// Standard deviation per channel.
    pub std: Vec<f32>,
}

impl Normalization {
    /// ImageNet RGB statistics.
    pub fn imagenet() -> Self {
        Self { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225] }
    }

    /// Fashion-MNIST statistics (grayscale).
    pub fn fashion_mnist() -> Self {
        Self { mean: vec![0.2860], std: vec![0.3530] }
    }

    /// CIFAR-10 RGB statistics.
    pub fn cifar10() -> Self {
        Self { mean: vec![0.4914, 0.4822, 0.4465], std: vec![0.2470, 0.2435, 0.2616] }
    }
}

/// An image transform producing a normalised `C × size × size` array.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Training on small images: centre zero-pad to `size`, random `size` crop of the
    /// image padded by `padding`, random horizontal flip.
    SmallTrain {
        /// Output side.
        size: usize,
        /// Extra padding for the random crop.
        padding: usize,
        /// Normalisation.
        norm: Normalization,
    },
    /// Evaluation on small images: centre zero-pad (or crop) to `size`.
    SmallEval {
        /// Output side.
        size: usize,
        /// Normalisation.
        norm: Normalization,
    },
    /// The seed's ImageNet training recipe.
    ImageNetTrain {
        /// Output side.
        size: usize,
        /// Colour jitter strength (0.4).
        jitter: f32,
        /// PCA lighting strength (0.1).
        lighting: f32,
        /// Normalisation.
        norm: Normalization,
    },
    /// The seed's ImageNet validation recipe.
    ImageNetEval {
        /// Output side.
        size: usize,
        /// Normalisation.
        norm: Normalization,
    },
}

/// An image as floats on a 0–1 scale, `h × w × c`.
struct Pixels {
    h: usize,
    w: usize,
    c: usize,
    data: Vec<f32>,
}

impl Pixels {
    fn from(image: &Image) -> Self {
        let data = image.pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        Self { h: image.height, w: image.width, c: image.channels, data }
    }

    /// Bilinear resample of the region (x0, y0, rw, rh) to `out × out`.
    fn resample(&self, (x0, y0, rw, rh): (f32, f32, f32, f32), out: usize) -> Self {
        let mut data = vec![0.0; out * out * self.c];
        for oy in 0..out {
            let sy = (y0 + (oy as f32 + 0.5) * rh / out as f32 - 0.5).clamp(0.0, (self.h - 1) as f32);
            let (y_lo, fy) = (sy.floor() as usize, sy - sy.floor());
            let y_hi = (y_lo + 1).min(self.h - 1);
            for ox in 0..out {
                let sx = (x0 + (ox as f32 + 0.5) * rw / out as f32 - 0.5).clamp(0.0, (self.w - 1) as f32);
                let (x_lo, fx) = (sx.floor() as usize, sx - sx.floor());
                let x_hi = (x_lo + 1).min(self.w - 1);
                for ch in 0..self.c {
                    let at = |y: usize, x: usize| self.data[(y * self.w + x) * self.c + ch];
                    let top = at(y_lo, x_lo) * (1.0 - fx) + at(y_lo, x_hi) * fx;
                    let bottom = at(y_hi, x_lo) * (1.0 - fx) + at(y_hi, x_hi) * fx;
                    data[(oy * out + ox) * self.c + ch] = top * (1.0 - fy) + bottom * fy;
                }
            }
        }
        Self { h: out, w: out, c: self.c, data }
    }

    /// The `out × out` window at (top, left) of this image zero-padded by `pad`.
    fn padded_window(&self, pad_top: isize, pad_left: isize, out: usize) -> Self {
        let mut data = vec![0.0; out * out * self.c];
        for oy in 0..out {
            let y = oy as isize - pad_top;
            if y < 0 || y >= self.h as isize {
                continue;
            }
            for ox in 0..out {
                let x = ox as isize - pad_left;
                if x < 0 || x >= self.w as isize {
                    continue;
                }
                let src = (y as usize * self.w + x as usize) * self.c;
                let dst = (oy * out + ox) * self.c;
                data[dst..dst + self.c].copy_from_slice(&self.data[src..src + self.c]);
            }
        }
        Self { h: out, w: out, c: self.c, data }
    }

    fn flip(&mut self) {
        for y in 0..self.h {
            for x in 0..self.w / 2 {
                for ch in 0..self.c {
                    self.data.swap((y * self.w + x) * self.c + ch, (y * self.w + self.w - 1 - x) * self.c + ch);
                }
            }
        }
    }

    fn gray(&self, i: usize) -> f32 {
        if self.c == 3 {
            0.299 * self.data[i] + 0.587 * self.data[i + 1] + 0.114 * self.data[i + 2]
        } else {
            self.data[i]
        }
    }

    fn jitter<R: Rng + ?Sized>(&mut self, strength: f32, rng: &mut R) {
        let mut factor = || 1.0 + rng.random_range(-strength..=strength);
        let (brightness, contrast, saturation) = (factor(), factor(), factor());
        let n = self.h * self.w;
        let mean_gray = (0..n).map(|p| self.gray(p * self.c)).sum::<f32>() / n as f32;
        for p in 0..n {
            let i = p * self.c;
            let gray = self.gray(i);
            for ch in 0..self.c {
                let mut v = self.data[i + ch] * brightness;
                v = (v - mean_gray) * contrast + mean_gray;
                v = (v - gray) * saturation + gray;
                self.data[i + ch] = v.clamp(0.0, 1.0);
            }
        }
    }

    /// AlexNet-style PCA lighting noise with ImageNet's eigenvectors (RGB only).
    fn lighting<R: Rng + ?Sized>(&mut self, strength: f32, rng: &mut R) {
        if self.c != 3 || strength <= 0.0 {
            return;
        }
        const EIGVAL: [f32; 3] = [0.2175, 0.0188, 0.0045];
        const EIGVEC: [[f32; 3]; 3] =
            [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]];
        let alpha: Vec<f32> = (0..3).map(|_| normal(rng) * strength).collect();
        let shift: Vec<f32> = (0..3).map(|ch| (0..3).map(|k| EIGVEC[ch][k] * alpha[k] * EIGVAL[k]).sum()).collect();
        for pixel in self.data.chunks_exact_mut(3) {
            for (value, delta) in pixel.iter_mut().zip(&shift) {
                *value += delta;
            }
        }
    }

    fn into_chw(self, norm: &Normalization) -> Vec<f32> {
        let mut out = vec![0.0; self.data.len()];
        let plane = self.h * self.w;
        for p in 0..plane {
            for ch in 0..self.c {
                let (mean, std) = (norm.mean[ch % norm.mean.len()], norm.std[ch % norm.std.len()]);
                out[ch * plane + p] = (self.data[p * self.c + ch] - mean) / std;
            }
        }
        out
    }
}

fn normal<R: Rng + ?Sized>(rng: &mut R) -> f32 {
    // Box–Muller.
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

impl Normalization {
    /// Checks that there is one mean per standard deviation, at least one, all finite,
    /// and every deviation positive.
    ///
    /// # Errors
    /// [`DataError::Transform`] naming the values.
    pub fn check(&self) -> Result<(), DataError> {
        let (mean, std) = (&self.mean, &self.std);
        if mean.is_empty() || mean.len() != std.len() {
            return Err(DataError::Transform(format!(
                "normalisation needs one mean per standard deviation, at least one; got means {mean:?} and \
                 deviations {std:?}"
            )));
        }
        if mean.iter().any(|m| !m.is_finite()) || std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(DataError::Transform(format!(
                "normalisation needs finite means and positive finite deviations; got means {mean:?} and deviations \
                 {std:?}"
            )));
        }
        Ok(())
    }
}

impl Transform {
    /// Checks the settings: a positive size, a valid normalisation, and jitter and
    /// lighting strengths in `[0, 1]` (jitter draws factors in `1 ± strength`).
    ///
    /// # Errors
    /// [`DataError::Transform`] naming the setting.
    pub fn check(&self) -> Result<(), DataError> {
        let norm = match self {
            Self::SmallTrain { norm, .. } | Self::SmallEval { norm, .. } | Self::ImageNetEval { norm, .. } => norm,
            Self::ImageNetTrain { jitter, lighting, norm, .. } => {
                for (name, strength) in [("jitter", jitter), ("lighting", lighting)] {
                    if !(0.0..=1.0).contains(strength) {
                        return Err(DataError::Transform(format!(
                            "{name} strength must lie in [0, 1], got {strength}"
                        )));
                    }
                }
                norm
            }
        };
        if self.size() == 0 {
            return Err(DataError::Transform("the output size must be positive".into()));
        }
        norm.check()
    }

    /// Output side.
    pub fn size(&self) -> usize {
        match self {
            Self::SmallTrain { size, .. }
            | Self::SmallEval { size, .. }
            | Self::ImageNetTrain { size, .. }
            | Self::ImageNetEval { size, .. } => *size,
        }
    }

    /// Applies the transform: a normalised `C × size × size` array (row-major).
    pub fn apply<R: Rng + ?Sized>(&self, image: &Image, rng: &mut R) -> Vec<f32> {
        let px = Pixels::from(image);
        match self {
            Self::SmallTrain { size, padding, norm } => {
                let (size, pad) = (*size as isize, *padding as isize);
                let center_top = (size - px.h as isize) / 2;
                let center_left = (size - px.w as isize) / 2;
                let dy = rng.random_range(-(pad as i64)..=pad as i64) as isize;
                let dx = rng.random_range(-(pad as i64)..=pad as i64) as isize;
                let mut out = px.padded_window(center_top + dy, center_left + dx, size as usize);
                if rng.random_bool(0.5) {
                    out.flip();
                }
                out.into_chw(norm)
            }
            Self::SmallEval { size, norm } => {
                let top = (*size as isize - px.h as isize) / 2;
                let left = (*size as isize - px.w as isize) / 2;
                px.padded_window(top, left, *size).into_chw(norm)
            }
            Self::ImageNetTrain { size, jitter, lighting, norm } => {
                let area = (px.h * px.w) as f32;
                let (w, h) = (px.w as f32, px.h as f32);
                let mut region = None;
                for _ in 0..10 {
                    let target = area * rng.random_range(0.08..=1.0);
                    let ratio = rng.random_range((3.0f32 / 4.0).ln()..=(4.0f32 / 3.0).ln()).exp();
                    let (cw, ch) = ((target * ratio).sqrt(), (target / ratio).sqrt());
                    if cw <= w && ch <= h {
                        region = Some((rng.random_range(0.0..=w - cw), rng.random_range(0.0..=h - ch), cw, ch));
                        break;
                    }
                }
                // Fallback: the largest centred square.
                let side = w.min(h);
                let region = region.unwrap_or(((w - side) / 2.0, (h - side) / 2.0, side, side));
                let mut out = px.resample(region, *size);
                if rng.random_bool(0.5) {
                    out.flip();
                }
                out.jitter(*jitter, rng);
                out.lighting(*lighting, rng);
                out.into_chw(norm)
            }
            Self::ImageNetEval { size, norm } => {
                // Resize the shorter side to size / 0.875 (keeping the aspect), then a
                // centred size crop: the crop covers 0.875 of the shorter side.
                let short = px.h.min(px.w) as f32;
                let side = short * 0.875;
                let region = ((px.w as f32 - side) / 2.0, (px.h as f32 - side) / 2.0, side, side);
                px.resample(region, *size).into_chw(norm)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(h: usize, w: usize, c: usize) -> Image {
        Image { height: h, width: w, channels: c, pixels: (0..h * w * c).map(|i| (i % 251) as u8).collect() }
    }

    fn plain() -> Normalization {
        Normalization { mean: vec![0.0], std: vec![1.0] }
    }

    #[test]
    fn small_eval_pads_28_to_32_in_the_centre() {
        let image = ramp(28, 28, 1);
        let out = Transform::SmallEval { size: 32, norm: plain() }.apply(&image, &mut rand::rng());
        assert_eq!(out.len(), 32 * 32);
        assert_eq!(out[0], 0.0);
        assert_eq!(out[2 * 32 + 2], 0.0 / 255.0);
        assert_eq!(out[2 * 32 + 3], 1.0 / 255.0);
    }

    // The same seed gives the same augmentation; a different one does not.
    #[test]
    fn augmentation_is_deterministic_for_a_seed() {
        let image = ramp(40, 50, 3);
        let t = Transform::ImageNetTrain { size: 24, jitter: 0.4, lighting: 0.1, norm: Normalization::imagenet() };
        let run = |seed| t.apply(&image, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        assert_eq!(run(1).len(), 3 * 24 * 24);
        let small = Transform::SmallTrain { size: 32, padding: 4, norm: Normalization::fashion_mnist() };
        let a = small.apply(&ramp(28, 28, 1), &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let b = small.apply(&ramp(28, 28, 1), &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
    }

    #[test]
    fn eval_crop_keeps_the_centre_of_a_constant_image() {
        let image = Image { height: 60, width: 80, channels: 3, pixels: vec![128; 60 * 80 * 3] };
        let norm = Normalization { mean: vec![0.0; 3], std: vec![1.0; 3] };
        let out = Transform::ImageNetEval { size: 16, norm }.apply(&image, &mut rand::rng());
        assert!(out.iter().all(|v| (v - 128.0 / 255.0).abs() < 1e-6));
    }
}
