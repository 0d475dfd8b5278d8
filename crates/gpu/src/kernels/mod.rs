//! WGSL kernels, generated per node with the node's shapes baked in as constants.
//!
//! Every kernel checks its bounds itself (no reliance on the driver's robust buffer access), so
//! shapes that are not multiples of a tile or workgroup are correct by construction.

pub(crate) mod conv;
pub(crate) mod copy;
pub(crate) mod elementwise;
pub(crate) mod gather;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod reduce;

use std::fmt::Write;

use crate::error::{Error, Result};
use crate::plan::Dt;

/// Threads per workgroup of the one-thread-per-element kernels: WebGPU's default maximum.
pub(crate) const WORKGROUP: u64 = 256;
/// WebGPU's default limit on workgroups per dispatch dimension.
pub(crate) const MAX_GROUPS: u64 = 65_535;

/// Workgroups for `threads` threads of [`WORKGROUP`], spread over x and y within the limit.
pub(crate) fn groups(threads: u64, node: &str) -> Result<[u32; 3]> {
    let groups = threads.div_ceil(WORKGROUP).max(1);
    let (x, y) = if groups <= MAX_GROUPS { (groups, 1) } else { (MAX_GROUPS, groups.div_ceil(MAX_GROUPS)) };
    if y > MAX_GROUPS {
        return Err(Error::Unsupported {
            node: node.to_owned(),
            op: "dispatch".into(),
            detail: format!("{threads} threads exceed one dispatch ({} at most)", MAX_GROUPS * MAX_GROUPS * WORKGROUP),
        });
    }
    Ok([x as u32, y as u32, 1])
}

/// The storage bindings of an f32 kernel: `in0..` read-only, then `out`, read-write.
pub(crate) fn bindings(inputs: usize) -> String {
    typed_bindings(&vec![Dt::F32; inputs], Dt::F32)
}

/// The storage bindings: `in0..` read-only of the given types, then `out`, read-write.
pub(crate) fn typed_bindings(inputs: &[Dt], out: Dt) -> String {
    let mut s = String::new();
    for (i, dt) in inputs.iter().enumerate() {
        let _ = writeln!(s, "@group(0) @binding({i}) var<storage, read> in{i}: array<{}>;", dt.wgsl());
    }
    let _ = writeln!(s, "@group(0) @binding({}) var<storage, read_write> out: array<{}>;", inputs.len(), out.wgsl());
    s
}

/// The fault word's binding, after the others (see [`crate::plan::Builder::fault`]).
pub(crate) fn fault_binding(slot: usize) -> String {
    format!("@group(0) @binding({slot}) var<storage, read_write> fault: array<atomic<u32>>;\n")
}

/// The WGSL statement that records dispatch `code`'s fault: the largest code wins, and the run
/// reads it back to name the node.
pub(crate) fn raise_fault(code: u32) -> String {
    format!("atomicMax(&fault[0], {code}u);")
}

/// The entry point of a one-thread-per-element kernel over `n` elements: `i` is the element.
pub(crate) fn element_main(n: usize) -> String {
    format!(
        "@compute @workgroup_size({WORKGROUP})\n\
         fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, \
         @builtin(local_invocation_index) li: u32) {{\n\
         let i = (wg.y * nwg.x + wg.x) * {WORKGROUP}u + li;\n\
         if (i >= {n}u) {{ return; }}\n"
    )
}

/// A kernel with one thread per row of `x` along `axis`, writing a value of shape `shape` and
/// type `dt`. `body(len, stride)` is WGSL that reads the row as `in0[base + j * stride]` for
/// `j < len` and writes `out` (softmax, norms and arg-max share this walk).
pub(crate) fn per_row(
    b: &mut crate::plan::Builder,
    x: &mut crate::plan::Val,
    axis: usize,
    (shape, dt): (Vec<usize>, Dt),
    body: impl FnOnce(usize, usize) -> String,
) -> Result<crate::plan::Val> {
    let len = x.shape[axis];
    let stride: usize = x.shape[axis + 1..].iter().product();
    let rows = x.len() / len.max(1);
    let out = b.temp(shape, dt)?;
    let bound = vec![b.bind(x)?, b.bind(&mut out.clone())?];
    let mut s = typed_bindings(&[x.dt], dt);
    s.push_str(&element_main(rows));
    let _ = writeln!(s, "let base = (i / {stride}u) * {}u + i % {stride}u;", len * stride);
    s.push_str(&body(len, stride));
    s.push_str("}\n");
    let groups = groups(rows as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}

/// An exact f32 literal (NaN and infinities included).
pub(crate) fn literal(value: f32) -> String {
    format!("bitcast<f32>({}u)", value.to_bits())
}

/// Row-major strides of `shape`, in elements.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// Statements that split the flat index `flat` over `shape` into `{name}0..`.
pub(crate) fn coords(flat: &str, shape: &[usize], name: &str) -> String {
    let strides = strides(shape);
    let mut s = String::new();
    for (d, (&dim, &stride)) in shape.iter().zip(&strides).enumerate() {
        let _ = if d == 0 {
            writeln!(s, "let {name}{d} = {flat} / {stride}u;")
        } else {
            writeln!(s, "let {name}{d} = ({flat} / {stride}u) % {dim}u;")
        };
    }
    s
}

/// `base + c0 * s0 + …` over the dims whose stride is not zero.
pub(crate) fn offset(base: usize, name: &str, strides: &[usize]) -> String {
    let mut s = format!("{base}u");
    for (d, &stride) in strides.iter().enumerate() {
        if stride != 0 {
            let _ = write!(s, " + {name}{d} * {stride}u");
        }
    }
    s
}

/// Strides of `input` broadcast to `output` (numpy rules, aligned right): 0 where it repeats.
pub(crate) fn broadcast_strides(input: &[usize], output: &[usize]) -> Vec<usize> {
    let own = strides(input);
    let lead = output.len() - input.len();
    (0..output.len())
        .map(|d| if d < lead || input[d - lead] == 1 && output[d] != 1 { 0 } else { own[d - lead] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_strides_follow_numpy() {
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), [0, 1, 0]);
        assert_eq!(broadcast_strides(&[2, 3, 4], &[2, 3, 4]), [12, 4, 1]);
        assert_eq!(broadcast_strides(&[], &[5]), [0]);
    }

    #[test]
    fn dispatches_stay_within_the_limit() {
        assert_eq!(groups(10, "n").unwrap(), [1, 1, 1]);
        assert_eq!(groups(256 * 65_536, "n").unwrap(), [65_535, 2, 1]);
        assert!(groups(u64::MAX / 2, "n").is_err());
    }
}
