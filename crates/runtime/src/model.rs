//! A parsed, validated ONNX model and its signature.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;
use tract_onnx::pb::type_proto::Value as TypeValue;

use crate::tensor::{DType, onnx_type_name};
use crate::{Error, Result};

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dim {
    Fixed(u64),
    /// A named free dimension such as a batch size (`dim_param` in ONNX).
    Symbolic(String),
    /// Neither a value nor a name is declared.
    Unknown,
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(v) => write!(f, "{v}"),
            Dim::Symbolic(name) => f.write_str(name),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A named graph input or output: its element type and declared shape.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValueInfo {
    pub name: String,
    /// `None` when the element type is one the runtime does not carry (see `type_name`).
    pub dtype: Option<DType>,
    /// ONNX's name of the element type, e.g. `f32` or `f16`.
    pub type_name: String,
    /// `None` when the model declares no shape (unknown rank).
    pub shape: Option<Vec<Dim>>,
}

impl ValueInfo {
    /// Elements per row (per index of the leading, batch axis) when every other dim is fixed: 64
    /// for `[N, 64]`, 1 for `[N]` or a scalar; `None` with a free dim past the first or no shape.
    pub fn row_width(&self) -> Option<usize> {
        match self.shape.as_deref()? {
            [] => Some(1),
            [_, rest @ ..] => {
                rest.iter().map(|d| if let Dim::Fixed(v) = d { usize::try_from(*v).ok() } else { None }).product()
            }
        }
    }

    /// The shape as text, e.g. `[N, 3, 224, 224]`, or `unknown` without a declared rank.
    pub fn shape_text(&self) -> String {
        match &self.shape {
            Some(dims) => {
                let dims: Vec<String> = dims.iter().map(Dim::to_string).collect();
                format!("[{}]", dims.join(", "))
            }
            None => "unknown".to_owned(),
        }
    }

    fn from_proto(value: &pb::ValueInfoProto, role: &str) -> Result<ValueInfo> {
        let Some(TypeValue::TensorType(tensor)) = value.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
            return Err(Error::InvalidModel(format!(
                "graph {role} `{}` is not a tensor (sequence, map and optional types are not supported)",
                value.name
            )));
        };
        let shape = tensor.shape.as_ref().map(|shape| {
            shape
                .dim
                .iter()
                .map(|d| match &d.value {
                    Some(DimValue::DimValue(v)) if *v >= 0 => Dim::Fixed(*v as u64),
                    Some(DimValue::DimParam(name)) if !name.is_empty() => Dim::Symbolic(name.clone()),
                    _ => Dim::Unknown,
                })
                .collect()
        });
        Ok(ValueInfo {
            name: value.name.clone(),
            dtype: DType::from_onnx(tensor.elem_type).ok(),
            type_name: onnx_type_name(tensor.elem_type).to_owned(),
            shape,
        })
    }
}

/// An operator set the model imports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Opset {
    /// `""` is the default ONNX domain (`ai.onnx`).
    pub domain: String,
    pub version: i64,
}

/// A parsed and validated ONNX model. Cheap to inspect; engines are built from it by [`crate::Session`].
#[derive(Debug, Clone)]
pub struct Model {
    proto: pb::ModelProto,
    byte_len: usize,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    opsets: Vec<Opset>,
    ops: BTreeMap<String, usize>,
    metadata: BTreeMap<String, String>,
}

