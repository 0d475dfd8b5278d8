//! What the runtime adds over plain tract, measured side by side in one run.
//!
//! For each case (the fixtures, plus any backend-test case folders given as arguments, such as the
//! materialised light models from `cargo xtask bench-compare`), the same model and input run through
//! tract's own API (parse, optimize, plan, run) and through `runtime::Session` on the CPU engine,
//! in interleaved rounds so drift hits both alike. Prints the median latencies and their ratio.
//!
//! `cargo bench --bench overhead [-- CASE_DIR...]`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::{BackendChoice, Model, Session, SessionOptions, Tensor, TensorData, onnx_pb};
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoRunnable, IntoTValue, tvec};

fn main() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runtime/test_data/models");
    let mut cases: Vec<PathBuf> =
        ["digits_mlp", "digits_cnn", "wine_tabular"].iter().map(|n| fixtures.join(n)).collect();
    cases.extend(std::env::args().skip(1).filter(|a| !a.starts_with("--")).map(PathBuf::from));
    println!("machine: {}", cpu_name());
    println!("{:<16} {:>14} {:>14} {:>8}", "case", "tract p50", "sextant p50", "ratio");
    for case in cases {
        let (plain, ours) = measure(&case);
        let name = case.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let ratio = ours.as_secs_f64() / plain.as_secs_f64();
        println!("{name:<16} {:>11.3} ms {:>11.3} ms {ratio:>8.3}", ms(plain), ms(ours));
    }
}

fn measure(case: &Path) -> (Duration, Duration) {
    let bytes = std::fs::read(case.join("model.onnx")).expect("model.onnx");
    let input = std::fs::read(case.join("test_data_set_0/input_0.pb")).expect("input_0.pb");
    let name = onnx_pb::name(&input).expect("input name");
    let tensor = onnx_pb::decode(&input).expect("input tensor");

    let plan = tract_onnx::onnx()
        .model_for_read(&mut bytes.as_slice())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract plan");
    let TensorData::F32(values) = tensor.data() else { panic!("benchmarks take f32 inputs") };
    let tract_input = tract_onnx::prelude::Tensor::from_shape(tensor.shape(), values).expect("tract tensor");

    let model = Model::from_bytes(&bytes).expect("model");
    let inputs: Vec<(String, Tensor)> = vec![(name, tensor)];
    // No dim overrides: tract gets the model as declared on both sides (a fixed batch would let the
    // session's plan specialise where plain tract's cannot).
    let options = SessionOptions { backend: BackendChoice::Cpu, ..SessionOptions::default() };
    let session = pollster::block_on(Session::new(&model, &options)).expect("session");

    // Both sides copy the input once per run: tract's caller clones its tensor, ours moves a clone in.
    let mut run_plain = || {
        plan.run(tvec![tract_input.clone().into_tvalue()]).expect("tract run");
    };
    let mut run_ours = || {
        pollster::block_on(session.run(inputs.clone())).expect("sextant run");
    };
    let once = time(&mut run_plain, 1);
    let per_round = ((Duration::from_millis(200).as_secs_f64() / once.as_secs_f64()) as usize).clamp(1, 200);
    let (mut plain, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        plain.push(time(&mut run_plain, per_round));
        ours.push(time(&mut run_ours, per_round));
    }
    (median(plain), median(ours))
}

/// Mean time of one run over `n` runs.
fn time(f: &mut impl FnMut(), n: usize) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n as u32
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn cpu_name() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    format!("{} ({threads} threads available; both engines single-threaded)", model.unwrap_or("unknown CPU"))
}
