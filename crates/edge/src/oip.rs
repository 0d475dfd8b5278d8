//! The Open Inference Protocol's JSON tensors (KServe v2 REST) and their conversion to and from
//! runtime tensors. `data` may be flat (row-major) or nested as the shape; the datatypes are the
//! protocol's names for the element types the runtime carries.

use runtime::{DType, Dim, Tensor, TensorData, ValueInfo};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub(crate) struct InferRequest {
    pub id: Option<String>,
    pub inputs: Vec<RequestInput>,
    /// Outputs wanted, by name; all when absent.
    pub outputs: Option<Vec<RequestOutput>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RequestInput {
    pub name: String,
    pub shape: Vec<u64>,
    pub datatype: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RequestOutput {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    pub outputs: Vec<ResponseOutput>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ResponseOutput {
    pub name: String,
    pub shape: Vec<usize>,
    pub datatype: &'static str,
    pub data: serde_json::Value,
}

/// Model metadata: `GET /v2/models/{m}`.
#[derive(Debug, Serialize)]
pub(crate) struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    /// -1 for a free or unknown dim.
    pub shape: Vec<i64>,
}

impl TensorMetadata {
    pub(crate) fn of(info: &ValueInfo) -> TensorMetadata {
        TensorMetadata {
            name: info.name.clone(),
            datatype: info.dtype.map_or_else(|| info.type_name.to_uppercase(), |d| datatype(d).to_owned()),
            shape: info
                .shape
                .iter()
                .flatten()
                .map(|d| if let Dim::Fixed(v) = d { i64::try_from(*v).unwrap_or(-1) } else { -1 })
                .collect(),
        }
    }
}

/// The protocol's name of an element type.
pub(crate) fn datatype(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "FP32",
        DType::F64 => "FP64",
        DType::I64 => "INT64",
        DType::I32 => "INT32",
        DType::U8 => "UINT8",
        DType::I8 => "INT8",
        DType::Bool => "BOOL",
    }
}

fn dtype_of(name: &str) -> Option<DType> {
    Some(match name {
        "FP32" => DType::F32,
        "FP64" => DType::F64,
        "INT64" => DType::I64,
        "INT32" => DType::I32,
        "UINT8" => DType::U8,
        "INT8" => DType::I8,
        "BOOL" => DType::Bool,
        _ => return None,
    })
}

/// A request input as a runtime tensor; `Err` names the input and what was wrong.
pub(crate) fn tensor_of(input: &RequestInput) -> Result<Tensor, String> {
    let name = &input.name;
    let dtype = dtype_of(&input.datatype).ok_or_else(|| {
        format!(
            "input `{name}`: datatype {:?} is not one of FP32, FP64, INT64, INT32, UINT8, INT8, BOOL",
            input.datatype
        )
    })?;
    let mut values = Vec::new();
    flatten(&input.data, &mut values).map_err(|e| format!("input `{name}`: {e}"))?;
    let shape: Vec<usize> = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("input `{name}`: dim {d} is too large")))
        .collect::<Result<_, _>>()?;
    use serde_json::Value;
    let data = match dtype {
        DType::F32 => TensorData::F32(convert(name, &values, "a number", |v| v.as_f64().map(|f| f as f32))?),
        DType::F64 => TensorData::F64(convert(name, &values, "a number", Value::as_f64)?),
        DType::I64 => TensorData::I64(convert(name, &values, "an INT64", Value::as_i64)?),
        DType::I32 => {
            TensorData::I32(convert(name, &values, "an INT32", |v| v.as_i64().and_then(|i| i32::try_from(i).ok()))?)
        }
        DType::U8 => {
            TensorData::U8(convert(name, &values, "a UINT8", |v| v.as_u64().and_then(|i| u8::try_from(i).ok()))?)
        }
        DType::I8 => {
            TensorData::I8(convert(name, &values, "an INT8", |v| v.as_i64().and_then(|i| i8::try_from(i).ok()))?)
        }
        DType::Bool => TensorData::Bool(convert(name, &values, "a boolean", Value::as_bool)?),
    };
    Tensor::from_data(&shape, data).map_err(|e| format!("input `{name}`: {e}"))
}

/// Converts every value, or names the first that is not `what`.
fn convert<T>(
    name: &str,
    values: &[&serde_json::Value],
    what: &str,
    one: impl Fn(&serde_json::Value) -> Option<T>,
) -> Result<Vec<T>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| one(v).ok_or_else(|| format!("input `{name}`: value {i} ({v}) is not {what}")))
        .collect()
}

/// Nested arrays, row-major, into one list of scalars.
fn flatten<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) -> Result<(), String> {
    match value {
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out)),
        serde_json::Value::Object(_) => Err("`data` holds an object; expected numbers or booleans".to_owned()),
        scalar => {
            out.push(scalar);
            Ok(())
        }
    }
}

/// A runtime tensor as a response output (flat data).
pub(crate) fn output_of(name: &str, tensor: &Tensor) -> ResponseOutput {
    let data = match tensor.data() {
        TensorData::F32(v) => serde_json::json!(v),
        TensorData::F64(v) => serde_json::json!(v),
        TensorData::I64(v) => serde_json::json!(v),
        TensorData::I32(v) => serde_json::json!(v),
        TensorData::U8(v) => serde_json::json!(v),
        TensorData::I8(v) => serde_json::json!(v),
        TensorData::Bool(v) => serde_json::json!(v),
    };
    ResponseOutput { name: name.to_owned(), shape: tensor.shape().to_vec(), datatype: datatype(tensor.dtype()), data }
}