impl Model {
    /// Parses and validates ONNX model bytes. Malformed, truncated or inconsistent models are errors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        if bytes.is_empty() {
            return Err(Error::InvalidModel("the model is empty (0 bytes)".to_owned()));
        }
        let proto = pb::ModelProto::decode(bytes).map_err(|source| Error::Decode { what: "ONNX model", source })?;
        Model::from_proto(proto, bytes.len())
    }

    pub(crate) fn from_proto(mut proto: pb::ModelProto, byte_len: usize) -> Result<Model> {
        if let Some(graph) = proto.graph.as_mut() {
            unique_node_names(graph);
        }
        let Some(graph) = proto.graph.as_ref() else {
            return Err(Error::InvalidModel("it has no graph (is this an ONNX model file?)".to_owned()));
        };
        if proto.ir_version <= 0 {
            return Err(Error::InvalidModel(format!("ir_version is {}, expected 1 or more", proto.ir_version)));
        }
        let opsets: Vec<Opset> =
            proto.opset_import.iter().map(|o| Opset { domain: o.domain.clone(), version: o.version }).collect();
        if !opsets.iter().any(|o| is_default_domain(&o.domain)) {
            return Err(Error::InvalidModel("it imports no opset of the default ONNX domain".to_owned()));
        }
        if graph.output.is_empty() {
            return Err(Error::InvalidModel("the graph has no outputs".to_owned()));
        }
        let initialized: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs = graph
            .input
            .iter()
            .filter(|i| !initialized.contains(i.name.as_str()))
            .map(|i| ValueInfo::from_proto(i, "input"))
            .collect::<Result<Vec<_>>>()?;
        let outputs = graph.output.iter().map(|o| ValueInfo::from_proto(o, "output")).collect::<Result<Vec<_>>>()?;
        check_topology(graph)?;
        crate::tensor_proto::check_graph(graph).map_err(Error::InvalidModel)?;

        let mut ops = BTreeMap::new();
        for node in &graph.node {
            *ops.entry(op_key(node)).or_insert(0) += 1;
        }
        let metadata = proto.metadata_props.iter().map(|p| (p.key.clone(), p.value.clone())).collect();
        Ok(Model { proto, byte_len, inputs, outputs, opsets, ops, metadata })
    }

    /// Graph inputs the caller feeds: those without an initializer.
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    pub fn opsets(&self) -> &[Opset] {
        &self.opsets
    }

    /// The version of the default ONNX opset the model imports.
    pub fn onnx_opset(&self) -> i64 {
        self.opsets.iter().filter(|o| is_default_domain(&o.domain)).map(|o| o.version).max().unwrap_or(0)
    }

    /// Node count per operator; ops outside the default domain are keyed `domain:Op`.
    pub fn op_histogram(&self) -> &BTreeMap<String, usize> {
        &self.ops
    }

    /// `metadata_props`: free-form key/value pairs, e.g. a model name and version for telemetry.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The producing tool and its version, e.g. `("pytorch", "2.4.0")`.
    pub fn producer(&self) -> (&str, &str) {
        (&self.proto.producer_name, &self.proto.producer_version)
    }

    pub fn ir_version(&self) -> i64 {
        self.proto.ir_version
    }

    pub fn model_version(&self) -> i64 {
        self.proto.model_version
    }

    pub fn graph_name(&self) -> &str {
        self.proto.graph.as_ref().map_or("", |g| g.name.as_str())
    }

    /// Size of the serialized model in bytes.
    pub fn byte_len(&self) -> usize {
        self.byte_len
    }

    /// Names of the free dimensions of the inputs, which [`crate::SessionOptions::dims`] can fix.
    pub fn symbolic_dims(&self) -> BTreeSet<String> {
        self.inputs
            .iter()
            .flat_map(|i| i.shape.iter().flatten())
            .filter_map(|d| match d {
                Dim::Symbolic(name) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn proto(&self) -> &pb::ModelProto {
        &self.proto
    }

    /// This model with the named free dims fixed everywhere they are declared (as onnxruntime's
    /// `freeDimensionOverrides`). Naming a dim no input has is an error: it is usually a typo.
    pub(crate) fn with_dims(&self, dims: &BTreeMap<String, u64>) -> Result<Model> {
        if dims.is_empty() {
            return Ok(self.clone());
        }
        let known = self.symbolic_dims();
        if let Some(name) = dims.keys().find(|name| !known.contains(*name)) {
            return Err(Error::UnknownDim { name: name.clone(), known: known.into_iter().collect() });
        }
        let mut proto = self.proto.clone();
        if let Some(graph) = proto.graph.as_mut() {
            let values = graph.input.iter_mut().chain(graph.output.iter_mut()).chain(graph.value_info.iter_mut());
            for value in values {
                let Some(TypeValue::TensorType(tensor)) = value.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
                    continue;
                };
                for dim in tensor.shape.iter_mut().flat_map(|s| s.dim.iter_mut()) {
                    if let Some(DimValue::DimParam(name)) = &dim.value
                        && let Some(&v) = dims.get(name)
                    {
                        dim.value = Some(DimValue::DimValue(v as i64));
                    }
                }
            }
        }
        Model::from_proto(proto, self.byte_len)
    }
}

impl Model {
    /// Whether any input has a dim the caller's tensors decide (named, unnamed or `-1`), or no
    /// declared shape at all.
    pub(crate) fn has_free_dims(&self) -> bool {
        self.inputs.iter().any(|i| i.shape.as_ref().is_none_or(|dims| dims.iter().any(|d| !matches!(d, Dim::Fixed(_)))))
    }

    /// This model for inputs of exactly these shapes (in input order), with the shapes it stores
    /// for intermediate values and outputs dropped: exporters leave stale ones behind (a
    /// `value_info` of the size they traced with), and the engine infers them from the inputs.
    pub(crate) fn for_shapes(&self, shapes: &[&[usize]]) -> Result<Model> {
        let mut proto = self.proto.clone();
        if let Some(graph) = proto.graph.as_mut() {
            for (info, shape) in self.inputs.iter().zip(shapes) {
                let Some(value) = graph.input.iter_mut().find(|i| i.name == info.name) else { continue };
                if let Some(TypeValue::TensorType(tensor)) = value.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                    let dim = |v: usize| pb::tensor_shape_proto::Dimension {
                        value: Some(DimValue::DimValue(i64::try_from(v).unwrap_or(i64::MAX))),
                        denotation: String::new(),
                    };
                    tensor.shape = Some(pb::TensorShapeProto { dim: shape.iter().map(|&v| dim(v)).collect() });
                }
            }
            graph.value_info.clear();
            for value in &mut graph.output {
                if let Some(TypeValue::TensorType(tensor)) = value.r#type.as_mut().and_then(|t| t.value.as_mut()) {
                    tensor.shape = None;
                }
            }
        }
        Model::from_proto(proto, self.byte_len)
    }
}

