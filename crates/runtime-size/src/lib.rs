//! A size probe, not a product: one exported function that reaches the runtime's whole public path
//! (parse, session, run) so the linker keeps what a real embedding would. `cargo xtask wasm-size`
//! builds it for wasm32 and reports raw and gzip sizes. It must never grow logic of its own.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use runtime::{Model, Session, SessionOptions, synthetic_inputs};

/// Parses `len` opaque bytes as a model, builds a session and runs it once on synthetic inputs.
#[allow(unsafe_code)]
// SAFETY: `no_mangle` only exports the symbol; the function takes and returns plain integers.
#[unsafe(no_mangle)]
pub extern "C" fn sextant_size_probe(len: usize) -> usize {
    let bytes = std::hint::black_box(vec![0u8; len]);
    let Ok(model) = Model::from_bytes(&bytes) else { return 0 };
    let Ready(Ok(session)) = poll_once(Session::new(&model, &SessionOptions::default())) else { return 1 };
    let Ok(inputs) = synthetic_inputs(session.inputs(), &Default::default(), 0) else { return 2 };
    match poll_once(session.run(inputs)) {
        Ready(Ok(outputs)) => outputs.len(),
        _ => 3,
    }
}

use Poll::Ready;

fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    pin!(future).poll(&mut Context::from_waker(Waker::noop()))
}
