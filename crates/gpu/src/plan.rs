//! What a compiled graph is before it touches a device: buffers, and dispatches over them.
//!
//! Translators (see [`crate::table`]) append to a [`Builder`]; [`crate::exec`] turns the result
//! into pipelines, bind groups and physical buffers, reusing memory between intermediates whose
//! lifetimes do not overlap.

use std::sync::Arc;

use tract_core::prelude::{DatumType, Tensor};

use crate::error::{Error, Result};
use crate::host;

pub(crate) type BufId = usize;

/// How a value's elements live on the device: four bytes each, whatever the model says.
///
/// i64 values (token ids, class indices) are stored as i32: inputs and constants are checked to
/// fit when they are uploaded, and outputs widened back. Booleans are `u32` 0 or 1 (WGSL's
/// `bool` cannot be stored in a buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Dt {
    F32,
    I32,
    Bool,
}

impl Dt {
    /// The device type of a tract type, if the engine carries it.
    pub fn of(dt: DatumType) -> Option<Dt> {
        match dt {
            DatumType::F32 => Some(Dt::F32),
            DatumType::I64 | DatumType::I32 => Some(Dt::I32),
            DatumType::Bool => Some(Dt::Bool),
            _ => None,
        }
    }

    /// The WGSL type of one element.
    pub fn wgsl(self) -> &'static str {
        match self {
            Dt::F32 => "f32",
            Dt::I32 => "i32",
            Dt::Bool => "u32",
        }
    }
}

/// A logical buffer.
#[derive(Debug)]
pub(crate) struct Buffer {
    pub bytes: u64,
    pub role: Role,
}

#[derive(Debug)]
pub(crate) enum Role {
    /// Written from the caller's input before every run.
    Input,
    /// Uploaded once at compilation (the elements' bits).
    Const(Vec<u32>),
    /// The fault word: zeroed before every run; a kernel that meets a value it cannot compute
    /// right (an index out of range, an integer past i32) writes its dispatch's number + 1 there
    /// (see [`Builder::fault`]).
    Fault,
    /// An intermediate: its memory is shared with others whose lifetimes do not overlap.
    Temp,
}

/// One kernel launch: `bindings` in binding order, the written one last.
#[derive(Debug)]
pub(crate) struct Dispatch {
    pub node: String,
    pub shader: String,
    pub bindings: Vec<BufId>,
    pub groups: [u32; 3],
}

/// A value of the graph: its shape, where it lives, and its contents when it is a constant.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub shape: Vec<usize>,
    pub dt: Dt,
    /// The buffer holding it, once it is on the device (constants are uploaded when first bound).
    pub buf: Option<BufId>,
    pub konst: Option<Arc<Tensor>>,
}

impl Val {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The value itself when it is an f32 constant of one element.
    pub fn scalar(&self) -> Option<f32> {
        let konst = self.konst.as_ref()?;
        (self.dt == Dt::F32 && konst.len() == 1).then(|| konst.cast_to_scalar::<f32>().ok()).flatten()
    }

    /// A WGSL expression for the value when it is a constant of one element that WGSL can
    /// write (a finite f32, an integer that fits, a boolean).
    pub fn literal(&self) -> Option<String> {
        let konst = self.konst.as_ref().filter(|k| k.len() == 1)?;
        let word = *host::encode(konst, self.dt).ok()?.first()?;
        match self.dt {
            Dt::F32 => f32::from_bits(word).is_finite().then(|| crate::kernels::literal(f32::from_bits(word))),
            Dt::I32 => Some(format!("bitcast<i32>({word}u)")),
            Dt::Bool => Some(format!("{word}u")),
        }
    }

    /// A view with another shape over the same elements (reshapes, squeezes, identities).
    pub fn reshaped(&self, shape: Vec<usize>) -> Val {
        let konst = self.konst.as_ref().and_then(|k| (**k).clone().into_shape(&shape).ok().map(Arc::new));
        Val { shape, dt: self.dt, buf: self.buf, konst }
    }
}

/// Collects buffers and dispatches while the graph is translated.
#[derive(Debug)]
pub(crate) struct Builder {
    pub buffers: Vec<Buffer>,
    pub dispatches: Vec<Dispatch>,
    /// The node being translated, for dispatch labels and errors.
    pub node: String,
    /// The fault word, once a kernel checks its values.
    pub fault: Option<BufId>,
    max_binding: u64,
}

impl Builder {
    pub fn new(max_binding: u64) -> Builder {
        Builder { buffers: Vec::new(), dispatches: Vec::new(), node: String::new(), fault: None, max_binding }
    }

    fn buffer(&mut self, tensor: &str, elements: usize, role: Role) -> Result<BufId> {
        let bytes = (elements.max(1) as u64) * 4;
        if bytes > self.max_binding {
            return Err(Error::TooLarge { tensor: tensor.to_owned(), bytes, limit: self.max_binding });
        }
        if elements > u32::MAX as usize {
            return Err(Error::TooLarge { tensor: tensor.to_owned(), bytes, limit: u64::from(u32::MAX) * 4 });
        }
        self.buffers.push(Buffer { bytes, role });
        Ok(self.buffers.len() - 1)
    }

    pub fn input(&mut self, name: &str, shape: Vec<usize>, dt: Dt) -> Result<Val> {
        let buf = self.buffer(name, shape.iter().product(), Role::Input)?;
        Ok(Val { shape, dt, buf: Some(buf), konst: None })
    }

    /// A new intermediate, written by the node being translated.
    pub fn temp(&mut self, shape: Vec<usize>, dt: Dt) -> Result<Val> {
        let name = self.node.clone();
        let buf = self.buffer(&name, shape.iter().product(), Role::Temp)?;
        Ok(Val { shape, dt, buf: Some(buf), konst: None })
    }

    /// The fault word, for a kernel that checks its values; the dispatch about to be appended is
    /// the one that writes `code` there.
    pub fn fault(&mut self) -> Result<(BufId, u32)> {
        let buf = match self.fault {
            Some(buf) => buf,
            None => {
                let buf = self.buffer("fault", 1, Role::Fault)?;
                self.fault = Some(buf);
                buf
            }
        };
        Ok((buf, self.dispatches.len() as u32 + 1))
    }

    /// The buffer holding `val`, uploading a constant the first time a kernel needs it.
    pub fn bind(&mut self, val: &mut Val) -> Result<BufId> {
        if let Some(buf) = val.buf {
            return Ok(buf);
        }
        let konst = val.konst.as_ref().ok_or_else(|| Error::Run("a value has neither buffer nor contents".into()))?;
        let name = format!("{} (constant)", self.node);
        let values = host::encode(konst, val.dt).map_err(|detail| Error::Value { tensor: name.clone(), detail })?;
        let buf = self.buffer(&name, values.len(), Role::Const(values))?;
        val.buf = Some(buf);
        Ok(buf)
    }

    pub fn dispatch(&mut self, shader: String, bindings: Vec<BufId>, groups: [u32; 3]) {
        self.dispatches.push(Dispatch { node: self.node.clone(), shader, bindings, groups });
    }

    pub fn unsupported(&self, op: &str, detail: impl Into<String>) -> Error {
        Error::Unsupported { node: self.node.clone(), op: op.to_owned(), detail: detail.into() }
    }
}
