//! The request and answer as plain values, read from and written to `wasi:http`.

use std::io::{Read as _, Write as _};

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::{Error, Handler};

/// A request, its body read whole (the host bounds its size).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    /// Names lower-case, as HTTP/1.1 allows.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// A query parameter's value (not percent-decoded).
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
    }

    /// The body as JSON of type `T`; a 400 naming what is wrong otherwise.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::bad_request(format!("the body is not the JSON expected: {e}")))
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_owned(), b"application/json".to_vec())],
            body: value.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response {
            status,
            headers: vec![("content-type".to_owned(), b"text/plain; charset=utf-8".to_vec())],
            body: text.into().into_bytes(),
        }
    }
}

impl From<Error> for Response {
    fn from(e: Error) -> Response {
        Response::json(e.status, &serde_json::json!({ "error": e.message }))
    }
}

/// Reads the request, runs `H`, writes its answer. Used by [`crate::export!`].
pub fn serve<H: Handler>(incoming: IncomingRequest, out: ResponseOutparam) {
    let response = match read(&incoming) {
        Ok(request) => H::handle(request).unwrap_or_else(Response::from),
        Err(e) => Response::from(e),
    };
    write(response, out);
}

fn read(incoming: &IncomingRequest) -> Result<Request, Error> {
    let method = match incoming.method() {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other,
    };
    let path_with_query = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let (path, query) = match path_with_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (path_with_query, None),
    };
    let headers = incoming.headers().entries();
    let unreadable = |what: &str| Error::new(500, format!("the request {what} could not be read"));
    let body = incoming.consume().map_err(|()| unreadable("body"))?;
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().map_err(|()| unreadable("body stream"))?;
        stream
            .read_to_end(&mut bytes)
            .map_err(|e| Error::new(500, format!("the request body could not be read: {e}")))?;
    }
    IncomingBody::finish(body);
    Ok(Request { method, path, query, headers, body: bytes })
}

fn write(response: Response, out: ResponseOutparam) {
    let headers = Fields::new();
    for (name, value) in &response.headers {
        // A header the host refuses (e.g. a forbidden name) is left out rather than failing the answer.
        let _ = headers.append(name, value);
    }
    let outgoing = OutgoingResponse::new(headers);
    let _ = outgoing.set_status_code(response.status);
    let Ok(body) = outgoing.body() else { return };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Ok(mut stream) = body.write() {
        let _ = stream.write_all(&response.body);
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(body, None);
}
