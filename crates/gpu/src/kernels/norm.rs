//! Normalisations: across a window of channels (LRN), and by a row's root mean square.

use std::fmt::Write;

use super::{bindings, coords, element_main, groups, literal, per_row, strides};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

/// ONNX's LRN across the channels (axis 1):
/// `y = x / (bias + alpha / size · Σ x²)^beta`, the sum over the channels
/// `c - ⌊(size - 1) / 2⌋ ..= c + ⌈(size - 1) / 2⌉` that exist.
pub(crate) struct Lrn {
    pub alpha: f32,
    pub beta: f32,
    pub bias: f32,
    pub size: usize,
}

pub(crate) fn lrn(b: &mut Builder, x: &mut Val, p: &Lrn) -> Result<Val> {
    let shape = x.shape.clone();
    let (channels, stride) = (shape[1], strides(&shape)[1]);
    let (before, after) = ((p.size - 1) / 2, (p.size - 1).div_ceil(2));
    let out = b.temp(shape.clone(), Dt::F32)?;
    let bound = vec![b.bind(x)?, b.bind(&mut out.clone())?];
    let mut s = bindings(1);
    s.push_str(&element_main(out.len()));
    s.push_str(&coords("i", &shape, "c"));
    let _ = writeln!(
        s,
        "let lo = c1 - min(c1, {before}u);\n\
         let hi = min(c1 + {after}u, {last}u);\n\
         let base = i - c1 * {stride}u;\n\
         var sum = 0.0;\n\
         for (var k = lo; k <= hi; k++) {{ let v = in0[base + k * {stride}u]; sum += v * v; }}\n\
         out[i] = in0[i] / pow({bias} + {scale} * sum, {beta});\n}}",
        last = channels - 1,
        bias = literal(p.bias),
        scale = literal(p.alpha / p.size as f32),
        beta = literal(p.beta),
    );
    let groups = groups(out.len() as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}

/// `y = x / sqrt(mean(x², axis) + eps)`: tract's `RmsNorm`, what a LayerNorm becomes once its
/// mean is subtracted. One thread per row along `axis`.
pub(crate) fn rms(b: &mut Builder, x: &mut Val, axis: usize, eps: f32) -> Result<Val> {
    let eps = literal(eps);
    per_row(b, x, axis, (x.shape.clone(), Dt::F32), |len, stride| {
        format!(
            "var sum = 0.0;\n\
             for (var j = 0u; j < {len}u; j++) {{ let v = in0[base + j * {stride}u]; sum = fma(v, v, sum); }}\n\
             let scale = inverseSqrt(sum / {len}.0 + {eps});\n\
             for (var j = 0u; j < {len}u; j++) {{ out[base + j * {stride}u] = in0[base + j * {stride}u] * scale; }}\n"
        )
    })
}
