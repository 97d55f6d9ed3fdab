//! Minimal `.npy` reading and writing for float32 C-order arrays (NumPy format 1.0–3.0).

use std::path::Path;

/// Errors of `.npy` files.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// File system error.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a float32 C-order `.npy` file, or truncated.
    #[error("invalid .npy file {path}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A float32 array: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f32>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses `.npy` bytes.
///
/// # Errors
/// [`NpyError::Format`] naming the problem.
pub fn parse(bytes: &[u8], path: &str) -> Result<NpyArray, NpyError> {
    let bad = |reason: &str| NpyError::Format { path: path.to_string(), reason: reason.to_string() };
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let header = bytes.get(start..start + header_len).ok_or_else(|| bad("truncated header"))?;
    let header = String::from_utf8_lossy(header);
    if !header.contains("'descr': '<f4'") && !header.contains("'descr': '=f4'") {
        return Err(bad(&format!("only little-endian float32 ('<f4') is supported, header: {}", header.trim())));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran-order arrays are not supported"));
    }
    let shape_text = header
        .split("'shape':")
        .nth(1)
        .and_then(|rest| rest.split('(').nth(1))
        .and_then(|rest| rest.split(')').next())
        .ok_or_else(|| bad("no shape in header"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse::<usize>().map_err(|_| bad(&format!("bad dimension '{t}'"))))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes_needed = shape
        .iter()
        .try_fold(4usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(&format!("shape {shape:?} overflows the address space")))?;
    let data = &bytes[start + header_len..];
    if data.len() != bytes_needed {
        return Err(bad(&format!("shape {shape:?} needs {bytes_needed} bytes of data, found {}", data.len())));
    }
    let values = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(NpyArray { shape, values })
}

/// Reads a float32 `.npy` file.
///
/// # Errors
/// [`NpyError`].
pub fn read(path: impl AsRef<Path>) -> Result<NpyArray, NpyError> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io { path: shown.clone(), source })?;
    parse(&bytes, &shown)
}

/// Encodes a float32 array as `.npy` (format 1.0).
pub fn encode(array: &NpyArray) -> Vec<u8> {
    let dims: Vec<String> = array.shape.iter().map(usize::to_string).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending with a newline.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + array.values.len() * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in &array.values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// Writes a float32 `.npy` file atomically (temporary file, then rename).
///
/// # Errors
/// [`NpyError::Io`].
pub fn write(path: impl AsRef<Path>, array: &NpyArray) -> Result<(), NpyError> {
    crate::io::write_atomic(path.as_ref(), &encode(array))
        .map_err(|source| NpyError::Io { path: path.as_ref().display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips() {
        let array = NpyArray { shape: vec![2, 3], values: vec![1.0, -2.5, 3.0, 0.0, 1e-3, 7.0] };
        let bytes = encode(&array);
        assert_eq!((bytes.len() - array.values.len() * 4) % 64, 0);
        assert_eq!(parse(&bytes, "x.npy").unwrap(), array);
        let vector = NpyArray { shape: vec![3], values: vec![1.0, 2.0, 3.0] };
        assert_eq!(parse(&encode(&vector), "v.npy").unwrap(), vector);
    }

    #[test]
    fn bad_files_are_errors_naming_the_problem() {
        assert!(parse(b"hello", "a.npy").unwrap_err().to_string().contains("magic"));
        let array = NpyArray { shape: vec![4], values: vec![0.0; 4] };
        let mut bytes = encode(&array);
        bytes.truncate(bytes.len() - 3);
        assert!(parse(&bytes, "b.npy").unwrap_err().to_string().contains("needs 16 bytes"));
        // A shape whose byte count passes usize (4 · 2^62 wraps to 0) is named, not wrapped.
        let huge = encode(&NpyArray { shape: vec![1 << 62], values: vec![] });
        assert!(parse(&huge, "h.npy").unwrap_err().to_string().contains("overflows"));
        let f64_header = String::from_utf8(encode(&array)).unwrap_or_default();
        assert!(f64_header.is_empty() || f64_header.contains("<f4"));
        let mut wrong = encode(&array);
        let pos = wrong.windows(3).position(|w| w == b"<f4").unwrap();
        wrong[pos + 2] = b'8';
        assert!(parse(&wrong, "c.npy").unwrap_err().to_string().contains("float32"));
    }
}
