//! wonnx on wgpu 0.16: the second GPU engine, chosen only when asked for natively (and, until our
//! engine's web path lands, the page's GPU engine).
//!
//! wonnx 0.5.1 is measured to return silently wrong numbers on some graphs and to panic on others:
//! [`adapter`] opens a device the way wonnx will (it `expect`s both steps), [`prepare`] fixes
//! shapes and rewrites what wonnx lacks, [`rules`] is the allowlist of ops *and attribute
//! variants* that conformance runs prove; then the shared probe ([`crate::gate`]).

mod adapter;
mod engine;
mod prepare;
mod rules;

pub(crate) use engine::WonnxEngine;

use crate::gate::{Opened, Refused, check_software};
use crate::model::Model;
use crate::session::SessionOptions;

pub(crate) async fn open(model: &Model, options: &SessionOptions) -> Result<Opened<WonnxEngine>, Refused> {
    let probed = adapter::probe().await.map_err(|r| (r, None))?;
    let (adapter, software) = match &options.adapter_hint {
        Some(hint) if probed.anonymous => (hint.description.clone(), hint.software || probed.software),
        _ => (probed.description, probed.software),
    };
    check_software(&adapter, software, options)?;
    let refuse = |r| (r, Some(adapter.clone()));
    let prepared = prepare::prepare(model).map_err(refuse)?;
    let engine = WonnxEngine::new(prepared).await.map_err(refuse)?;
    Ok(Opened { engine, adapter })
}
