//! What is stored: model versions with their counts, batches, and each version's records.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{ApiError, ApiQuery};
use super::{Collector, MAX_PAGE};
use crate::keys::Role;
use crate::store::{PageRequest, RecordKind};

pub(super) async fn models(State(c): State<Arc<Collector>>, headers: HeaderMap) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let models = c.store.models().await.map_err(ApiError::storage)?;
    Ok(axum::Json(serde_json::json!({ "models": models })).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

impl PageQuery {
    fn request(&self) -> PageRequest {
        PageRequest { after: self.after, limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE) }
    }
}

pub(super) async fn batches(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let page = c.store.batches(page.request()).await.map_err(ApiError::storage)?;
    Ok(axum::Json(page).into_response())
}

pub(super) async fn records(
    State(c): State<Arc<Collector>>,
    headers: HeaderMap,
    Path((model, version, kind)): Path<(String, String, String)>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    c.authorize(&headers, &[Role::Read]).await?;
    let kind = match kind.as_str() {
        "predictions" => RecordKind::Predictions,
        "features" => RecordKind::Features,
        "errors" => RecordKind::Errors,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_history",
                format!("no history called {other:?}: expected predictions, features or errors"),
            ));
        }
    };
    let page = c.store.records(model, version, kind, page.request()).await.map_err(ApiError::storage)?;
    Ok(axum::Json(page).into_response())
}
