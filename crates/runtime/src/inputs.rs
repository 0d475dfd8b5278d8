//! Helpers for feeding a model: deterministic synthetic inputs, and free dims read off given inputs.

use std::collections::BTreeMap;

use crate::model::{Dim, ValueInfo};
use crate::tensor::element_count;
use crate::{DType, Error, Result, Tensor, TensorData};

/// Synthetic inputs stop here (1 GiB of f32): a model may declare shapes no machine can fill.
const MAX_SYNTHETIC_ELEMENTS: usize = 1 << 28;

/// Deterministic inputs for `inputs` (same seed, same values): floats uniform in [-1, 1), integers
/// in [0, 10), booleans alternating by value. Free dims take their value from `dims`, else 1.
pub fn synthetic_inputs(
    inputs: &[ValueInfo],
    dims: &BTreeMap<String, u64>,
    seed: u64,
) -> Result<Vec<(String, Tensor)>> {
    let mut state = seed;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut unit = move || ((next() >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0;
    inputs
        .iter()
        .map(|input| {
            let dtype = input.dtype.ok_or_else(|| Error::UnsupportedDType(input.type_name.clone()))?;
            let shape: Vec<usize> = input
                .shape
                .iter()
                .flatten()
                .map(|d| match d {
                    Dim::Fixed(v) => *v as usize,
                    Dim::Symbolic(name) => dims.get(name).copied().unwrap_or(1) as usize,
                    Dim::Unknown => 1,
                })
                .collect();
            let count =
                element_count(&shape, dtype.size_of()).filter(|&n| n <= MAX_SYNTHETIC_ELEMENTS).ok_or_else(|| {
                    Error::InputValue {
                        name: input.name.clone(),
                        detail: format!(
                            "shape {shape:?} is too large to synthesize (over {MAX_SYNTHETIC_ELEMENTS} elements); \
                         give its free dims smaller values or pass a real input"
                        ),
                    }
                })?;
            let mut values = (0..count).map(|_| unit());
            let data = match dtype {
                DType::F32 => TensorData::F32(values.map(|v| v as f32).collect()),
                DType::F64 => TensorData::F64(values.collect()),
                DType::I64 => TensorData::I64(values.map(|v| digit(v) as i64).collect()),
                DType::I32 => TensorData::I32(values.map(|v| digit(v) as i32).collect()),
                DType::U8 => TensorData::U8(values.map(|v| digit(v) as u8).collect()),
                DType::I8 => TensorData::I8(values.map(|v| digit(v) as i8).collect()),
                DType::Bool => TensorData::Bool((0..count).map(|_| values.next().is_some_and(|v| v > 0.0)).collect()),
            };
            Ok((input.name.clone(), Tensor::from_data(&shape, data)?))
        })
        .collect()
}

fn digit(unit: f64) -> u32 {
    ((unit + 1.0) * 5.0) as u32 % 10
}

/// Values for the free dims of `expected` as the given inputs have them, e.g. `N=16` from a
/// `[16, 64]` tensor for an input declared `[N, 64]`. Inputs that do not match are skipped: the
/// session's input check reports them.
pub fn free_dims_of(expected: &[ValueInfo], given: &[(String, Tensor)]) -> BTreeMap<String, u64> {
    let mut dims = BTreeMap::new();
    for info in expected {
        let (Some(shape), Some((_, tensor))) = (&info.shape, given.iter().find(|(name, _)| *name == info.name)) else {
            continue;
        };
        if shape.len() != tensor.shape().len() {
            continue;
        }
        for (dim, &actual) in shape.iter().zip(tensor.shape()) {
            if let Dim::Symbolic(name) = dim {
                dims.entry(name.clone()).or_insert(actual as u64);
            }
        }
    }
    dims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_declared_shapes_are_an_error_not_an_allocation() {
        let input = ValueInfo {
            name: "x".into(),
            dtype: Some(DType::F32),
            type_name: "f32".into(),
            shape: Some(vec![Dim::Fixed(1 << 20), Dim::Symbolic("N".into())]),
        };
        let dims = BTreeMap::from([("N".to_owned(), 1 << 20)]);
        let err = synthetic_inputs(std::slice::from_ref(&input), &dims, 0).unwrap_err().to_string();
        assert!(err.starts_with("input `x`: shape [1048576, 1048576] is too large to synthesize"), "{err}");
        let small = synthetic_inputs(&[input], &BTreeMap::from([("N".to_owned(), 2)]), 0).unwrap();
        assert_eq!(small[0].1.shape(), [1 << 20, 2]);
    }
}
