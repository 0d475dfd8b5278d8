//! NumPy `.npy` files (format versions 1 to 3), little-endian, C order.

use crate::tensor::element_count;
use crate::{DType, Error, Result, Tensor, TensorData};

const MAGIC: &[u8] = b"\x93NUMPY";

fn bad(detail: impl Into<String>) -> Error {
    Error::TensorFormat { format: "npy", detail: detail.into() }
}

/// Decodes a `.npy` file.
pub fn decode(bytes: &[u8]) -> Result<Tensor> {
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("missing the \\x93NUMPY magic"))?;
    let (&major, rest) = rest.split_first().ok_or_else(|| bad("truncated before the version"))?;
    let rest = rest.get(1..).ok_or_else(|| bad("truncated before the version"))?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = rest.split_at_checked(2).ok_or_else(|| bad("truncated header length"))?;
            (usize::from(u16::from_le_bytes([len[0], len[1]])), rest)
        }
        2 | 3 => {
            let (len, rest) = rest.split_at_checked(4).ok_or_else(|| bad("truncated header length"))?;
            (u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize, rest)
        }
        v => return Err(bad(format!("format version {v}, expected 1, 2 or 3"))),
    };
    let (header, body) = rest.split_at_checked(header_len).ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let descr = dict_value(header, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if dict_value(header, "fortran_order")? != "False" {
        return Err(bad("Fortran-ordered arrays are not supported; save with np.ascontiguousarray"));
    }
    let shape = parse_shape(dict_value(header, "shape")?)?;
    let dtype = match descr {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<i8" => DType::I64,
        "<i4" => DType::I32,
        "|u1" | "<u1" => DType::U8,
        "|i1" | "<i1" => DType::I8,
        "|b1" => DType::Bool,
        other => {
            return Err(bad(format!("dtype `{other}` is not supported (f4, f8, i8, i4, u1, i1, b1, little-endian)")));
        }
    };
    let count = element_count(&shape, dtype.size_of()).ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
    let expected = count * dtype.size_of();
    if body.len() != expected {
        return Err(bad(format!(
            "shape {shape:?} of {dtype} needs {expected} data bytes, the file has {}",
            body.len()
        )));
    }
    let data = match dtype {
        DType::F32 => {
            TensorData::F32(body.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        DType::F64 => TensorData::F64(body.chunks_exact(8).map(|c| f64::from_le_bytes(eight(c))).collect()),
        DType::I64 => TensorData::I64(body.chunks_exact(8).map(|c| i64::from_le_bytes(eight(c))).collect()),
        DType::I32 => {
            TensorData::I32(body.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        DType::U8 => TensorData::U8(body.to_vec()),
        DType::I8 => TensorData::I8(body.iter().map(|&b| b as i8).collect()),
        DType::Bool => TensorData::Bool(body.iter().map(|&b| b != 0).collect()),
    };
    Tensor::from_data(&shape, data)
}

fn eight(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// The text after `'key':` in the header dict, up to the next top-level comma.
fn dict_value<'h>(header: &'h str, key: &str) -> Result<&'h str> {
    let pattern = format!("'{key}':");
    let start = header.find(&pattern).ok_or_else(|| bad(format!("header has no `{key}`")))? + pattern.len();
    let value = header[start..].trim_start();
    let end = if value.starts_with('(') { value.find(')').map(|i| i + 1) } else { value.find([',', '}']) }
        .ok_or_else(|| bad(format!("header value of `{key}` is unterminated")))?;
    Ok(value[..end].trim())
}

fn parse_shape(text: &str) -> Result<Vec<usize>> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| bad(format!("shape `{text}` is not a tuple")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("shape `{text}` has a non-integer dim `{s}`"))))
        .collect()
}

/// Encodes a tensor as a version 1 `.npy` file.
pub fn encode(tensor: &Tensor) -> Vec<u8> {
    let descr = match tensor.dtype() {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I64 => "<i8",
        DType::I32 => "<i4",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::Bool => "|b1",
    };
    let shape = match tensor.shape() {
        [one] => format!("({one},)"),
        dims => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic, version and length take 10 bytes; the header ends in a newline and pads to 64.
    let padding = 63 - (10 + header.len()) % 64;
    header.extend(std::iter::repeat_n(' ', padding));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + tensor.len() * tensor.dtype().size_of());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match tensor.data() {
        TensorData::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::U8(v) => out.extend_from_slice(v),
        TensorData::I8(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        TensorData::Bool(v) => v.iter().for_each(|&x| out.push(u8::from(x))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype() {
        let tensors = [
            Tensor::new(&[2, 3], vec![1.5f32, -2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
            Tensor::new(&[1], vec![1e300f64]).unwrap(),
            Tensor::new(&[2], vec![i64::MIN, i64::MAX]).unwrap(),
            Tensor::new(&[0, 4], Vec::<i32>::new()).unwrap(),
            Tensor::new(&[3], vec![0u8, 128, 255]).unwrap(),
            Tensor::new(&[2], vec![-128i8, 127]).unwrap(),
            Tensor::new(&[], vec![true]).unwrap(),
        ];
        for t in tensors {
            let bytes = encode(&t);
            assert_eq!((bytes.len() - t.len() * t.dtype().size_of()) % 64, 0);
            assert_eq!(decode(&bytes).unwrap(), t);
        }
    }

    #[test]
    fn reads_numpy_output() {
        // np.save of np.arange(3, dtype=np.float32)
        let mut bytes = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }".to_vec();
        bytes.resize(128 - 1, b' ');
        bytes.push(b'\n');
        for x in [0f32, 1.0, 2.0] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        assert_eq!(decode(&bytes).unwrap(), Tensor::new(&[3], vec![0f32, 1.0, 2.0]).unwrap());
    }

    #[test]
    fn bad_files_are_errors_naming_the_problem() {
        let good = encode(&Tensor::new(&[2], vec![1f32, 2.0]).unwrap());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let err = decode(&good[..good.len() - 1]).unwrap_err().to_string();
        assert_eq!(err, "npy tensor: shape [2] of f32 needs 8 data bytes, the file has 7");
        let mut big_endian = good.clone();
        let at = good.windows(3).position(|w| w == b"<f4").unwrap();
        big_endian[at] = b'>';
        assert!(decode(&big_endian).unwrap_err().to_string().contains("`>f4` is not supported"));
    }
}
