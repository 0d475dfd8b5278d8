//! Sextant's GPU engine: tract's typed graph compiled to WGSL compute kernels on wgpu.
//!
//! It knows tract's `TypedModel` and wgpu, nothing of sessions, telemetry or IO. The front end
//! takes a decluttered model with fixed shapes ([`prepare`] rewrites einsums into prefix matrix
//! products, as tract's own GPU transforms do), walks it in evaluation order and asks the
//! [`TRANSLATORS`] table for kernels; an op or variant not in the table is an [`Error`] naming the
//! node. What comes out is a [`Program`]: pipelines compiled once, memory planned once, one
//! submission and one readback per run.
//!
//! **Invariant:** this crate proves nothing about its numbers. The runtime's gate runs every
//! program against the CPU engine before any result leaves a session.

mod device;
mod error;
mod exec;
mod kernels;
mod plan;
mod table;

use std::collections::HashMap;

use tract_core::internal::*;
use tract_core::ops::konst::Const;
use tract_core::ops::source::TypedSource;

pub use device::{AdapterInfo, Gpu};
pub use error::{Error, Result};
pub use exec::Program;
pub use table::{TRANSLATORS, Translator, translator};

use plan::{Builder, Val};

/// Rewrites a decluttered model into the forms the translators take (einsums into prefix
/// matrix products).
pub fn prepare(model: &mut TypedModel) -> std::result::Result<(), String> {
    tract_core::ops::einsum::prefix_matmul::rewrite_einsum_to_prefix_matmul(model, false).map_err(|e| format!("{e:#}"))
}

/// Compiles a prepared model with every shape fixed for `gpu`.
pub async fn compile(gpu: &Gpu, model: &TypedModel) -> Result<Program> {
    let order = model.eval_order().map_err(|e| Error::Run(format!("{e:#}")))?;
    let mut b = Builder::new(gpu.max_binding());
    let mut values: HashMap<OutletId, Val> = HashMap::new();
    let mut inputs = Vec::new();
    for &id in &order {
        let node = model.node(id);
        b.node = node.name.clone();
        let shape = |ix: usize| -> Result<Vec<usize>> {
            let fact = &node.outputs[ix].fact;
            fact.shape
                .as_concrete()
                .map(<[usize]>::to_vec)
                .ok_or_else(|| Error::FreeDim { tensor: node.name.clone(), shape: format!("{:?}", fact.shape) })
        };
        if node.op_is::<Const>() {
            let konst = node.op_as::<Const>().map(|c| c.val().clone());
            values.insert(OutletId::new(id, 0), Val { shape: shape(0)?, buf: None, konst });
            continue;
        }
        for (ix, output) in node.outputs.iter().enumerate() {
            if output.fact.datum_type != f32::datum_type() {
                let tensor = if node.outputs.len() == 1 { node.name.clone() } else { format!("{}:{ix}", node.name) };
                return Err(Error::DType { tensor, dtype: format!("{:?}", output.fact.datum_type).to_lowercase() });
            }
        }
        if node.op_is::<TypedSource>() {
            let val = b.input(&node.name, shape(0)?)?;
            inputs.push((val.buf.unwrap_or_default(), val.len()));
            values.insert(OutletId::new(id, 0), val);
            continue;
        }
        let name = node.op.name();
        let translator = translator(&name).ok_or_else(|| Error::Unsupported {
            node: node.name.clone(),
            op: name.to_string(),
            detail: "the GPU engine has no kernel for this op".into(),
        })?;
        let node_inputs: Vec<Val> = node
            .inputs
            .iter()
            .map(|outlet| {
                values
                    .get(outlet)
                    .cloned()
                    .ok_or_else(|| Error::Run(format!("input {outlet:?} of `{}` was not computed", node.name)))
            })
            .collect::<Result<_>>()?;
        for input in &node_inputs {
            if let Some(konst) = &input.konst
                && konst.datum_type() != f32::datum_type()
            {
                return Err(Error::DType {
                    tensor: format!("a constant input of `{}`", node.name),
                    dtype: format!("{:?}", konst.datum_type()).to_lowercase(),
                });
            }
        }
        let outputs = (translator.translate)(&mut b, node, node_inputs)?;
        for (ix, val) in outputs.into_iter().enumerate() {
            let expected = shape(ix)?;
            if val.shape != expected {
                return Err(Error::Unsupported {
                    node: node.name.clone(),
                    op: name.to_string(),
                    detail: format!("the kernel computes shape {:?} where tract expects {expected:?}", val.shape),
                });
            }
            values.insert(OutletId::new(id, ix), val);
        }
    }
    let mut outputs = Vec::new();
    for outlet in model.output_outlets().map_err(|e| Error::Run(format!("{e:#}")))? {
        let mut val =
            values.get(outlet).cloned().ok_or_else(|| Error::Run(format!("output {outlet:?} was not computed")))?;
        b.node = model.node(outlet.node).name.clone();
        let buf = b.bind(&mut val)?;
        outputs.push((buf, val.shape));
    }
    Program::new(gpu, b, inputs, outputs).await
}
