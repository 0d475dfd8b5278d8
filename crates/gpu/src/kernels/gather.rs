//! Gather: slices of the data picked along one axis by integer indices (embedding lookups).

use std::fmt::Write;

use super::{coords, element_main, fault_binding, groups, raise_fault, strides, typed_bindings};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

/// `out[o.., j.., i..] = data[o.., indices[j..], i..]` along `axis`; a negative index counts from
/// the end, as ONNX says. An index outside `[-len, len)` writes the fault word, which fails the
/// run (ONNX leaves the result undefined; the engine gives none).
pub(crate) fn emit(b: &mut Builder, data: &mut Val, indices: &mut Val, axis: usize) -> Result<Val> {
    let mut shape = data.shape[..axis].to_vec();
    shape.extend(&indices.shape);
    shape.extend(&data.shape[axis + 1..]);
    let out = b.temp(shape.clone(), data.dt)?;
    let (fault, code) = b.fault()?;
    let bound = vec![b.bind(data)?, b.bind(indices)?, b.bind(&mut out.clone())?, fault];
    let len = data.shape[axis];
    let own = strides(&data.shape);
    let index_strides = strides(&indices.shape);
    let picked = indices.shape.len();
    let mut s = typed_bindings(&[data.dt, Dt::I32], data.dt);
    s.push_str(&fault_binding(3));
    s.push_str(&element_main(out.len()));
    s.push_str(&coords("i", &shape, "c"));
    // The output's coordinates: the data's before the axis, then the index's, then the data's rest.
    let index_at: Vec<String> =
        (0..picked).map(|d| format!("c{} * {}u", axis + d, index_strides[d])).chain(["0u".into()]).collect();
    let _ = writeln!(s, "var k = in1[{}];", index_at.join(" + "));
    let _ = writeln!(s, "if (k < 0) {{ k += {len}; }}");
    let _ = writeln!(s, "if (k < 0 || k >= {len}) {{ {} k = 0; }}", raise_fault(code));
    // The data's coordinates: the output's around the index, `k` on the axis.
    let mut at = format!("u32(k) * {}u", own[axis]);
    for (d, stride) in own[..axis].iter().enumerate() {
        let _ = write!(at, " + c{d} * {stride}u");
    }
    for (d, stride) in own[axis + 1..].iter().enumerate() {
        let _ = write!(at, " + c{} * {stride}u", axis + picked + d);
    }
    let _ = writeln!(s, "out[i] = in0[{at}];\n}}");
    let groups = groups(out.len() as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}
