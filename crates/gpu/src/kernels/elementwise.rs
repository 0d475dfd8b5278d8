//! Element-wise kernels over operands broadcast to one output shape.

use std::fmt::Write;

use super::{broadcast_strides, coords, element_main, fault_binding, groups, offset, raise_fault, typed_bindings};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

/// Appends a kernel computing `expr` (over `v0`, `v1`, … — one per input, each of its input's
/// device type) into values of type `dt` for every element of the inputs broadcast together.
/// One-element constants are baked in as literals. `fault_if`, a WGSL condition over the inputs
/// and the result `r`, marks results the device cannot give right (an integer past i32, a
/// division by zero): where it holds, the run fails naming the node.
pub(crate) fn emit(b: &mut Builder, inputs: &mut [Val], expr: &str, dt: Dt, fault_if: Option<&str>) -> Result<Val> {
    let rank = inputs.iter().map(|v| v.shape.len()).max().unwrap_or(0);
    let mut shape = vec![1usize; rank];
    for v in inputs.iter() {
        let lead = rank - v.shape.len();
        for (d, &dim) in v.shape.iter().enumerate() {
            let out = &mut shape[lead + d];
            if *out == 1 {
                *out = dim;
            } else if dim != 1 && dim != *out {
                let shapes: Vec<_> = inputs.iter().map(|v| format!("{:?}", v.shape)).collect();
                return Err(b.unsupported("broadcast", format!("shapes {} do not broadcast", shapes.join(" and "))));
            }
        }
    }
    let out = b.temp(shape.clone(), dt)?;
    let n = out.len();
    let mut bound = Vec::new();
    let mut types = Vec::new();
    let mut body = String::new();
    let needs_coords = inputs.iter().any(|v| v.literal().is_none() && v.shape != shape);
    if needs_coords {
        body.push_str(&coords("i", &shape, "c"));
    }
    for (k, v) in inputs.iter_mut().enumerate() {
        if let Some(literal) = v.literal() {
            let _ = writeln!(body, "let v{k} = {literal};");
            continue;
        }
        let slot = bound.len();
        bound.push(b.bind(v)?);
        types.push(v.dt);
        let index =
            if v.shape == shape { "i".to_owned() } else { offset(0, "c", &broadcast_strides(&v.shape, &shape)) };
        let _ = writeln!(body, "let v{k} = in{slot}[{index}];");
    }
    let out_buf = b.bind(&mut out.clone())?;
    bound.push(out_buf);
    let mut bindings = typed_bindings(&types, dt);
    let _ = writeln!(body, "let r = {expr};");
    if let Some(condition) = fault_if {
        let (fault, code) = b.fault()?;
        bindings.push_str(&fault_binding(bound.len()));
        bound.push(fault);
        let _ = writeln!(body, "if ({condition}) {{ {} }}", raise_fault(code));
    }
    let shader = format!("{HELPERS}{bindings}{}{body}out[i] = r;\n}}\n", element_main(n));
    let groups = groups(n as u64, &b.node)?;
    b.dispatch(shader, bound, groups);
    Ok(out)
}

/// Functions the expressions may call, where WGSL's built-ins are undefined or imprecise.
const HELPERS: &str = "
fn erf_(x: f32) -> f32 {
    // Abramowitz and Stegun 7.1.26: |error| < 1.5e-7.
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - p * exp(-x * x));
}
fn tanh_(x: f32) -> f32 {
    // Some drivers overflow tanh's exponentials to NaN beyond |x| ~ 44; it is ±1 in f32 from 9.
    return tanh(clamp(x, -15.0, 15.0));
}
fn sigmoid_(x: f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
}
fn pow_(a: f32, b: f32) -> f32 {
    // WGSL's pow is undefined for a <= 0; ONNX's follows C's powf there.
    // Non-finite values come from runtime arithmetic: WGSL refuses them in constant expressions.
    if (b == 0.0) { return 1.0; }
    if (a == 0.0) { return select(1.0 / a, 0.0, b > 0.0); }
    let r = pow(abs(a), b);
    if (a > 0.0) { return r; }
    if (fract(b) != 0.0) { return sqrt(a); }
    return select(r, -r, fract(b * 0.5) != 0.0);
}
";
