//! The last line of defence: natively, a panic inside wonnx or wgpu becomes a refusal.
//!
//! The gate's rules exist so this never fires; when it does, the gate has a bug. wasm32 has no
//! unwinding (a panic aborts the module), so there only the rules protect.

use std::future::Future;

use crate::backend::Refusal;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn guarded<T>(future: impl Future<Output = T>) -> Result<T, Refusal> {
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
            Err(payload) => Poll::Ready(Err(Refusal::Panicked { message: panic_message(payload.as_ref()) })),
        }
    })
    .await
}

#[cfg(target_arch = "wasm32")]
pub(crate) async fn guarded<T>(future: impl Future<Output = T>) -> Result<T, Refusal> {
    Ok(future.await)
}

#[cfg(not(target_arch = "wasm32"))]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned())
}
