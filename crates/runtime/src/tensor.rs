//! Dense tensors crossing the runtime's boundary, in the element types ONNX models commonly use.

use std::fmt;

use crate::{Error, Result};

/// An element type a [`Tensor`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
    I64,
    I32,
    U8,
    I8,
    Bool,
}

impl DType {
    /// The ONNX `TensorProto.DataType` code.
    pub fn to_onnx(self) -> i32 {
        match self {
            DType::F32 => 1,
            DType::U8 => 2,
            DType::I8 => 3,
            DType::I32 => 6,
            DType::I64 => 7,
            DType::Bool => 9,
            DType::F64 => 11,
        }
    }

    /// The element type for an ONNX `TensorProto.DataType` code; `Err` names the unsupported type.
    pub fn from_onnx(code: i32) -> Result<DType> {
        Ok(match code {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            6 => DType::I32,
            7 => DType::I64,
            9 => DType::Bool,
            11 => DType::F64,
            other => return Err(Error::UnsupportedDType(onnx_type_name(other).to_owned())),
        })
    }

    pub fn size_of(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::U8 | DType::I8 | DType::Bool => 1,
        }
    }
}

/// ONNX's name for a `TensorProto.DataType` code, for messages about types this crate does not carry.
pub(crate) fn onnx_type_name(code: i32) -> &'static str {
    match code {
        0 => "undefined",
        1 => "f32",
        2 => "u8",
        3 => "i8",
        4 => "u16",
        5 => "i16",
        6 => "i32",
        7 => "i64",
        8 => "string",
        9 => "bool",
        10 => "f16",
        11 => "f64",
        12 => "u32",
        13 => "u64",
        14 => "complex64",
        15 => "complex128",
        16 => "bf16",
        _ => "an unknown ONNX type",
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U8 => "u8",
            DType::I8 => "i8",
            DType::Bool => "bool",
        })
    }
}

/// The values of a [`Tensor`], in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    Bool(Vec<bool>),
}

impl TensorData {
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::I64(_) => DType::I64,
            TensorData::I32(_) => DType::I32,
            TensorData::U8(_) => DType::U8,
            TensorData::I8(_) => DType::I8,
            TensorData::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F64(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each value as f64, for comparisons and summaries (booleans as 0 and 1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            TensorData::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::F64(v) => v.clone(),
            // i64 beyond 2^53 loses precision here; comparisons of such values are approximate.
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }
}

/// A Rust type that can be the element of a [`Tensor`].
pub trait Element: Copy + 'static {
    const DTYPE: DType;
    fn wrap(values: Vec<Self>) -> TensorData;
    fn peek(data: &TensorData) -> Option<&[Self]>;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(values: Vec<Self>) -> TensorData {
                TensorData::$variant(values)
            }
            fn peek(data: &TensorData) -> Option<&[Self]> {
                match data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(f64, F64);
element!(i64, I64);
element!(i32, I32);
element!(u8, U8);
element!(i8, I8);
element!(bool, Bool);

/// A dense, row-major tensor: a shape and as many values as the shape holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

impl Tensor {
    /// A tensor of `shape` holding `values`; `Err` when their counts differ.
    pub fn new<T: Element>(shape: &[usize], values: Vec<T>) -> Result<Tensor> {
        Tensor::from_data(shape, T::wrap(values))
    }

    pub fn from_data(shape: &[usize], data: TensorData) -> Result<Tensor> {
        let expected = element_count(shape, data.dtype().size_of())
            .ok_or_else(|| Error::ShapeTooLarge { shape: shape.to_vec(), actual: data.len() })?;
        if expected != data.len() {
            return Err(Error::ShapeMismatch { shape: shape.to_vec(), expected, actual: data.len() });
        }
        Ok(Tensor { shape: shape.to_vec(), data })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn data(&self) -> &TensorData {
        &self.data
    }

    pub fn into_data(self) -> TensorData {
        self.data
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values as a slice of `T`, or `None` when the tensor holds another type.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::peek(&self.data)
    }
}

/// The number of elements a shape holds, or `None` when the shape is too large for any buffer of
/// `element_size`-byte values. As in ndarray (and so tract, which panics past it), zero dims do not
/// excuse the others: the product of the non-zero dims, in bytes, must fit in `isize`.
pub(crate) fn element_count(shape: &[usize], element_size: usize) -> Option<usize> {
    let nonzero = shape.iter().filter(|&&d| d != 0).try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
    if nonzero.checked_mul(element_size.max(1))? > isize::MAX as usize {
        return None;
    }
    Some(if shape.contains(&0) { 0 } else { nonzero })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_the_element_count() {
        assert!(Tensor::new(&[2, 3], vec![0f32; 6]).is_ok());
        let err = Tensor::new(&[2, 3], vec![0f32; 5]).unwrap_err();
        assert_eq!(err.to_string(), "tensor shape [2, 3] holds 6 elements, but 5 values were given");
    }

    #[test]
    fn overflowing_shapes_are_errors() {
        assert!(Tensor::new(&[usize::MAX, 2], vec![0u8; 1]).is_err());
        // Empty, yet too large for tract's buffers (a fuzzer found this one).
        assert!(Tensor::new(&[0, 1 << 40, 1 << 40], Vec::<f32>::new()).is_err());
        assert!(Tensor::new(&[0, 1 << 20], Vec::<f32>::new()).is_ok());
    }

    #[test]
    fn onnx_codes_round_trip() {
        for dt in [DType::F32, DType::F64, DType::I64, DType::I32, DType::U8, DType::I8, DType::Bool] {
            assert_eq!(DType::from_onnx(dt.to_onnx()).unwrap(), dt);
        }
        assert_eq!(DType::from_onnx(10).unwrap_err().to_string(), "unsupported element type f16");
    }

    #[test]
    fn as_slice_is_typed() {
        let t = Tensor::new(&[2], vec![1i64, 2]).unwrap();
        assert_eq!(t.as_slice::<i64>(), Some(&[1i64, 2][..]));
        assert_eq!(t.as_slice::<f32>(), None);
    }
}
