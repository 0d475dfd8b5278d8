//! Errors as the page sees them: a JS `Error` named `SextantError` with a stable `code`.

use wasm_bindgen::JsValue;

#[derive(Debug)]
pub(crate) struct WebError {
    code: &'static str,
    message: String,
}

impl WebError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> WebError {
        WebError { code, message: message.into() }
    }

    pub(crate) fn bad_argument(message: impl Into<String>) -> WebError {
        WebError::new("bad_argument", message)
    }

    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<runtime::Error> for WebError {
    fn from(error: runtime::Error) -> WebError {
        use runtime::Error as E;
        let code = match &error {
            E::Decode { .. } | E::InvalidModel(_) => "invalid_model",
            E::UnknownDim { .. } => "unknown_dim",
            E::MissingInput { .. } => "missing_input",
            E::UnexpectedInput { .. } => "unexpected_input",
            E::InputDType { .. } => "input_dtype",
            E::InputRank { .. } | E::InputDim { .. } | E::ShapeMismatch { .. } | E::ShapeTooLarge { .. } => {
                "input_shape"
            }
            E::InputValue { .. } => "input_value",
            E::UnsupportedDType(_) | E::TensorFormat { .. } => "unsupported_dtype",
            E::EngineRefused { .. } => "engine_refused",
            _ => "engine_failed",
        };
        WebError::new(code, error.to_string())
    }
}

impl From<WebError> for JsValue {
    fn from(error: WebError) -> JsValue {
        let js = js_sys::Error::new(&error.message);
        js.set_name("SextantError");
        // Setting a property on a fresh Error object cannot fail.
        let _ = js_sys::Reflect::set(&js, &"code".into(), &error.code.into());
        js.into()
    }
}