pub(crate) fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

pub(crate) fn op_key(node: &pb::NodeProto) -> String {
    if is_default_domain(&node.domain) { node.op_type.clone() } else { format!("{}:{}", node.domain, node.op_type) }
}

/// ONNX keeps node names and tensor names apart, but tract names its nodes after both: a node called
/// like a tensor (an exporter may call both `scale`) or like another node is renamed `{name}_{index}`.
fn unique_node_names(graph: &mut pb::GraphProto) {
    let mut taken: HashSet<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    taken.extend(graph.initializer.iter().map(|t| t.name.clone()));
    taken.extend(graph.node.iter().flat_map(|n| n.output.iter().cloned()));
    for (ix, node) in graph.node.iter_mut().enumerate() {
        if node.name.is_empty() {
            continue;
        }
        if taken.contains(&node.name) {
            let mut renamed = format!("{}_{ix}", node.name);
            while taken.contains(&renamed) {
                renamed.push('_');
            }
            node.name = renamed;
        }
        taken.insert(node.name.clone());
    }
}

/// Nodes must be in topological order (as ONNX requires) and read only defined values.
fn check_topology(graph: &pb::GraphProto) -> Result<()> {
    let mut defined: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    for (ix, node) in graph.node.iter().enumerate() {
        if node.op_type.is_empty() {
            return Err(Error::InvalidModel(format!("node #{ix} (`{}`) has no op_type", node.name)));
        }
        // Empty names mark omitted optional inputs.
        if let Some(missing) = node.input.iter().find(|i| !i.is_empty() && !defined.contains(i.as_str())) {
            return Err(Error::InvalidModel(format!(
                "node `{}` ({}) reads `{missing}`, which no input, initializer or earlier node defines",
                node_name(node, ix),
                node.op_type
            )));
        }
        defined.extend(node.output.iter().map(String::as_str));
    }
    if let Some(missing) = graph.output.iter().find(|o| !defined.contains(o.name.as_str())) {
        return Err(Error::InvalidModel(format!("graph output `{}` is produced by no node", missing.name)));
    }
    Ok(())
}

/// A node's name for messages: its own, or its position when it has none.
pub(crate) fn node_name(node: &pb::NodeProto, ix: usize) -> String {
    if node.name.is_empty() { format!("#{ix}") } else { node.name.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_typed_error() {
        for bytes in [&b""[..], b"\x08", b"not an onnx model at all", &[0xff; 64]] {
            let err = Model::from_bytes(bytes).unwrap_err();
            assert!(matches!(err, Error::Decode { .. } | Error::InvalidModel(_)), "{err}");
        }
    }
}
