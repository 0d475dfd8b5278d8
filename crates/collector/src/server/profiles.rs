//! Reference profiles: fetched by deployments and dashboards, uploaded by admins.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Collector;
use super::error::ApiError;
use super::ingest::read_body;
use crate::keys::Role;

pub(super) async fn get_profile(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path((model, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    // Deployments fetch profiles with their ingest key; dashboards with their read key.
    c.authorize(&headers, &[Role::Ingest, Role::Read]).await?;
    match c.store.profile(model.clone(), version.clone()).await.map_err(ApiError::storage)? {
        Some(body) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_profile",
            format!("no reference profile is stored for model {model:?} version {version:?}"),
        )),
    }
}

pub(super) async fn put_profile(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path((model, version)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Admin]).await?;
    let bytes = read_body(&c, body).await?;
    let profile: telemetry::Profile = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_profile", format!("not a reference profile: {e}"))
    })?;
    profile.validate().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_profile", format!("not a usable reference profile: {e}"))
    })?;
    let body = serde_json::to_string(&profile)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_profile", e.to_string()))?;
    c.store.put_profile(model, version, body).await.map_err(ApiError::storage)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
