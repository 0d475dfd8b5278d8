//! Drift, integrity and performance windows, alerts and alert rules.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiQuery};
use super::ingest::read_body;
use super::{Collector, MAX_PAGE, MAX_READ_SPAN_MS};
use crate::alerts::{AlertQuery, Rule};
use crate::keys::Role;
use crate::monitor::{self, Span, Width, WindowData, WindowPerformance};

/// Which window of which model version a monitoring read is about.
#[derive(Debug, Deserialize)]
pub(super) struct WindowQuery {
    /// Absent: the version heard from last.
    version: Option<String>,
    /// A width such as `5m`, `1h`, `1d`; absent: the configured window.
    window: Option<String>,
    /// A time (ms since the epoch) inside the window wanted; absent: now.
    at: Option<i64>,
    /// Performance: how many windows back, oldest first (1 to 500, a year in all; default 24).
    windows: Option<usize>,
}

/// A model version's window, resolved.
struct Resolved {
    model: String,
    version: String,
    width: Width,
    span: Span,
}

impl Collector {
    async fn resolve(&self, model: String, query: &WindowQuery) -> Result<Resolved, ApiError> {
        let width = match &query.window {
            Some(text) => Width::parse(text)
                .and_then(Width::whole_minutes)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_window", e))?,
            None => self.config.monitoring.window,
        };
        let version = match &query.version {
            Some(version) => version.clone(),
            None => {
                let versions = self.store.model_versions().await.map_err(ApiError::storage)?;
                versions
                    .into_iter()
                    .filter(|m| m.name == model)
                    .max_by_key(|m| m.last_batch_seq)
                    .map(|m| m.version)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::NOT_FOUND,
                            "unknown_model",
                            format!("no telemetry has arrived for model {model:?}"),
                        )
                    })?
            }
        };
        let span = width.containing(query.at.unwrap_or_else(crate::now_ms));
        Ok(Resolved { model, version, width, span })
    }

    async fn window(&self, r: &Resolved, span: Span) -> Result<WindowData, ApiError> {
        self.store.window(r.model.clone(), r.version.clone(), span).await.map_err(ApiError::storage)
    }

    async fn stored_profile(&self, r: &Resolved) -> Result<Option<telemetry::Profile>, ApiError> {
        monitor::stored_profile(self.store(), &r.model, &r.version).await.map_err(ApiError::storage)
    }
}

/// `{"model", "version", "width", ...report}`.
fn with_identity(r: &Resolved, report: impl Serialize) -> Response {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("model".into(), r.model.clone().into());
        object.insert("version".into(), r.version.clone().into());
        object.insert("width".into(), r.width.to_string().into());
    }
    axum::Json(value).into_response()
}

pub(super) async fn drift(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let r = c.resolve(model, &query).await?;
    let (current, previous) = (c.window(&r, r.span).await?, c.window(&r, r.span.previous()).await?);
    let profile = c.stored_profile(&r).await?;
    let report = monitor::drift(profile.as_ref(), r.span, &current, &previous, &analysis::drift::Policy::default());
    Ok(with_identity(&r, report))
}

pub(super) async fn integrity(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let r = c.resolve(model, &query).await?;
    let data = c.window(&r, r.span).await?;
    let profile = c.stored_profile(&r).await?;
    Ok(with_identity(&r, monitor::integrity(profile.as_ref(), r.span, &data)))
}

pub(super) async fn performance(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<WindowQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let r = c.resolve(model, &query).await?;
    // The windows together cover at most a year: what one read merges is bounded by a year of
    // rollups, whatever it asks for.
    let fit = usize::try_from(MAX_READ_SPAN_MS / r.width.ms().max(1)).unwrap_or(1).max(1);
    let count = query.windows.unwrap_or(24).clamp(1, 500).min(fit);
    let mut spans = vec![r.span];
    for _ in 1..count {
        let earlier = spans[spans.len() - 1].previous();
        spans.push(earlier);
    }
    spans.reverse();
    let mut series = Vec::with_capacity(count);
    for span in spans {
        series.push(WindowPerformance::new(span, &c.window(&r, span).await?));
    }
    Ok(with_identity(&r, serde_json::json!({ "current": series.last(), "series": series })))
}

#[derive(Debug, Deserialize)]
pub(super) struct AlertsQuery {
    /// `firing` for open alerts only.
    state: Option<String>,
    limit: Option<usize>,
}

impl AlertsQuery {
    fn query(&self, model: Option<String>) -> Result<AlertQuery, ApiError> {
        let firing_only = match self.state.as_deref() {
            None | Some("all") => false,
            Some("firing") => true,
            Some(other) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_state",
                    format!("state {other:?}: expected firing or all"),
                ));
            }
        };
        Ok(AlertQuery { model, firing_only, limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE) })
    }
}

pub(super) async fn model_alerts(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(model): Path<String>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let alerts = c.store.alerts(query.query(Some(model))?).await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "alerts": alerts })).into_response())
}

pub(super) async fn all_alerts(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let alerts = c.store.alerts(query.query(None)?).await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "alerts": alerts })).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct EvaluateQuery {
    /// Evaluate the windows holding this time (ms since the epoch); absent: now.
    at: Option<i64>,
}

pub(super) async fn evaluate(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<EvaluateQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    let outcome = c.evaluate_alerts(query.at.unwrap_or_else(crate::now_ms)).await.map_err(ApiError::storage)?;
    Ok(axum::Json(outcome).into_response())
}

pub(super) async fn alert_rules(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let rules = crate::alerts::evaluator::stored_rules(c.store()).await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "rules": rules })).into_response())
}

pub(super) async fn put_alert_rule(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    let bytes = read_body(&c, body).await?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_rule", format!("not JSON: {e}")))?;
    if let Some(object) = value.as_object_mut() {
        object.insert("name".into(), name.clone().into());
    }
    let rule: Rule = serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_rule", format!("not an alert rule: {e}")))?;
    rule.validate().map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_rule", e))?;
    let body = serde_json::to_string(&rule).unwrap_or_default();
    c.store.put_alert_rule(name, body).await.map_err(ApiError::storage)?;
    Ok((StatusCode::OK, axum::Json(rule)).into_response())
}

pub(super) async fn delete_alert_rule(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    if c.store.delete_alert_rule(name.clone()).await.map_err(ApiError::storage)? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_rule", format!("no alert rule is called {name:?}")))
    }
}
