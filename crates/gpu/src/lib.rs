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
mod host;
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
pub use table::{Kinds, TRANSLATORS, Translator, translator};

use exec::{InputSlot, OutputSlot};
use plan::{Builder, Dt, Val};

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
    // Constants of a type the device does not carry: an error only if a kernel needs one.
    let mut foreign: HashMap<OutletId, DatumType> = HashMap::new();
    // The graph's inputs, in its order (one no output needs included: callers pass it anyway).
    let mut inputs = Vec::new();
    for outlet in model.input_outlets().map_err(|e| Error::Run(format!("{e:#}")))? {
        let node = model.node(outlet.node);
        let fact = &node.outputs[outlet.slot].fact;
        let shape = fact
            .shape
            .as_concrete()
            .map(<[usize]>::to_vec)
            .ok_or_else(|| Error::FreeDim { tensor: node.name.clone(), shape: format!("{:?}", fact.shape) })?;
        let dt = Dt::of(fact.datum_type)
            .ok_or_else(|| Error::DType { tensor: node.name.clone(), dtype: type_name(fact.datum_type) })?;
        let val = b.input(&node.name, shape, dt)?;
        inputs.push(InputSlot { buf: val.buf.unwrap_or_default(), len: val.len(), datum_type: fact.datum_type, dt });
        values.insert(*outlet, val);
    }
    for &id in &order {
        let node = model.node(id);
        if node.op_is::<TypedSource>() {
            continue;
        }
        b.node = node.name.clone();
        let tensor =
            |ix: usize| if node.outputs.len() == 1 { node.name.clone() } else { format!("{}:{ix}", node.name) };
        let shape = |ix: usize| -> Result<Vec<usize>> {
            let fact = &node.outputs[ix].fact;
            fact.shape
                .as_concrete()
                .map(<[usize]>::to_vec)
                .ok_or_else(|| Error::FreeDim { tensor: tensor(ix), shape: format!("{:?}", fact.shape) })
        };
        let dt = |ix: usize| -> Result<Dt> {
            let datum_type = node.outputs[ix].fact.datum_type;
            Dt::of(datum_type).ok_or_else(|| Error::DType { tensor: tensor(ix), dtype: type_name(datum_type) })
        };
        if let Some(konst) = node.op_as::<Const>().map(|c| c.val().clone()) {
            let outlet = OutletId::new(id, 0);
            if let Some(dt) = Dt::of(konst.datum_type()) {
                values.insert(outlet, Val { shape: shape(0)?, dt, buf: None, konst: Some(konst) });
            } else {
                foreign.insert(outlet, konst.datum_type());
            }
            continue;
        }
        let dts = (0..node.outputs.len()).map(dt).collect::<Result<Vec<_>>>()?;
        let name = node.op.name();
        let translator = translator(&name).ok_or_else(|| Error::Unsupported {
            node: node.name.clone(),
            op: name.to_string(),
            detail: "the GPU engine has no kernel for this op".into(),
        })?;
        let node_inputs: Vec<Val> = node
            .inputs
            .iter()
            .map(|outlet| match (values.get(outlet), foreign.get(outlet)) {
                (Some(val), _) => Ok(val.clone()),
                (None, Some(&datum_type)) => Err(Error::DType {
                    tensor: format!("a constant input of `{}`", node.name),
                    dtype: type_name(datum_type),
                }),
                (None, None) => Err(Error::Run(format!("input {outlet:?} of `{}` was not computed", node.name))),
            })
            .collect::<Result<_>>()?;
        if translator.kinds == Kinds::F32
            && let Some(other) = node_inputs.iter().map(|v| v.dt).chain(dts.iter().copied()).find(|&d| d != Dt::F32)
        {
            return Err(b.unsupported(&name, format!("{} values (this op runs on f32 only)", other.wgsl())));
        }
        let outputs = (translator.translate)(&mut b, node, node_inputs)?;
        for (ix, val) in outputs.into_iter().enumerate() {
            let expected = shape(ix)?;
            if val.shape != expected || val.dt != dts[ix] {
                return Err(Error::Unsupported {
                    node: node.name.clone(),
                    op: name.to_string(),
                    detail: format!(
                        "the kernel computes {} {:?} where tract expects {} {expected:?}",
                        val.dt.wgsl(),
                        val.shape,
                        dts[ix].wgsl()
                    ),
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
        let datum_type = model.outlet_fact(*outlet).map_err(|e| Error::Run(format!("{e:#}")))?.datum_type;
        outputs.push(OutputSlot { buf, shape: val.shape, datum_type });
    }
    Program::new(gpu, b, inputs, outputs).await
}

/// A tract type as errors name it (`i64`, `f16`).
fn type_name(datum_type: DatumType) -> String {
    format!("{datum_type:?}").to_lowercase()
}
