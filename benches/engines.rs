//! Criterion benches of both engines on the fixtures (batch 16): the CPU engine and the GPU
//! engine. The GPU engine is skipped, with a message, where the gate refuses it.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use runtime::{BackendChoice, Model, Session, SessionOptions, Tensor, onnx_pb};

fn fixture(name: &str) -> (Model, Vec<(String, Tensor)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runtime/test_data/models").join(name);
    let model = Model::from_bytes(&std::fs::read(dir.join("model.onnx")).expect("fixture")).expect("model");
    let input = std::fs::read(dir.join("test_data_set_0/input_0.pb")).expect("input");
    let tensor = onnx_pb::decode(&input).expect("tensor");
    (model, vec![(onnx_pb::name(&input).expect("name"), tensor)])
}

fn engines(c: &mut Criterion) {
    for name in ["digits_mlp", "digits_cnn", "wine_tabular"] {
        let (model, inputs) = fixture(name);
        let dims = runtime::free_dims_of(model.inputs(), &inputs);
        let mut group = c.benchmark_group(name);
        for (label, backend) in [("cpu", BackendChoice::Cpu), ("gpu", BackendChoice::Gpu)] {
            let options = SessionOptions { backend, dims: dims.clone(), ..SessionOptions::default() };
            let session = match pollster::block_on(Session::new(&model, &options)) {
                Ok(session) => session,
                Err(refused) => {
                    eprintln!("{name}/{label}: not benchmarked: {refused}");
                    continue;
                }
            };
            group.bench_function(label, |b| b.iter(|| pollster::block_on(session.run(inputs.clone())).expect("run")));
        }
        group.finish();
    }
}

criterion_group!(benches, engines);
criterion_main!(benches);
