//! Reductions over any set of axes, and softmax over one, one thread per output row.

use std::fmt::Write;

use super::{bindings, coords, element_main, groups, offset, per_row, strides};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reducer {
    Sum,
    Max,
    Min,
    Prod,
    MeanOfSquares,
}

/// Reduces `axes` of `x` (kept as dims of 1, as tract does).
pub(crate) fn emit(b: &mut Builder, x: &mut Val, axes: &[usize], reducer: Reducer) -> Result<Val> {
    let shape = x.shape.clone();
    let mut out_shape = shape.clone();
    for &a in axes {
        out_shape[a] = 1;
    }
    let reduced: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let count: usize = reduced.iter().product();
    let own = strides(&shape);
    let out = b.temp(out_shape.clone(), Dt::F32)?;
    let bound = vec![b.bind(x)?, b.bind(&mut out.clone())?];
    let n = out.len();
    let mut s = bindings(1);
    s.push_str(&element_main(n));
    s.push_str(&coords("i", &out_shape, "c"));
    let kept: Vec<usize> = (0..shape.len()).map(|d| if axes.contains(&d) { 0 } else { own[d] }).collect();
    let _ = writeln!(s, "let base = {};", offset(0, "c", &kept));
    let first = if reducer == Reducer::MeanOfSquares { "in0[base] * in0[base]" } else { "in0[base]" };
    let _ = writeln!(s, "var acc = {first};");
    let _ = writeln!(s, "for (var r = 1u; r < {count}u; r++) {{");
    s.push_str(&coords("r", &reduced, "k"));
    let along: Vec<usize> = axes.iter().map(|&a| own[a]).collect();
    let _ = writeln!(s, "let v = in0[base + {}];", offset(0, "k", &along));
    s.push_str(match reducer {
        Reducer::Sum => "acc += v;\n",
        Reducer::Max => "acc = max(acc, v);\n",
        Reducer::Min => "acc = min(acc, v);\n",
        Reducer::Prod => "acc *= v;\n",
        Reducer::MeanOfSquares => "acc = fma(v, v, acc);\n",
    });
    s.push_str("}\n");
    if reducer == Reducer::MeanOfSquares {
        let _ = writeln!(s, "acc = acc / {count}.0;");
    }
    s.push_str("out[i] = acc;\n}\n");
    if count == 0 {
        return Err(b.unsupported("Reduce", "a reduction over an empty axis"));
    }
    let groups = groups(n as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}

/// The index of the largest (or smallest) element along `axis`, kept as a dim of 1: the first
/// such index, or with `last` the last one.
pub(crate) fn arg(b: &mut Builder, x: &mut Val, axis: usize, largest: bool, last: bool) -> Result<Val> {
    if x.shape[axis] == 0 {
        return Err(b.unsupported("Reduce", "an index over an empty axis"));
    }
    let mut shape = x.shape.clone();
    shape[axis] = 1;
    let better = match (largest, last) {
        (true, false) => "v > best",
        (true, true) => "v >= best",
        (false, false) => "v < best",
        (false, true) => "v <= best",
    };
    per_row(b, x, axis, (shape, Dt::I32), |len, stride| {
        format!(
            "var best = in0[base];\n\
             var at = 0;\n\
             for (var j = 1u; j < {len}u; j++) {{\n\
             let v = in0[base + j * {stride}u];\n\
             if ({better}) {{ best = v; at = i32(j); }}\n}}\n\
             out[i] = at;\n"
        )
    })
}

/// Softmax (or log-softmax) of `x` along `axis`.
pub(crate) fn softmax(b: &mut Builder, x: &mut Val, axis: usize, log: bool) -> Result<Val> {
    if x.shape[axis] == 0 {
        return Err(b.unsupported("Softmax", "a softmax over an empty axis"));
    }
    let finish = if log { "e - log(sum)" } else { "exp(e) / sum" };
    per_row(b, x, axis, (x.shape.clone(), Dt::F32), |len, stride| {
        format!(
            "var top = in0[base];\n\
             for (var j = 1u; j < {len}u; j++) {{ top = max(top, in0[base + j * {stride}u]); }}\n\
             var sum = 0.0;\n\
             for (var j = 0u; j < {len}u; j++) {{ sum += exp(in0[base + j * {stride}u] - top); }}\n\
             for (var j = 0u; j < {len}u; j++) {{\n\
             let e = in0[base + j * {stride}u] - top;\n\
             out[base + j * {stride}u] = {finish};\n}}\n"
        )
    })
}
