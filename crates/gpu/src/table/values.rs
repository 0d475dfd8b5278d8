//! Element-wise translators: unary and binary maths, comparisons, logic, `Where`, casts.

use tract_core::internal::*;
use tract_core::ops::binary::TypedBinOp;
use tract_core::ops::cast::Cast;
use tract_core::ops::element_wise::ElementWiseOp;

use super::movement::view;
use crate::error::Result;
use crate::kernels::elementwise;
use crate::plan::{Builder, Dt, Val};

pub(super) fn unary(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<ElementWiseOp>().ok_or_else(|| b.unsupported(&node.op.name(), "not an element-wise op"))?;
    let mini = &op.0;
    let name = mini.name();
    let expr = match name.as_str() {
        "Abs" => "abs(v0)".to_owned(),
        "Neg" => "-v0".into(),
        "Exp" => "exp(v0)".into(),
        "Ln" => "log(v0)".into(),
        "Sqrt" => "sqrt(v0)".into(),
        "Rsqrt" => "inverseSqrt(v0)".into(),
        "Recip" => "1.0 / v0".into(),
        "Floor" => "floor(v0)".into(),
        "Ceil" => "ceil(v0)".into(),
        "RoundHalfToEven" => "round(v0)".into(),
        "Sign" => "sign(v0)".into(),
        "Square" => "v0 * v0".into(),
        "Sigmoid" => "sigmoid_(v0)".into(),
        "Tanh" => "tanh_(v0)".into(),
        "Erf" => "erf_(v0)".into(),
        "HardSwish" => "v0 * clamp(v0 / 6.0 + 0.5, 0.0, 1.0)".into(),
        "Silu" => "v0 * sigmoid_(v0)".into(),
        "GeluExact" => "0.5 * v0 * (1.0 + erf_(v0 * 0.70710678118654752))".into(),
        "GeluApproximate" => {
            let fast = mini.downcast_ref::<tract_core::ops::nn::GeluApproximate>().is_some_and(|g| g.fast_impl);
            let power = if fast { "v0 * v0" } else { "v0 * v0 * v0" };
            format!("0.5 * v0 * (1.0 + tanh_(0.79788456080286536 * (v0 + 0.044715 * {power})))")
        }
        "LeakyRelu" => {
            let alpha = mini
                .downcast_ref::<tract_core::ops::nn::LeakyRelu>()
                .map(|l| l.alpha)
                .ok_or_else(|| b.unsupported(&name, "no alpha"))?;
            format!("select({} * v0, v0, v0 >= 0.0)", crate::kernels::literal(alpha))
        }
        "PowConst" => {
            let exponent = mini
                .downcast_ref::<tract_core::ops::math::PowConst>()
                .map(|p| p.exponent)
                .ok_or_else(|| b.unsupported(&name, "no exponent"))?;
            format!("pow_(v0, {})", crate::kernels::literal(exponent))
        }
        other => return Err(b.unsupported(other, "no kernel for this element-wise op")),
    };
    if op.1.is_some_and(|dt| dt != f32::datum_type()) {
        return Err(b.unsupported(&name, format!("output type {:?}", op.1)));
    }
    Ok(vec![elementwise::emit(b, &mut inputs, &expr, Dt::F32, None)?])
}

pub(super) fn not(b: &mut Builder, _: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    if inputs[0].dt != Dt::Bool {
        return Err(b.unsupported("Not", format!("{} values", inputs[0].dt.wgsl())));
    }
    Ok(vec![elementwise::emit(b, &mut inputs, "1u - v0", Dt::Bool, None)?])
}

