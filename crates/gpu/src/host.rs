//! Host tensors to device words and back: every element is one 32-bit word on the device.

use tract_core::prelude::{DatumType, Tensor};

use crate::plan::Dt;

/// The words of `tensor` stored as `dt`. An i64 that does not fit in i32 is an error naming the
/// value and where it is: the device would compute with another number.
pub(crate) fn encode(tensor: &Tensor, dt: Dt) -> Result<Vec<u32>, String> {
    let plain = tensor.try_as_plain_ram().map_err(|e| format!("{e:#}"))?;
    let wrong = || format!("{:?} values cannot be stored as {}", tensor.datum_type(), dt.wgsl()).to_lowercase();
    match (tensor.datum_type(), dt) {
        (DatumType::F32, Dt::F32) => {
            Ok(plain.as_slice::<f32>().map_err(|_| wrong())?.iter().map(|v| v.to_bits()).collect())
        }
        (DatumType::I32, Dt::I32) => {
            Ok(plain.as_slice::<i32>().map_err(|_| wrong())?.iter().map(|&v| v as u32).collect())
        }
        (DatumType::I64, Dt::I32) => plain
            .as_slice::<i64>()
            .map_err(|_| wrong())?
            .iter()
            .enumerate()
            .map(|(ix, &v)| {
                i32::try_from(v)
                    .map(|v| v as u32)
                    .map_err(|_| format!("value {v} at flat index {ix} is outside i32, the GPU engine's integer range"))
            })
            .collect(),
        (DatumType::Bool, Dt::Bool) => {
            Ok(plain.as_slice::<bool>().map_err(|_| wrong())?.iter().map(|&v| u32::from(v)).collect())
        }
        _ => Err(wrong()),
    }
}

/// A host tensor of type `datum_type` and `shape` from the device's words.
pub(crate) fn decode(words: &[u32], datum_type: DatumType, shape: &[usize]) -> Result<Tensor, String> {
    let tensor = match datum_type {
        DatumType::F32 => Tensor::from_shape(shape, &words.iter().map(|&w| f32::from_bits(w)).collect::<Vec<_>>()),
        DatumType::I32 => Tensor::from_shape(shape, &words.iter().map(|&w| w as i32).collect::<Vec<_>>()),
        DatumType::I64 => Tensor::from_shape(shape, &words.iter().map(|&w| i64::from(w as i32)).collect::<Vec<_>>()),
        DatumType::Bool => Tensor::from_shape(shape, &words.iter().map(|&w| w != 0).collect::<Vec<_>>()),
        other => return Err(format!("the GPU engine does not produce {other:?} values")),
    };
    tensor.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_booleans_round_trip() {
        let ids = Tensor::from_shape(&[3], &[-7i64, 0, i64::from(i32::MAX)]).unwrap();
        let words = encode(&ids, Dt::I32).unwrap();
        assert_eq!(decode(&words, DatumType::I64, &[3]).unwrap(), ids);
        let flags = Tensor::from_shape(&[2], &[true, false]).unwrap();
        assert_eq!(encode(&flags, Dt::Bool).unwrap(), [1, 0]);
        assert_eq!(decode(&[1, 0], DatumType::Bool, &[2]).unwrap(), flags);
    }

    #[test]
    fn an_i64_outside_i32_is_named() {
        let ids = Tensor::from_shape(&[2], &[1i64, 1 << 40]).unwrap();
        let error = encode(&ids, Dt::I32).unwrap_err();
        assert!(error.contains("1099511627776") && error.contains("index 1"), "{error}");
        assert!(encode(&ids, Dt::F32).unwrap_err().contains("cannot be stored as f32"));
    }
}
