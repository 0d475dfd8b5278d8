//! Reading input tensors from files and binding them to the model's inputs; writing outputs.

use std::path::Path;

use anyhow::{Context, Result, bail};
use runtime::{Model, Tensor, TensorData, npy, onnx_pb, synthetic_inputs};

use crate::options::InputArg;

/// Reads a `.npy` or ONNX `TensorProto` (`.pb`) file.
pub fn read_tensor(path: &Path) -> Result<Tensor> {
    let decode = match path.extension().and_then(|e| e.to_str()) {
        Some("npy") => npy::decode,
        Some("pb") => onnx_pb::decode,
        _ => bail!("input {}: expected a .npy or .pb file", path.display()),
    };
    let bytes = std::fs::read(path).with_context(|| format!("while reading input {}", path.display()))?;
    decode(&bytes).with_context(|| format!("while decoding input {}", path.display()))
}

/// Binds input files to the model's inputs: by `NAME=`, else in the order of the graph inputs
/// that have no initializer.
pub fn bind_inputs(model: &Model, args: &[InputArg]) -> Result<Vec<(String, Tensor)>> {
    let mut positional = model.inputs().iter();
    args.iter()
        .map(|arg| {
            let name = match &arg.name {
                Some(name) => name.clone(),
                None => match positional.next() {
                    Some(info) => info.name.clone(),
                    None => bail!(
                        "input {} has no NAME= and the model has only {} inputs",
                        arg.path.display(),
                        model.inputs().len()
                    ),
                },
            };
            Ok((name, read_tensor(&arg.path)?))
        })
        .collect()
}

/// The given input files, bound as [`bind_inputs`] does, or deterministic synthetic inputs when
/// there are none (free dims from `dims`, else 1).
pub fn inputs_or_synthetic(model: &Model, args: &[InputArg], dims: &[(String, u64)]) -> Result<Vec<(String, Tensor)>> {
    if args.is_empty() {
        let dims = dims.iter().cloned().collect();
        synthetic_inputs(model.inputs(), &dims, 0).context("while making synthetic inputs")
    } else {
        bind_inputs(model, args)
    }
}

/// A file name for an output: characters other than letters, digits, `-`, `_` and `.` become `_`.
pub fn file_safe(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    match safe.as_str() {
        "" | "." | ".." => format!("output_{}", safe.len()),
        _ => safe,
    }
}

/// The first `n` values, as text.
pub fn first_values(tensor: &Tensor, n: usize) -> Vec<String> {
    fn take<T: ToString>(values: &[T], n: usize) -> Vec<String> {
        values.iter().take(n).map(T::to_string).collect()
    }
    match tensor.data() {
        TensorData::F32(v) => take(v, n),
        TensorData::F64(v) => take(v, n),
        TensorData::I64(v) => take(v, n),
        TensorData::I32(v) => take(v, n),
        TensorData::U8(v) => take(v, n),
        TensorData::I8(v) => take(v, n),
        TensorData::Bool(v) => take(v, n),
    }
}

#[cfg(test)]
mod tests {
    use super::file_safe;

    #[test]
    fn output_names_become_safe_file_names() {
        assert_eq!(file_safe("logits"), "logits");
        assert_eq!(file_safe("onnx::Gemm_12/out:0"), "onnx__Gemm_12_out_0");
        assert_eq!(file_safe("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(file_safe(".."), "output_2");
        assert_eq!(file_safe(""), "output_0");
    }
}