pub(super) fn binary(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<TypedBinOp>().ok_or_else(|| b.unsupported(&node.op.name(), "not a binary op"))?;
    let name = op.0.name();
    let dt = inputs[0].dt;
    if inputs.iter().any(|v| v.dt != dt) {
        let types: Vec<_> = inputs.iter().map(|v| v.dt.wgsl()).collect();
        return Err(b.unsupported(name, format!("operands of types {}", types.join(" and "))));
    }
    let number = matches!(dt, Dt::F32 | Dt::I32);
    let compare = |op: &str| (format!("select(0u, 1u, v0 {op} v1)"), Dt::Bool);
    let (expr, out) = match name {
        "Add" if number => ("v0 + v1".to_owned(), dt),
        "Sub" if number => ("v0 - v1".into(), dt),
        "SubF" if number => ("v1 - v0".into(), dt),
        "Mul" if number => ("v0 * v1".into(), dt),
        "Div" if number => ("v0 / v1".into(), dt),
        "Max" if number => ("max(v0, v1)".into(), dt),
        "Min" if number => ("min(v0, v1)".into(), dt),
        "Pow" if dt == Dt::F32 => ("pow_(v0, v1)".into(), dt),
        "And" if dt == Dt::Bool => ("v0 & v1".into(), dt),
        "Or" if dt == Dt::Bool => ("v0 | v1".into(), dt),
        "Xor" if dt == Dt::Bool => ("v0 ^ v1".into(), dt),
        "Eq" => compare("=="),
        "NE" => compare("!="),
        "LT" if number => compare("<"),
        "GT" if number => compare(">"),
        "LTE" if number => compare("<="),
        "GTE" if number => compare(">="),
        other => return Err(b.unsupported(other, format!("no kernel for {} operands", dt.wgsl()))),
    };
    let check = if dt == Dt::I32 { overflow(name) } else { None };
    Ok(vec![elementwise::emit(b, &mut inputs, &expr, out, check)?])
}

/// When 32-bit integer arithmetic gives another number than tract's i64 would (a result past
/// i32), or none (a division by zero): WGSL wraps and divides by zero without a trap, so the
/// kernel checks, over its operands `v0`, `v1` and result `r`.
fn overflow(op: &str) -> Option<&'static str> {
    Some(match op {
        // Operands of one sign, a result of the other.
        "Add" => "((v0 ^ r) & (v1 ^ r)) < 0",
        "Sub" => "((v0 ^ v1) & (v0 ^ r)) < 0",
        "SubF" => "((v1 ^ v0) & (v1 ^ r)) < 0",
        // WGSL defines i32::MIN / -1 as i32::MIN, so the quotient test misses that one pair.
        "Mul" => "v0 != 0 && (r / v0 != v1 || (v0 == -1 && v1 == bitcast<i32>(0x80000000u)))",
        "Div" => "v1 == 0 || (v0 == bitcast<i32>(0x80000000u) && v1 == -1)",
        _ => return None,
    })
}

/// `Where`: `cond ? t : f`, broadcast together.
pub(super) fn iff(b: &mut Builder, _: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let [cond, t, f] = &inputs[..] else { return Err(b.unsupported("Iff", "expected three inputs")) };
    if cond.dt != Dt::Bool || t.dt != f.dt {
        let detail = format!("a {} condition over {} and {}", cond.dt.wgsl(), t.dt.wgsl(), f.dt.wgsl());
        return Err(b.unsupported("Iff", detail));
    }
    let dt = t.dt;
    Ok(vec![elementwise::emit(b, &mut inputs, "select(v2, v1, v0 != 0u)", dt, None)?])
}

pub(super) fn cast(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Cast>().ok_or_else(|| b.unsupported("Cast", "not a cast"))?;
    let to = Dt::of(op.to).ok_or_else(|| b.unsupported("Cast", format!("to {:?}", op.to)))?;
    let expr = match (inputs[0].dt, to) {
        (from, to) if from == to => return view(b, node, inputs),
        (Dt::F32, Dt::I32) => "i32(v0)",
        (Dt::I32 | Dt::Bool, Dt::F32) => "f32(v0)",
        (Dt::Bool, Dt::I32) => "i32(v0)",
        (Dt::F32, Dt::Bool) => "select(0u, 1u, v0 != 0.0)",
        (Dt::I32, Dt::Bool) => "select(0u, 1u, v0 != 0)",
        (from, to) => return Err(b.unsupported("Cast", format!("{} to {}", from.wgsl(), to.wgsl()))),
    };
    // A float outside i32 (or NaN) would be clamped; tract's i64 would hold it.
    let check = (inputs[0].dt, to) == (Dt::F32, Dt::I32);
    let check = check.then_some("!(v0 >= -2147483648.0 && v0 < 2147483648.0)");
    Ok(vec![elementwise::emit(b, &mut inputs, expr, to, check)?])
}
