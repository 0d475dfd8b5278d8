//! The few platform calls the package needs, looked up on the global object so that they work in
//! a window and in a worker alike.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A property of `target`, if it is there and not `undefined`.
pub(crate) fn get(target: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(target, &key.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// Calls `target[method](args…)`; `None` when there is no such method or it throws.
pub(crate) fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Option<JsValue> {
    let function = get(target, method)?.dyn_into::<Function>().ok()?;
    let args: js_sys::Array = args.iter().collect();
    function.apply(target, &args).ok()
}

/// Milliseconds since the Unix epoch, as telemetry timestamps are.
pub(crate) fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A monotonic clock with sub-millisecond resolution, for latency.
pub(crate) fn precise_ms() -> f64 {
    get(&js_sys::global(), "performance")
        .and_then(|p| call(&p, "now", &[]))
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

/// A random id: `crypto.randomUUID()` where the page is a secure context, else 128 bits from
/// `crypto.getRandomValues`-backed `Math.random` (ids only need to be unique, not secret).
pub(crate) fn random_id() -> String {
    get(&js_sys::global(), "crypto")
        .and_then(|c| call(&c, "randomUUID", &[]))
        .and_then(|v| v.as_string())
        .unwrap_or_else(|| {
            (0..4).map(|_| format!("{:08x}", (js_sys::Math::random() * 4_294_967_296.0) as u32)).collect()
        })
}

/// A uniform value in [0, 1), for retry jitter.
pub(crate) fn jitter() -> f64 {
    js_sys::Math::random()
}

/// Resolves after `ms` milliseconds (`setTimeout`).
pub(crate) async fn sleep(ms: f64) {
    let promise = Promise::new(&mut |resolve, _| {
        if call(&js_sys::global(), "setTimeout", &[resolve.clone().into(), ms.max(0.0).into()]).is_none() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// The text of a thrown JS value, for error messages.
pub(crate) fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// The page's WebGPU adapter as `GPUAdapter.info` describes it, for the runtime's choice (wgpu
/// 0.16 cannot read it): `None` without WebGPU or an adapter.
pub(crate) async fn webgpu_adapter() -> Option<runtime::AdapterHint> {
    let gpu = get(&get(&js_sys::global(), "navigator")?, "gpu")?;
    let adapter = JsFuture::from(Promise::from(call(&gpu, "requestAdapter", &[])?)).await.ok()?;
    if adapter.is_null() || adapter.is_undefined() {
        return None;
    }
    let info = get(&adapter, "info");
    let text = |key: &str| info.as_ref().and_then(|i| get(i, key)).and_then(|v| v.as_string()).unwrap_or_default();
    let parts: Vec<String> =
        ["vendor", "architecture", "description"].iter().map(|k| text(k)).filter(|t| !t.is_empty()).collect();
    let fallback = [Some(adapter.clone()), info.clone()]
        .iter()
        .flatten()
        .any(|target| get(target, "isFallbackAdapter").is_some_and(|v| v.is_truthy()));
    let named_software = parts.iter().any(|p| p.to_ascii_lowercase().contains("swiftshader"));
    let description = if parts.is_empty() { "unnamed".to_owned() } else { parts.join(" ") };
    Some(runtime::AdapterHint { description: format!("{description} (WebGPU)"), software: fallback || named_software })
}
