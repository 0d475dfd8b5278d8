//! The last line of defence: natively, a panic inside an engine (tract, wgpu) becomes an
//! error carrying the panic message, instead of taking the process down.
//!
//! The checks in front of each engine (the GPU gate, the CPU engine's input checks) exist so this
//! never fires; when it does, a check is missing. wasm32 has no unwinding (a panic aborts the
//! module), so there only the checks protect.

/// The message of a caught panic.
#[derive(Debug)]
pub(crate) struct Panic(pub String);

#[cfg(all(feature = "gpu", not(target_arch = "wasm32")))]
pub(crate) async fn guarded<T>(future: impl std::future::Future<Output = T>) -> Result<T, Panic> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::pin;
    use std::task::Poll;

    let mut future = pin!(future);
    std::future::poll_fn(move |cx| {
        // AssertUnwindSafe: after a panic the future is dropped, never polled again, and the
        // engine it belonged to is refused, so no broken state is observed.
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(Panic(panic_message(payload.as_ref())))),
        }
    })
    .await
}

#[cfg(all(feature = "gpu", target_arch = "wasm32"))]
pub(crate) async fn guarded<T>(future: impl std::future::Future<Output = T>) -> Result<T, Panic> {
    Ok(future.await)
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn guarded_sync<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    // AssertUnwindSafe: callers keep no state a panic could leave half-updated (a tract run owns
    // its per-run state; the plan it shares is immutable).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| Panic(panic_message(payload.as_ref())))
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn guarded_sync<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    Ok(f())
}

#[cfg(not(target_arch = "wasm32"))]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned())
}
