//! Model bytes from outside: parse, build a CPU session, run it once. Errors are fine; panics,
//! aborts and hangs are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runtime::{BackendChoice, Model, Session, SessionOptions, synthetic_inputs};

/// Inputs larger than this are not run: the point is the engine's handling of the graph, and a
/// model may legitimately declare an input too large to fill here.
const MAX_INPUT_ELEMENTS: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else { return };
    let options = SessionOptions { backend: BackendChoice::Cpu, ..SessionOptions::default() };
    let session = match pollster::block_on(Session::new(&model, &options)) {
        Ok(session) => session,
        Err(error) => {
            assert!(!error.to_string().contains("panicked"), "{error}");
            return;
        }
    };
    let Ok(inputs) = synthetic_inputs(session.inputs(), &Default::default(), 1) else { return };
    if inputs.iter().map(|(_, t)| t.len()).sum::<usize>() > MAX_INPUT_ELEMENTS {
        return;
    }
    // Natively the runtime catches engine panics and returns an error; in wasm they would abort,
    // so a caught panic is still a finding.
    if let Err(error) = pollster::block_on(session.run(inputs)) {
        assert!(!error.to_string().contains("panicked"), "{error}");
    }
});
