use crate::nn;

/// A refusal: the HTTP status and what went wrong, answered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: u16,
    pub message: String,
}

impl Error {
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// 400: the request does not fit the pipeline.
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

/// A `wasi:nn` failure as an HTTP status: the caller's fault (400), the host's configuration
/// (403, 404 and 500), or time (504).
impl From<nn::NnError> for Error {
    fn from(e: nn::NnError) -> Error {
        use nn::ErrorCode::*;
        let status = match e.code {
            InvalidArgument | InvalidEncoding => 400,
            Security => 403,
            NotFound => 404,
            TooLarge => 413,
            Timeout => 504,
            RuntimeError | UnsupportedOperation | Unknown => 500,
        };
        Error::new(status, e.message)
    }
}
