//! A refused request: its status and a message, answered as `{"error": "<message>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::pool::PoolError;

#[derive(Debug)]
pub(crate) struct Refusal(pub StatusCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<PoolError> for Refusal {
    fn from(e: PoolError) -> Refusal {
        let status = match &e {
            PoolError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PoolError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            e if e.is_bad_input() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refusal(status, e.to_string())
    }
}
