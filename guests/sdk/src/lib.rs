//! Write a pipeline for the Sextant edge host in a few lines: a [`Handler`] turns a [`Request`]
//! into a [`Response`], calling models through [`nn`] (the standard `wasi:nn` interface, so the
//! same guest runs on other wasi-nn hosts), and [`export!`] makes it the component's
//! `wasi:http/incoming-handler`.
//!
//! ```ignore
//! struct Echo;
//! impl sextant_guest::Handler for Echo {
//!     fn handle(request: sextant_guest::Request) -> Result<sextant_guest::Response, sextant_guest::Error> {
//!         Ok(sextant_guest::Response::json(200, &serde_json::json!({ "path": request.path })))
//!     }
//! }
//! sextant_guest::export!(Echo);
//! ```
//!
//! Build with `cargo build --target wasm32-wasip2 --release`; mount the `.wasm` in the host's
//! configuration (`[[modules]]`).

mod error;
mod http;
pub mod nn;

pub use error::Error;
pub use http::{Request, Response};

/// A pipeline: one request in, one answer out. An `Err` is answered as `{"error": message}` with
/// its status.
pub trait Handler {
    fn handle(request: Request) -> Result<Response, Error>;
}

/// Exports `$handler` (a [`Handler`]) as the component's `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! export {
    ($handler:ty) => {
        struct __SextantIncomingHandler;

        impl $crate::__private::wasip2::exports::http::incoming_handler::Guest for __SextantIncomingHandler {
            fn handle(
                request: $crate::__private::wasip2::http::types::IncomingRequest,
                response_out: $crate::__private::wasip2::http::types::ResponseOutparam,
            ) {
                $crate::__private::serve::<$handler>(request, response_out)
            }
        }

        $crate::__private::wasip2::_export_proxy!(__SextantIncomingHandler with_types_in $crate::__private::wasip2);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::http::serve;
    pub use wasip2;
}
