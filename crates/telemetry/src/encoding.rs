//! Batch encodings: JSON (readable) and MessagePack (compact), each optionally gzipped.
//!
//! Decoding takes outside bytes, so it is bounded: the body and its decompressed size are capped
//! (no gzip bombs), nesting is capped by both decoders, and a batch of an unknown schema version is
//! reported as such rather than as a parse error.

use std::borrow::Cow;
use std::io::{Read, Write};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::schema::{Batch, SCHEMA_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Json,
    MessagePack,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::MessagePack => "application/msgpack",
        }
    }

    /// The encoding of an HTTP `Content-Type`, ignoring parameters such as `charset`.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        match content_type.split(';').next().map(str::trim) {
            Some("application/json") => Some(Encoding::Json),
            Some("application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack") => {
                Some(Encoding::MessagePack)
            }
            _ => None,
        }
    }
}

/// How a batch travels: an encoding, and whether the bytes are gzipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub encoding: Encoding,
    pub gzip: bool,
}

/// Bounds on what [`decode`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body, before decompression.
    pub max_body_bytes: usize,
    /// Largest decoded document, after decompression.
    pub max_decoded_bytes: usize,
    pub max_records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body_bytes: 8 << 20, max_decoded_bytes: 32 << 20, max_records: 100_000 }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("could not encode the batch as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("could not encode the batch as MessagePack: {0}")]
    MessagePack(#[from] rmp_serde::encode::Error),
    #[error("could not gzip the batch: {0}")]
    Gzip(#[from] std::io::Error),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("body is {actual} bytes, over the limit of {limit}")]
    BodyTooLarge { limit: usize, actual: usize },
    #[error("decompressed body is over the limit of {limit} bytes")]
    DecodedTooLarge { limit: usize },
    #[error("body is not valid gzip: {0}")]
    Gzip(String),
    #[error("body is not a valid {encoding:?} batch: {message}")]
    Malformed { encoding: Encoding, message: String },
    #[error("schema_version {found} is not supported (this collector reads version {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("batch has {actual} records, over the limit of {limit}")]
    TooManyRecords { limit: usize, actual: usize },
}

pub fn encode(batch: &Batch, format: Format) -> Result<Vec<u8>, EncodeError> {
    let plain = match format.encoding {
        Encoding::Json => serde_json::to_vec(batch)?,
        Encoding::MessagePack => rmp_serde::to_vec(batch)?,
    };
    if !format.gzip {
        return Ok(plain);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 4), flate2::Compression::fast());
    gz.write_all(&plain)?;
    Ok(gz.finish()?)
}

/// The plain bytes of a body: bounded in size before and after decompression (no gzip bombs).
pub fn inflate(body: &[u8], gzip: bool, limits: Limits) -> Result<Cow<'_, [u8]>, DecodeError> {
    if body.len() > limits.max_body_bytes {
        return Err(DecodeError::BodyTooLarge { limit: limits.max_body_bytes, actual: body.len() });
    }
    if !gzip {
        if body.len() > limits.max_decoded_bytes {
            return Err(DecodeError::DecodedTooLarge { limit: limits.max_decoded_bytes });
        }
        return Ok(Cow::Borrowed(body));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limits.max_decoded_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > limits.max_decoded_bytes {
        return Err(DecodeError::DecodedTooLarge { limit: limits.max_decoded_bytes });
    }
    Ok(Cow::Owned(out))
}

pub fn decode(body: &[u8], format: Format, limits: Limits) -> Result<Batch, DecodeError> {
    let plain = inflate(body, format.gzip, limits)?;
    decode_plain(&plain, format.encoding, limits)
}

/// Decodes an inflated body (see [`inflate`]). A first pass reads the batch's version and counts
/// its records without building anything, so a batch over the record limit or of another version
/// is refused before decoding allocates for it.
pub fn decode_plain(plain: &[u8], encoding: Encoding, limits: Limits) -> Result<Batch, DecodeError> {
    let version = |found: u32| {
        if found == SCHEMA_VERSION {
            Ok(())
        } else {
            Err(DecodeError::UnsupportedVersion { found, supported: SCHEMA_VERSION })
        }
    };
    let shape: Result<Shape, String> = from_slice(plain, encoding);
    match shape {
        Ok(shape) => {
            version(shape.schema_version)?;
            let records = usize::try_from(shape.records.0).unwrap_or(usize::MAX);
            if records > limits.max_records {
                return Err(DecodeError::TooManyRecords { limit: limits.max_records, actual: records });
            }
        }
        Err(message) => {
            // A batch of another version may not parse as this one: say so rather than "malformed".
            if let Some(found) = probe_version(plain, encoding) {
                version(found)?;
            }
            return Err(DecodeError::Malformed { encoding, message });
        }
    }
    from_slice(plain, encoding).map_err(|message| DecodeError::Malformed { encoding, message })
}

/// Counts the items of a list while decoding it, keeping none: a list's length is known before
/// anything is built for it. For documents other than batches (e.g. a `{"labels": Counted}` shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted(pub u64);

impl<'de> Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Counted, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = Counted;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Counted, A::Error> {
                let mut n = 0u64;
                while items.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Counted(n))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// A batch as the first pass reads it: its fields in the schema's order (MessagePack is
/// positional), none of them built.
#[derive(Deserialize)]
struct Shape {
    schema_version: u32,
    #[serde(rename = "batch_id")]
    _batch_id: IgnoredAny,
    #[serde(rename = "session")]
    _session: IgnoredAny,
    #[serde(rename = "source")]
    _source: IgnoredAny,
    #[serde(rename = "model")]
    _model: IgnoredAny,
    #[serde(rename = "dropped", default)]
    _dropped: IgnoredAny,
    #[serde(rename = "unconfirmed", default)]
    _unconfirmed: IgnoredAny,
    records: Counted,
}

/// One document in either encoding; the error as text.
pub fn from_slice<T: serde::de::DeserializeOwned>(plain: &[u8], encoding: Encoding) -> Result<T, String> {
    match encoding {
        Encoding::Json => serde_json::from_slice(plain).map_err(|e| e.to_string()),
        Encoding::MessagePack => rmp_serde::from_slice(plain).map_err(|e| e.to_string()),
    }
}

/// The `schema_version` of a document that may not otherwise parse.
fn probe_version(plain: &[u8], encoding: Encoding) -> Option<u32> {
    match encoding {
        Encoding::Json => {
            #[derive(Deserialize)]
            struct Probe {
                schema_version: u32,
            }
            serde_json::from_slice::<Probe>(plain).ok().map(|p| p.schema_version)
        }
        // Positional: the version is the first element of the top-level array.
        Encoding::MessagePack => {
            let mut rest = plain;
            rmp::decode::read_array_len(&mut rest).ok()?;
            rmp::decode::read_int(&mut rest).ok()
        }
    }
}
