//! The monitoring dashboard: static files from `www/dashboard`, compiled into the binary so a
//! collector serves its own dashboard with nothing to deploy beside it. The page reads the JSON
//! API with a read key the user pastes (kept in the browser's `localStorage`).

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

/// (path under `/dashboard/`, content type, body).
const FILES: [(&str, &str, &str); 6] = [
    ("", "text/html; charset=utf-8", include_str!("../../../www/dashboard/index.html")),
    ("common.js", "text/javascript; charset=utf-8", include_str!("../../../www/dashboard/common.js")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../www/dashboard/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../../www/dashboard/style.css")),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../www/dashboard/vendor/uPlot.iife.min.js"),
    ),
    ("vendor/uPlot.min.css", "text/css; charset=utf-8", include_str!("../../../www/dashboard/vendor/uPlot.min.css")),
];

pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/", get(|| async { Redirect::temporary("/dashboard/") }));
    for (path, content_type, body) in FILES {
        router = router.route(
            &format!("/dashboard/{path}"),
            get(move || async move {
                ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
            }),
        );
    }
    router
}
