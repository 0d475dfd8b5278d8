//! The Open Inference Protocol's JSON tensors (KServe v2 REST) and their conversion to and from
//! runtime tensors. `data` may be flat (row-major) or nested as the shape; the datatypes are the
//! protocol's names for the element types the runtime carries. `data` is flattened into one typed
//! list as it is parsed ([`Scalars`]): 8 bytes a value, where a JSON tree of them took over 30.

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
    pub data: Scalars,
}

/// A request's `data`, row-major: integers until a number that is not one (then all numbers),
/// or booleans.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalars {
    Ints(Vec<i64>),
    /// `first_float` is the position of the first number that was not an integer.
    Floats {
        values: Vec<f64>,
        first_float: usize,
    },
    Bools(Vec<bool>),
}

impl Scalars {
    fn len(&self) -> usize {
        match self {
            Scalars::Ints(v) => v.len(),
            Scalars::Floats { values, .. } => values.len(),
            Scalars::Bools(v) => v.len(),
        }
    }

    fn push_int(&mut self, i: i64) -> Result<(), String> {
        match self {
            Scalars::Ints(v) => v.push(i),
            Scalars::Floats { values, .. } => values.push(i as f64),
            Scalars::Bools(v) if v.is_empty() => *self = Scalars::Ints(vec![i]),
            Scalars::Bools(v) => return Err(format!("value {} ({i}) is a number among booleans", v.len())),
        }
        Ok(())
    }

    fn push_float(&mut self, f: f64) -> Result<(), String> {
        match self {
            Scalars::Ints(v) => {
                let first_float = v.len();
                let mut values: Vec<f64> = v.iter().map(|&i| i as f64).collect();
                values.push(f);
                *self = Scalars::Floats { values, first_float };
            }
            Scalars::Floats { values, .. } => values.push(f),
            Scalars::Bools(v) if v.is_empty() => *self = Scalars::Floats { values: vec![f], first_float: 0 },
            Scalars::Bools(v) => return Err(format!("value {} ({f}) is a number among booleans", v.len())),
        }
        Ok(())
    }

    fn push_bool(&mut self, b: bool) -> Result<(), String> {
        match self {
            Scalars::Bools(v) => v.push(b),
            Scalars::Ints(v) if v.is_empty() => *self = Scalars::Bools(vec![b]),
            other => return Err(format!("value {} ({b}) is a boolean among numbers", other.len())),
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Scalars {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scalars, D::Error> {
        let mut scalars = Scalars::Ints(Vec::new());
        serde::de::DeserializeSeed::deserialize(Flatten(&mut scalars), deserializer)?;
        Ok(scalars)
    }
}

/// Appends a value, or every value of nested arrays, to the list.
struct Flatten<'a>(&'a mut Scalars);

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("numbers or booleans, flat or nested in arrays")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push_int(v).map_err(E::custom)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.0.push_int(i),
            Err(_) => self.0.push_float(v as f64),
        }
        .map_err(E::custom)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push_float(v).map_err(E::custom)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push_bool(v).map_err(E::custom)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        Err(E::custom(format!("value {} ({v:?}) is not a number or a boolean", self.0.len())))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(format!("value {} (null) is not a number or a boolean", self.0.len())))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom("`data` holds an object; expected numbers or booleans"))
    }
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
pub(crate) fn tensor_of(input: RequestInput) -> Result<Tensor, String> {
    let name = &input.name;
    let dtype = dtype_of(&input.datatype).ok_or_else(|| {
        format!(
            "input `{name}`: datatype {:?} is not one of FP32, FP64, INT64, INT32, UINT8, INT8, BOOL",
            input.datatype
        )
    })?;
    let shape: Vec<usize> = input
        .shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("input `{name}`: dim {d} is too large")))
        .collect::<Result<_, _>>()?;
    let data = match dtype {
        DType::F32 => numbers(&input.data, |x| x as f32).map(TensorData::F32),
        DType::F64 => numbers(&input.data, |x| x).map(TensorData::F64),
        DType::I64 => integers(&input.data, "an INT64", Some).map(TensorData::I64),
        DType::I32 => integers(&input.data, "an INT32", |i| i32::try_from(i).ok()).map(TensorData::I32),
        DType::U8 => integers(&input.data, "a UINT8", |i| u8::try_from(i).ok()).map(TensorData::U8),
        DType::I8 => integers(&input.data, "an INT8", |i| i8::try_from(i).ok()).map(TensorData::I8),
        DType::Bool => match input.data {
            Scalars::Bools(v) => Ok(TensorData::Bool(v)),
            Scalars::Ints(v) if v.is_empty() => Ok(TensorData::Bool(Vec::new())),
            other => Err(format!("value 0 ({}) is not a boolean", first(&other))),
        },
    }
    .map_err(|e| format!("input `{name}`: {e}"))?;
    Tensor::from_data(&shape, data).map_err(|e| format!("input `{name}`: {e}"))
}

