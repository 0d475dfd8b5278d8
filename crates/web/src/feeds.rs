//! Tensors across the JS boundary: typed arrays (or `{ data, dims }`) in, `{ name, dtype, dims,
//! data }` out. Inputs are copied out of JS memory when `run` is called, so the page may reuse its
//! arrays at once.

use js_sys::{Array, BigInt64Array, Float32Array, Float64Array, Int8Array, Int32Array, Object, Reflect, Uint8Array};
use runtime::{DType, Dim, Tensor, TensorData, ValueInfo};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::WebError;
use crate::js;

/// The page's feeds object, matched against the model's inputs by name. Unknown and missing names
/// are left to the runtime's checks, which name what the model expects.
pub(crate) fn tensors_from_js(feeds: &JsValue, inputs: &[ValueInfo]) -> Result<Vec<(String, Tensor)>, WebError> {
    let object = feeds.dyn_ref::<Object>().filter(|_| !feeds.is_function()).ok_or_else(|| {
        WebError::bad_argument(format!("run expects an object of inputs by name, got {}", type_name(feeds)))
    })?;
    let mut tensors = Vec::new();
    for entry in Object::entries(object).iter() {
        let entry: Array = entry.unchecked_into();
        let name = entry.get(0).as_string().unwrap_or_default();
        let info = inputs.iter().find(|i| i.name == name);
        let tensor = tensor_from_js(&name, &entry.get(1), info)?;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

fn tensor_from_js(name: &str, value: &JsValue, info: Option<&ValueInfo>) -> Result<Tensor, WebError> {
    let want = info.and_then(|i| i.dtype);
    let (data, dims) = match data_of(value, want) {
        Some(data) => (data, None),
        None => {
            let data = js::get(value, "data").filter(|_| value.is_object()).ok_or_else(|| {
                WebError::bad_argument(format!(
                    "input `{name}`: expected a typed array, an array of numbers or {{ data, dims }}, got {}",
                    type_name(value)
                ))
            })?;
            let data = data_of(&data, want).ok_or_else(|| {
                WebError::bad_argument(format!(
                    "input `{name}`: `data` must be a typed array or an array of numbers, got {}",
                    type_name(&data)
                ))
            })?;
            (data, js::get(value, "dims").map(|d| dims_of(name, &d)).transpose()?)
        }
    };
    let dims = match dims {
        Some(dims) => dims,
        None => infer_dims(name, data.len(), info)?,
    };
    Tensor::from_data(&dims, data).map_err(|e| WebError::new("input_shape", format!("input `{name}`: {e}")))
}

/// The values of a typed array, or of a plain array of numbers in the dtype the model wants.
fn data_of(value: &JsValue, want: Option<DType>) -> Option<TensorData> {
    if let Some(a) = value.dyn_ref::<Float32Array>() {
        return Some(TensorData::F32(a.to_vec()));
    }
    if let Some(a) = value.dyn_ref::<Float64Array>() {
        return Some(TensorData::F64(a.to_vec()));
    }
    if let Some(a) = value.dyn_ref::<BigInt64Array>() {
        return Some(TensorData::I64(a.to_vec()));
    }
    if let Some(a) = value.dyn_ref::<Int32Array>() {
        return Some(TensorData::I32(a.to_vec()));
    }
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        let bytes = a.to_vec();
        return Some(match want {
            Some(DType::Bool) => TensorData::Bool(bytes.into_iter().map(|b| b != 0).collect()),
            _ => TensorData::U8(bytes),
        });
    }
    if let Some(a) = value.dyn_ref::<Int8Array>() {
        return Some(TensorData::I8(a.to_vec()));
    }
    let array = value.dyn_ref::<Array>()?;
    let numbers: Option<Vec<f64>> = array.iter().map(|v| v.as_f64()).collect();
    let numbers = numbers?;
    // `as` saturates: a number out of the element type's range cannot panic here.
    Some(match want.unwrap_or(DType::F32) {
        DType::F32 => TensorData::F32(numbers.iter().map(|&v| v as f32).collect()),
        DType::F64 => TensorData::F64(numbers),
        DType::I64 => TensorData::I64(numbers.iter().map(|&v| v as i64).collect()),
        DType::I32 => TensorData::I32(numbers.iter().map(|&v| v as i32).collect()),
        DType::U8 => TensorData::U8(numbers.iter().map(|&v| v as u8).collect()),
        DType::I8 => TensorData::I8(numbers.iter().map(|&v| v as i8).collect()),
        DType::Bool => TensorData::Bool(numbers.iter().map(|&v| v != 0.0).collect()),
    })
}

fn dims_of(name: &str, value: &JsValue) -> Result<Vec<usize>, WebError> {
    let bad = || WebError::bad_argument(format!("input `{name}`: `dims` must be an array of non-negative integers"));
    let array = value.dyn_ref::<Array>().ok_or_else(bad)?;
    array
        .iter()
        .map(|d| d.as_f64().filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v <= u32::MAX as f64).map(|v| v as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)
}

/// Dims for data given without them: the model's fixed dims, with at most one free dim taking
/// what the length leaves.
fn infer_dims(name: &str, len: usize, info: Option<&ValueInfo>) -> Result<Vec<usize>, WebError> {
    let Some(dims) = info.and_then(|i| i.shape.as_ref()) else { return Ok(vec![len]) };
    let shape = || info.map(|i| i.shape_text()).unwrap_or_default();
    let fixed: usize =
        dims.iter().filter_map(|d| if let Dim::Fixed(v) = d { Some(*v as usize) } else { None }).product();
    let free = dims.iter().filter(|d| !matches!(d, Dim::Fixed(_))).count();
    let unfit = |why: &str| {
        WebError::new(
            "input_shape",
            format!("input `{name}`: {len} values do not fit shape {} ({why}); pass {{ data, dims }}", shape()),
        )
    };
    match free {
        0 if fixed == len => Ok(dims.iter().map(|d| if let Dim::Fixed(v) = d { *v as usize } else { 0 }).collect()),
        0 => Err(unfit(&format!("it holds {fixed}"))),
        1 if fixed > 0 && len.is_multiple_of(fixed) => {
            Ok(dims.iter().map(|d| if let Dim::Fixed(v) = d { *v as usize } else { len / fixed }).collect())
        }
        1 => Err(unfit(&format!("not a multiple of {fixed}"))),
        _ => Err(unfit("more than one free dim")),
    }
}

/// An output as the page gets it.
pub(crate) fn tensor_to_js(name: &str, tensor: &Tensor) -> JsValue {
    let data: JsValue = match tensor.data() {
        TensorData::F32(v) => Float32Array::from(v.as_slice()).into(),
        TensorData::F64(v) => Float64Array::from(v.as_slice()).into(),
        TensorData::I64(v) => BigInt64Array::from(v.as_slice()).into(),
        TensorData::I32(v) => Int32Array::from(v.as_slice()).into(),
        TensorData::U8(v) => Uint8Array::from(v.as_slice()).into(),
        TensorData::I8(v) => Int8Array::from(v.as_slice()).into(),
        TensorData::Bool(v) => Uint8Array::from(v.iter().map(|&b| u8::from(b)).collect::<Vec<_>>().as_slice()).into(),
    };
    let dims: Array = tensor.shape().iter().map(|&d| JsValue::from(d as f64)).collect();
    let object = Object::new();
    for (key, value) in [
        ("name", JsValue::from(name)),
        ("dtype", tensor.dtype().to_string().into()),
        ("dims", dims.into()),
        ("data", data),
    ] {
        let _ = Reflect::set(&object, &key.into(), &value);
    }
    object.into()
}

/// A model input or output as `TensorInfo`.
pub(crate) fn info_to_js(info: &ValueInfo) -> JsValue {
    let dims: JsValue = match &info.shape {
        None => JsValue::NULL,
        Some(dims) => dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(v) => JsValue::from(*v as f64),
                Dim::Symbolic(name) => JsValue::from(name.as_str()),
                Dim::Unknown => JsValue::NULL,
            })
            .collect::<Array>()
            .into(),
    };
    let object = Object::new();
    let dtype = info.dtype.map_or(JsValue::NULL, |d| d.to_string().into());
    for (key, value) in [("name", JsValue::from(info.name.as_str())), ("dtype", dtype), ("dims", dims)] {
        let _ = Reflect::set(&object, &key.into(), &value);
    }
    object.into()
}

fn type_name(value: &JsValue) -> String {
    if value.is_null() {
        return "null".to_owned();
    }
    if value.is_array() {
        return "an array that is not all numbers".to_owned();
    }
    value.js_typeof().as_string().unwrap_or_else(|| "an unknown value".to_owned())
}
