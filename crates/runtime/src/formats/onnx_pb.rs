//! ONNX `TensorProto` files: the `input_*.pb` / `output_*.pb` of ONNX's backend test data.

use prost::Message;
use tract_onnx::data_resolver::FopenDataResolver;
use tract_onnx::pb::TensorProto;

use crate::{Error, Result, Tensor};

/// Decodes a serialized `TensorProto`. External data is not followed (there is no IO here).
pub fn decode(bytes: &[u8]) -> Result<Tensor> {
    let proto = TensorProto::decode(bytes).map_err(|source| Error::Decode { what: "ONNX TensorProto", source })?;
    crate::tensor_proto::check(&proto, "tensor")
        .map_err(|detail| Error::TensorFormat { format: "ONNX TensorProto", detail })?;
    // The resolver is only consulted for external data, which a `None` path refuses.
    let tensor = tract_onnx::tensor::load_tensor(&FopenDataResolver, &proto, None)
        .map_err(|e| Error::TensorFormat { format: "ONNX TensorProto", detail: format!("{e:#}") })?;
    crate::cpu::from_tract(&tensor)
}

/// The `name` field of a serialized `TensorProto`, which backend test data uses to bind inputs.
pub fn name(bytes: &[u8]) -> Result<String> {
    let proto = TensorProto::decode(bytes).map_err(|source| Error::Decode { what: "ONNX TensorProto", source })?;
    Ok(proto.name)
}