/// The first value, as the request wrote it.
fn first(scalars: &Scalars) -> String {
    match scalars {
        Scalars::Ints(v) => v.first().map(i64::to_string),
        Scalars::Floats { values, .. } => values.first().map(f64::to_string),
        Scalars::Bools(v) => v.first().map(bool::to_string),
    }
    .unwrap_or_default()
}

/// Every value as a number, or the first boolean named.
fn numbers<T>(scalars: &Scalars, one: impl Fn(f64) -> T) -> Result<Vec<T>, String> {
    match scalars {
        Scalars::Ints(v) => Ok(v.iter().map(|&i| one(i as f64)).collect()),
        Scalars::Floats { values, .. } => Ok(values.iter().map(|&x| one(x)).collect()),
        Scalars::Bools(v) => Err(format!("value 0 ({}) is not a number", v[0])),
    }
}

/// Every value as an integer of the datatype, or the first that is not one named.
fn integers<T>(scalars: &Scalars, what: &str, one: impl Fn(i64) -> Option<T>) -> Result<Vec<T>, String> {
    match scalars {
        Scalars::Ints(v) => {
            v.iter().enumerate().map(|(i, &x)| one(x).ok_or_else(|| format!("value {i} ({x}) is not {what}"))).collect()
        }
        Scalars::Floats { values, first_float } => {
            Err(format!("value {first_float} ({}) is not {what}", values[*first_float]))
        }
        Scalars::Bools(v) => Err(format!("value 0 ({}) is not {what}", v[0])),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scalars(json: &str) -> Result<Scalars, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn input(datatype: &str, shape: &[u64], data: &str) -> Result<Tensor, String> {
        let data = scalars(data)?;
        tensor_of(RequestInput { name: "x".into(), shape: shape.to_vec(), datatype: datatype.into(), data })
    }

    #[test]
    fn data_is_flattened_into_one_typed_list_as_it_is_parsed() {
        assert_eq!(scalars("[[1, 2], [3, 4]]"), Ok(Scalars::Ints(vec![1, 2, 3, 4])));
        assert_eq!(scalars("[1, [2.5, 3]]"), Ok(Scalars::Floats { values: vec![1.0, 2.5, 3.0], first_float: 1 }));
        assert_eq!(scalars("[[true], [false]]"), Ok(Scalars::Bools(vec![true, false])));
        assert_eq!(scalars("7"), Ok(Scalars::Ints(vec![7])), "a scalar is one value");
        assert_eq!(scalars("[]"), Ok(Scalars::Ints(Vec::new())));
        for (json, named) in [
            ("[1, true]", "value 1 (true) is a boolean among numbers"),
            ("[true, 1]", "value 1 (1) is a number among booleans"),
            ("[0, \"a\"]", "value 1 (\"a\") is not a number or a boolean"),
            ("[null]", "value 0 (null) is not a number or a boolean"),
            ("[{\"x\": 1}]", "`data` holds an object"),
        ] {
            let e = scalars(json).unwrap_err();
            assert!(e.contains(named), "{json}: {e}");
        }
    }

    #[test]
    fn each_datatype_takes_its_values_and_names_the_first_it_cannot() {
        assert_eq!(
            input("FP32", &[2, 2], "[[1, 2.5], [3, 4]]").unwrap().data(),
            &TensorData::F32(vec![1.0, 2.5, 3.0, 4.0])
        );
        assert_eq!(
            input("INT64", &[2], "[9007199254740993, -1]").unwrap().data(),
            &TensorData::I64(vec![9_007_199_254_740_993, -1]),
            "exact beyond 2^53"
        );
        assert_eq!(input("BOOL", &[1], "[true]").unwrap().data(), &TensorData::Bool(vec![true]));
        for (datatype, data, named) in [
            ("INT64", "[1, 2.5]", "input `x`: value 1 (2.5) is not an INT64"),
            ("UINT8", "[1, 256]", "value 1 (256) is not a UINT8"),
            ("INT8", "[-129, 0]", "value 0 (-129) is not an INT8"),
            ("FP32", "[true, false]", "value 0 (true) is not a number"),
            ("BOOL", "[1, 0]", "value 0 (1) is not a boolean"),
        ] {
            let e = input(datatype, &[2], data).unwrap_err();
            assert!(e.contains(named), "{datatype} {data}: {e}");
        }
        let e = input("FP32", &[3], "[1, 2]").unwrap_err();
        assert!(e.starts_with("input `x`:"), "{e}");
    }
}
