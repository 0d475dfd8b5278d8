//! Model bytes from what the page passes: bytes as they are, or a URL fetched as a stream (with
//! progress) and optionally kept in the Cache API. The content hash is checked where one is given.

use js_sys::{ArrayBuffer, Uint8Array};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::WebError;
use crate::js;
use crate::options::LoadOptions;

const CACHE_NAME: &str = "sextant-models";

/// The model's bytes and their SHA-256, as lowercase hex.
pub(crate) struct Loaded {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

pub(crate) async fn load(source: &JsValue, options: &LoadOptions) -> Result<Loaded, WebError> {
    if let Some(bytes) = source.dyn_ref::<Uint8Array>() {
        return checked(bytes.to_vec(), options);
    }
    if let Some(buffer) = source.dyn_ref::<ArrayBuffer>() {
        return checked(Uint8Array::new(buffer).to_vec(), options);
    }
    // A string, or a URL object (its `href`).
    let url = source.as_string().or_else(|| js::get(source, "href").and_then(|h| h.as_string())).ok_or_else(|| {
        WebError::bad_argument("the model must be a URL (string or URL) or bytes (Uint8Array or ArrayBuffer)")
    })?;
    let cache = if options.cache { open_cache().await } else { None };
    let key = match &options.sha256 {
        // A synthetic URL: the Cache API keys requests, and the hash is the identity that matters.
        Some(hex) => format!("https://models.sextant.invalid/sha256/{hex}"),
        None => url.clone(),
    };
    if let Some(cache) = &cache
        && let Some(bytes) = cached(cache, &key).await
    {
        match checked(bytes, options) {
            Ok(loaded) => return Ok(loaded),
            // A corrupt entry is replaced, not trusted.
            Err(_) => {
                js::call(cache, "delete", &[key.as_str().into()]);
            }
        }
    }
    let loaded = checked(fetch(&url, options).await?, options)?;
    if let Some(cache) = &cache {
        store(cache, &key, &loaded.bytes).await;
    }
    Ok(loaded)
}

fn checked(bytes: Vec<u8>, options: &LoadOptions) -> Result<Loaded, WebError> {
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    if let Some(expected) = &options.sha256
        && *expected != sha256
    {
        return Err(WebError::new(
            "integrity",
            format!("the model's SHA-256 is {sha256}, but {expected} was expected ({} bytes came)", bytes.len()),
        ));
    }
    Ok(Loaded { bytes, sha256 })
}

/// Streams the response body, reporting progress after each chunk.
async fn fetch(url: &str, options: &LoadOptions) -> Result<Vec<u8>, WebError> {
    let failed = |detail: String| WebError::new("fetch_failed", format!("fetching the model from {url}: {detail}"));
    let response = gloo_net::http::Request::get(url).send().await.map_err(|e| failed(e.to_string()))?;
    if !response.ok() {
        return Err(failed(format!("HTTP {} {}", response.status(), response.status_text())));
    }
    // A compressed transfer's Content-Length counts compressed bytes; the stream yields decoded ones.
    let encoded = response.headers().get("content-encoding").is_some_and(|e| e.trim() != "identity");
    let total =
        response.headers().get("content-length").and_then(|v| v.trim().parse::<f64>().ok()).filter(|_| !encoded);
    let progress = |loaded: usize| {
        if let Some(callback) = &options.on_progress {
            let total = total.map_or(JsValue::NULL, JsValue::from);
            // The page's callback throwing must not stop the download.
            let _ = callback.call2(&JsValue::UNDEFINED, &(loaded as f64).into(), &total);
        }
    };
    let Some(reader) = response.body().and_then(|body| js::call(&body, "getReader", &[])) else {
        let bytes = response.binary().await.map_err(|e| failed(e.to_string()))?;
        progress(bytes.len());
        return Ok(bytes);
    };
    let capacity = total.map_or(0, |t| (t as usize).min(1 << 30));
    let mut bytes = Vec::with_capacity(capacity);
    loop {
        let read = js::call(&reader, "read", &[]).ok_or_else(|| failed("the body cannot be read".to_owned()))?;
        let chunk = JsFuture::from(js_sys::Promise::from(read)).await.map_err(|e| failed(js::describe(&e)))?;
        if js::get(&chunk, "done").is_some_and(|d| d.is_truthy()) {
            break;
        }
        if let Some(value) = js::get(&chunk, "value").and_then(|v| v.dyn_into::<Uint8Array>().ok()) {
            let start = bytes.len();
            bytes.resize(start + value.length() as usize, 0);
            value.copy_to(&mut bytes[start..]);
            progress(bytes.len());
        }
    }
    Ok(bytes)
}

/// The page's model cache, where the Cache API exists (secure contexts).
async fn open_cache() -> Option<JsValue> {
    let caches = js::get(&js_sys::global(), "caches")?;
    let opened = js::call(&caches, "open", &[CACHE_NAME.into()])?;
    JsFuture::from(js_sys::Promise::from(opened)).await.ok()
}

async fn cached(cache: &JsValue, key: &str) -> Option<Vec<u8>> {
    let matched = js::call(cache, "match", &[key.into()])?;
    let response = JsFuture::from(js_sys::Promise::from(matched)).await.ok().filter(|r| !r.is_undefined())?;
    let buffer = js::call(&response, "arrayBuffer", &[])?;
    let buffer = JsFuture::from(js_sys::Promise::from(buffer)).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// Best effort: a full or unavailable cache costs a download next time, nothing else.
async fn store(cache: &JsValue, key: &str, bytes: &[u8]) {
    let body = Uint8Array::from(bytes);
    let Ok(response) = web_sys::Response::new_with_opt_buffer_source(Some(&body)) else { return };
    if let Some(put) = js::call(cache, "put", &[key.into(), response.into()]) {
        let _ = JsFuture::from(js_sys::Promise::from(put)).await;
    }
}
