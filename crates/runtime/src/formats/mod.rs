//! Tensor file formats, as bytes in and bytes out: `.npy` and ONNX `TensorProto` (`.pb`).

pub mod npy;
pub mod onnx_pb;
