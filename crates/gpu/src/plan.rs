//! What a compiled graph is before it touches a device: buffers, and dispatches over them.
//!
//! Translators (see [`crate::table`]) append to a [`Builder`]; [`crate::exec`] turns the result
//! into pipelines, bind groups and physical buffers, reusing memory between intermediates whose
//! lifetimes do not overlap.

use std::sync::Arc;

use tract_core::prelude::Tensor;

use crate::error::{Error, Result};

pub(crate) type BufId = usize;

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
    /// Uploaded once at compilation.
    Const(Vec<f32>),
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
    /// The buffer holding it, once it is on the device (constants are uploaded when first bound).
    pub buf: Option<BufId>,
    pub konst: Option<Arc<Tensor>>,
}

impl Val {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The value itself when it is a constant of one element.
    pub fn scalar(&self) -> Option<f32> {
        let konst = self.konst.as_ref()?;
        (konst.len() == 1).then(|| konst.cast_to_scalar::<f32>().ok()).flatten()
    }

    /// A view with another shape over the same elements (reshapes, squeezes, identities).
    pub fn reshaped(&self, shape: Vec<usize>) -> Val {
        let konst = self.konst.as_ref().and_then(|k| (**k).clone().into_shape(&shape).ok().map(Arc::new));
        Val { shape, buf: self.buf, konst }
    }
}

/// Collects buffers and dispatches while the graph is translated.
#[derive(Debug)]
pub(crate) struct Builder {
    pub buffers: Vec<Buffer>,
    pub dispatches: Vec<Dispatch>,
    /// The node being translated, for dispatch labels and errors.
    pub node: String,
    max_binding: u64,
}

impl Builder {
    pub fn new(max_binding: u64) -> Builder {
        Builder { buffers: Vec::new(), dispatches: Vec::new(), node: String::new(), max_binding }
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

    pub fn input(&mut self, name: &str, shape: Vec<usize>) -> Result<Val> {
        let buf = self.buffer(name, shape.iter().product(), Role::Input)?;
        Ok(Val { shape, buf: Some(buf), konst: None })
    }

    /// A new intermediate, written by the node being translated.
    pub fn temp(&mut self, shape: Vec<usize>) -> Result<Val> {
        let name = self.node.clone();
        let buf = self.buffer(&name, shape.iter().product(), Role::Temp)?;
        Ok(Val { shape, buf: Some(buf), konst: None })
    }

    /// The buffer holding `val`, uploading a constant the first time a kernel needs it.
    pub fn bind(&mut self, val: &mut Val) -> Result<BufId> {
        if let Some(buf) = val.buf {
            return Ok(buf);
        }
        let konst = val.konst.as_ref().ok_or_else(|| Error::Run("a value has neither buffer nor contents".into()))?;
        let values = konst
            .cast_to::<f32>()
            .ok()
            .and_then(|t| t.try_as_plain_ram().ok().and_then(|p| p.as_slice::<f32>().ok().map(<[f32]>::to_vec)))
            .ok_or_else(|| Error::DType { tensor: self.node.clone(), dtype: format!("{:?}", konst.datum_type()) })?;
        let name = format!("{} (constant)", self.node);
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
