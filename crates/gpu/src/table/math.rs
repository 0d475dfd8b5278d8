//! Products, reductions and normalisations.

use tract_core::internal::*;
use tract_core::ops::einsum::prefix_matmul::PrefixMatMul;
use tract_core::ops::nn::{Reduce, RmsNorm, Softmax, SoftmaxKind};

use super::check_axes;
use crate::error::Result;
use crate::kernels::matmul::{self, Layout};
use crate::kernels::norm;
use crate::kernels::reduce::{self, Reducer};
use crate::plan::{Builder, Dt, Val};

pub(super) fn prefix_matmul(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<PrefixMatMul>().ok_or_else(|| b.unsupported("PrefixMatMul", "not a matmul"))?;
    if op.quantize_output.is_some() || op.operating_dt.is_some_and(|dt| dt != f32::datum_type()) {
        return Err(b.unsupported("PrefixMatMul", "quantized or non-f32 products"));
    }
    let [a, m] = &mut inputs[..] else { return Err(b.unsupported("PrefixMatMul", "expected two inputs")) };
    let c = matmul::emit(
        b,
        a,
        m,
        Layout { transposed: op.transpose_a },
        Layout { transposed: op.transpose_b },
        op.transpose_c,
    )?;
    Ok(vec![c])
}

pub(super) fn reduce_(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    use tract_core::ops::nn::Reducer as R;
    let op = node.op_as::<Reduce>().ok_or_else(|| b.unsupported("Reduce", "not a reduction"))?;
    let reducer = match op.reducer {
        R::Sum => Reducer::Sum,
        R::Max => Reducer::Max,
        R::Min => Reducer::Min,
        R::Prod => Reducer::Prod,
        R::MeanOfSquares => Reducer::MeanOfSquares,
        other => return Err(b.unsupported(&node.op.name(), format!("reducer {other:?}"))),
    };
    check_axes(b, &node.op.name(), &op.axes, inputs[0].shape.len())?;
    Ok(vec![reduce::emit(b, &mut inputs[0], &op.axes, reducer)?])
}

pub(super) fn softmax(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Softmax>().ok_or_else(|| b.unsupported("Softmax", "not a softmax"))?;
    let [axis] = op.axes.as_slice() else {
        return Err(b.unsupported("Softmax", format!("over axes {:?} (one axis is taken)", op.axes)));
    };
    if op.quant_output_dt.is_some() {
        return Err(b.unsupported("Softmax", "quantized output"));
    }
    check_axes(b, "Softmax", &[*axis], inputs[0].shape.len())?;
    Ok(vec![reduce::softmax(b, &mut inputs[0], *axis, op.kind == SoftmaxKind::LogSoftmax)?])
}

pub(super) fn arg(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    use tract_core::ops::nn::Reducer as R;
    let name = node.op.name();
    let op = node.op_as::<Reduce>().ok_or_else(|| b.unsupported(&name, "not a reduction"))?;
    let (largest, last) = match op.reducer {
        R::ArgMax(last) => (true, last),
        R::ArgMin(last) => (false, last),
        other => return Err(b.unsupported(&name, format!("reducer {other:?}"))),
    };
    let [axis] = op.axes.as_slice() else {
        return Err(b.unsupported(&name, format!("over axes {:?} (one axis is taken)", op.axes)));
    };
    if inputs[0].dt != Dt::F32 {
        return Err(b.unsupported(&name, format!("{} values (f32 is taken)", inputs[0].dt.wgsl())));
    }
    check_axes(b, &name, &[*axis], inputs[0].shape.len())?;
    Ok(vec![reduce::arg(b, &mut inputs[0], *axis, largest, last)?])
}

pub(super) fn lrn(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<tract_onnx_opl::lrn::Lrn>().ok_or_else(|| b.unsupported("Lrn", "not an LRN"))?;
    if op.size == 0 || inputs[0].shape.len() < 2 || inputs[0].shape[1] == 0 {
        return Err(b.unsupported("Lrn", format!("size {} over shape {:?}", op.size, inputs[0].shape)));
    }
    let p = norm::Lrn { alpha: op.alpha, beta: op.beta, bias: op.bias, size: op.size };
    Ok(vec![norm::lrn(b, &mut inputs[0], &p)?])
}

pub(super) fn rms_norm(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<RmsNorm>().ok_or_else(|| b.unsupported("RmsNorm", "not an RMS norm"))?;
    let eps = op.eps.cast_to_scalar::<f32>().ok().filter(|e| e.is_finite());
    let Some(eps) = eps else { return Err(b.unsupported("RmsNorm", format!("epsilon {:?}", op.eps))) };
    check_axes(b, "RmsNorm", &[op.axis], inputs[0].shape.len())?;
    if inputs[0].shape[op.axis] == 0 {
        return Err(b.unsupported("RmsNorm", "a norm over an empty axis"));
    }
    Ok(vec![norm::rms(b, &mut inputs[0], op.axis, eps)?])
}
