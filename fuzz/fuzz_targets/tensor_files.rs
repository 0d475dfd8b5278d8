//! Tensor files from outside (`sextant run --input`): `.npy` and ONNX `TensorProto`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime::{npy, onnx_pb};

fuzz_target!(|data: &[u8]| {
    if let Ok(tensor) = npy::decode(data) {
        // Compared as bytes: NaN != NaN as values.
        let bytes = npy::encode(&tensor);
        assert_eq!(npy::decode(&bytes).map(|t| npy::encode(&t)).ok(), Some(bytes), "npy round trip");
    }
    let _ = onnx_pb::decode(data);
});
