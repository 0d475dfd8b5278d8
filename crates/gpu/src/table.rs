//! The translator table: tract op → kernels. Anything not here is refused with the node named.
//!
//! Entries are keyed by tract's op name (for element-wise and binary ops, the name of the inner
//! mini-op); each entry says which variants it takes. `tests/` runs a case for every entry.

use tract_core::internal::*;
use tract_core::ops::array::{MultiBroadcastTo, Pad, PadMode, Slice, Tile, TypedConcat};
use tract_core::ops::binary::TypedBinOp;
use tract_core::ops::cast::Cast;
use tract_core::ops::change_axes::AxisOp;
use tract_core::ops::cnn::{Conv, Deconv, KernelFormat, MaxPool, PoolSpec, SumPool};
use tract_core::ops::downsample::Downsample;
use tract_core::ops::einsum::prefix_matmul::PrefixMatMul;
use tract_core::ops::element_wise::ElementWiseOp;
use tract_core::ops::nn::{DataFormat, NearestUpsample, Reduce, Softmax, SoftmaxKind};

use crate::error::Result;
use crate::kernels::conv::{Direction, Window};
use crate::kernels::copy::{self, Strided};
use crate::kernels::matmul::Layout;
use crate::kernels::pool::Pooling;
use crate::kernels::reduce::Reducer;
use crate::kernels::{conv, elementwise, matmul, norm, pool, reduce, strides};
use crate::plan::{Builder, Val};

/// Translates one node: its inputs' values in, its outputs' values out.
pub(crate) type Translate = fn(&mut Builder, &TypedNode, Vec<Val>) -> Result<Vec<Val>>;

/// One op the GPU engine takes.
#[derive(Debug, Clone, Copy)]
pub struct Translator {
    /// tract's name for the op.
    pub op: &'static str,
    /// The variants taken; any other is refused with the reason.
    pub variants: &'static str,
    pub(crate) translate: Translate,
}

macro_rules! entries {
    ($($op:literal, $variants:literal => $f:expr;)*) => {
        /// Every op the GPU engine takes.
        pub const TRANSLATORS: &[Translator] = &[$(Translator { op: $op, variants: $variants, translate: $f }),*];
    };
}

entries! {
    "Abs", "f32" => unary;
    "Neg", "f32" => unary;
    "Exp", "f32" => unary;
    "Ln", "f32 (NaN below 0, as the driver gives)" => unary;
    "Sqrt", "f32 (NaN below 0, as the driver gives)" => unary;
    "Rsqrt", "f32" => unary;
    "Recip", "f32" => unary;
    "Floor", "f32" => unary;
    "Ceil", "f32" => unary;
    "RoundHalfToEven", "f32" => unary;
    "Sign", "f32" => unary;
    "Square", "f32" => unary;
    "Sigmoid", "f32" => unary;
    "Tanh", "f32" => unary;
    "Erf", "f32 (|error| < 1.5e-7)" => unary;
    "HardSwish", "f32" => unary;
    "Silu", "f32" => unary;
    "GeluExact", "f32" => unary;
    "GeluApproximate", "f32, both tanh forms" => unary;
    "LeakyRelu", "f32, any alpha" => unary;
    "PowConst", "f32, any exponent" => unary;
    "Add", "f32, numpy broadcasting" => binary;
    "Sub", "f32, numpy broadcasting" => binary;
    "SubF", "f32, numpy broadcasting" => binary;
    "Mul", "f32, numpy broadcasting" => binary;
    "Div", "f32, numpy broadcasting" => binary;
    "Max", "f32, numpy broadcasting" => binary;
    "Min", "f32, numpy broadcasting" => binary;
    "Pow", "f32, numpy broadcasting" => binary;
    "Reshape", "any" => view;
    "AddAxis", "any" => view;
    "RmAxis", "any" => view;
    "Identity", "any" => view;
    "Cast", "f32 to f32" => cast;
    "MoveAxis", "any" => move_axis;
    "PrefixMatMul", "f32, any transposition, broadcast batch dims" => prefix_matmul;
    "Conv", "f32 NCHW/OIHW, 1-D and 2-D, any stride, dilation, padding, groups" => conv_;
    "Deconv", "f32 NCHW/OIHW, 1-D and 2-D, any stride, dilation, padding, groups, adjustments" => deconv;
    "MaxPool", "f32 NCHW, 1-D and 2-D, without index output" => max_pool;
    "SumPool", "f32 NCHW, 1-D and 2-D, average or sum" => sum_pool;
    "Reduce<Sum>", "f32, any axes" => reduce_;
    "Reduce<Max>", "f32, any axes" => reduce_;
    "Reduce<Min>", "f32, any axes" => reduce_;
    "Reduce<Prod>", "f32, any axes" => reduce_;
    "Reduce<MeanOfSquares>", "f32, any axes" => reduce_;
    "Softmax", "f32, one axis" => softmax;
    "LogSoftmax", "f32, one axis" => softmax;
    "Concat", "f32, any axis" => concat;
    "Slice", "f32, fixed bounds" => slice;
    "Downsample", "f32, positive strides" => downsample;
    "Lrn", "f32, across channels (axis 1)" => lrn;
    "NearestUpsample", "f32, integer scales" => upsample;
    "Tile", "f32, fixed multipliers" => tile;
    "MultiBroadcastTo", "f32" => broadcast;
    "Pad", "f32, constant, reflect and edge" => pad;
}

/// The translator for `op`, if any.
pub fn translator(op: &str) -> Option<&'static Translator> {
    TRANSLATORS.iter().find(|t| t.op == op)
}

fn output_shape(node: &TypedNode, ix: usize) -> Vec<usize> {
    node.outputs[ix].fact.shape.as_concrete().map(<[usize]>::to_vec).unwrap_or_default()
}

fn unary(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
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
    Ok(vec![elementwise::emit(b, &mut inputs, &expr)?])
}

fn binary(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<TypedBinOp>().ok_or_else(|| b.unsupported(&node.op.name(), "not a binary op"))?;
    let name = op.0.name();
    let expr = match name {
        "Add" => "v0 + v1",
        "Sub" => "v0 - v1",
        "SubF" => "v1 - v0",
        "Mul" => "v0 * v1",
        "Div" => "v0 / v1",
        "Max" => "max(v0, v1)",
        "Min" => "min(v0, v1)",
        "Pow" => "pow_(v0, v1)",
        other => return Err(b.unsupported(other, "no kernel for this binary op")),
    };
    Ok(vec![elementwise::emit(b, &mut inputs, expr)?])
}

fn view(_: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    Ok(vec![inputs[0].reshaped(output_shape(node, 0))])
}

fn cast(b: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Cast>().ok_or_else(|| b.unsupported("Cast", "not a cast"))?;
    if op.to != f32::datum_type() {
        return Err(b.unsupported("Cast", format!("to {:?}", op.to)));
    }
    view(b, node, inputs)
}

/// Axis attributes come from the model file: each must name an axis of the value it applies to.
fn check_axes(b: &Builder, op: &str, axes: &[usize], rank: usize) -> Result<()> {
    match axes.iter().find(|&&a| a >= rank) {
        Some(axis) => Err(b.unsupported(op, format!("axis {axis} of a rank-{rank} value"))),
        None => Ok(()),
    }
}

fn move_axis(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let Some(AxisOp::Move(from, to)) = node.op_as::<AxisOp>() else {
        return Err(b.unsupported("MoveAxis", "not an axis move"));
    };
    check_axes(b, "MoveAxis", &[*from, *to], inputs[0].shape.len())?;
    let mut order: Vec<usize> = (0..inputs[0].shape.len()).collect();
    let axis = order.remove(*from);
    order.insert(*to, axis);
    Ok(vec![copy::permute(b, &mut inputs[0], &order)?])
}

fn prefix_matmul(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
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

/// A window op's data with its batch axis: tract drops a unit batch (NCHW becomes CHW), the
/// kernels always take one. Returns whether the axis was added, to take it off the output again.
fn batched(b: &Builder, op: &str, spec: &PoolSpec, x: &mut Val, output: &mut Vec<usize>) -> Result<bool> {
    match spec.data_format {
        DataFormat::NCHW => Ok(false),
        DataFormat::CHW => {
            x.shape.insert(0, 1);
            output.insert(0, 1);
            Ok(true)
        }
        other => Err(b.unsupported(op, format!("data format {other:?}"))),
    }
}

/// Takes the batch axis [`batched`] added off a window op's result.
fn unbatched(mut y: Val, added: bool) -> Vec<Val> {
    if added {
        y.shape.remove(0);
    }
    vec![y]
}

/// The 2-D window of a pool spec over `input` (NCHW or NCW, batched; the latter as H = 1).
/// `adjustments` are a transposed convolution's (its padding is computed the other way round).
fn window(
    b: &Builder,
    op: &str,
    spec: &PoolSpec,
    input: &[usize],
    output: &[usize],
    adjustments: Option<&[usize]>,
) -> Result<Window> {
    let rank = spec.rank();
    if !(1..=2).contains(&rank) || input.len() != rank + 2 || adjustments.is_some_and(|a| a.len() != rank) {
        return Err(b.unsupported(op, format!("{rank}-D windows over shape {input:?}")));
    }
    let padding = match adjustments {
        None => spec.computed_padding(&input[2..]),
        Some(adjustments) => spec
            .padding
            .compute_for_deconv(&input[2..], &spec.kernel_shape, &spec.dilations(), &spec.strides(), adjustments)
            .map_err(|e| b.unsupported(op, format!("padding: {e}")))?,
    };
    let two = |v: &[usize], fill: usize| if v.len() == 1 { [fill, v[0]] } else { [v[0], v[1]] };
    let before: Vec<usize> = padding.iter().map(|p| p.pad_before).collect();
    let after: Vec<usize> = padding.iter().map(|p| p.pad_after).collect();
    Ok(Window {
        kernel: two(&spec.kernel_shape, 1),
        strides: two(&spec.strides(), 1),
        dilations: two(&spec.dilations(), 1),
        pad: two(&before, 0),
        pad_after: two(&after, 0),
        input: two(&input[2..], 1),
        output: two(&output[2..], 1),
    })
}

/// What a convolution and a transposed one share once their op-specific checks passed: the batch
/// axis, the window, the group arithmetic and the kernel.
fn convolve(
    b: &mut Builder,
    node: &TypedNode,
    mut inputs: Vec<Val>,
    spec: &PoolSpec,
    group: usize,
    direction: Direction,
    adjustments: Option<&[usize]>,
) -> Result<Vec<Val>> {
    let op = &*node.op.name();
    let mut out_shape = output_shape(node, 0);
    let added = batched(b, op, spec, &mut inputs[0], &mut out_shape)?;
    let window = window(b, op, spec, &inputs[0].shape, &out_shape, adjustments)?;
    let [x, w, bias] = &mut inputs[..] else { return Err(b.unsupported(op, "expected data, kernel and bias")) };
    if w.shape.len() != x.shape.len() || group == 0 || x.shape[1] % group != 0 || w.shape[0] % group != 0 {
        return Err(b.unsupported(op, format!("kernel {:?} over {:?} in {group} groups", w.shape, x.shape)));
    }
    Ok(unbatched(conv::emit(b, x, w, bias, &window, group, direction, out_shape)?, added))
}

fn conv_(b: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Conv>().ok_or_else(|| b.unsupported("Conv", "not a convolution"))?;
    if op.q_params.is_some() {
        return Err(b.unsupported("Conv", "quantized convolution"));
    }
    if op.kernel_fmt != KernelFormat::OIHW {
        return Err(b.unsupported("Conv", format!("kernel format {:?}", op.kernel_fmt)));
    }
    convolve(b, node, inputs, &op.pool_spec, op.group, Direction::Forward, None)
}

fn deconv(b: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Deconv>().ok_or_else(|| b.unsupported("Deconv", "not a transposed convolution"))?;
    if op.kernel_format != KernelFormat::OIHW {
        return Err(b.unsupported("Deconv", format!("kernel format {:?}", op.kernel_format)));
    }
    convolve(b, node, inputs, &op.pool_spec, op.group, Direction::Transposed, Some(&op.adjustments))
}

fn max_pool(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<MaxPool>().ok_or_else(|| b.unsupported("MaxPool", "not a max pool"))?;
    if op.with_index_outputs.is_some() {
        return Err(b.unsupported("MaxPool", "the index output"));
    }
    let mut out_shape = output_shape(node, 0);
    let added = batched(b, "MaxPool", &op.pool_spec, &mut inputs[0], &mut out_shape)?;
    let window = window(b, "MaxPool", &op.pool_spec, &inputs[0].shape, &out_shape, None)?;
    Ok(unbatched(pool::emit(b, &mut inputs[0], &window, Pooling::Max, out_shape)?, added))
}

fn sum_pool(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<SumPool>().ok_or_else(|| b.unsupported("SumPool", "not a sum pool"))?;
    let mut out_shape = output_shape(node, 0);
    let added = batched(b, "SumPool", &op.pool_spec, &mut inputs[0], &mut out_shape)?;
    let window = window(b, "SumPool", &op.pool_spec, &inputs[0].shape, &out_shape, None)?;
    let pooling = Pooling::Sum { normalize: op.normalize, count_pad: op.count_include_pad };
    Ok(unbatched(pool::emit(b, &mut inputs[0], &window, pooling, out_shape)?, added))
}

fn reduce_(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
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

fn softmax(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
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

fn concat(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<TypedConcat>().ok_or_else(|| b.unsupported("Concat", "not a concatenation"))?;
    let shape = output_shape(node, 0);
    check_axes(b, "Concat", &[op.axis], shape.len())?;
    if inputs.iter().any(|i| i.shape.len() != shape.len()) {
        return Err(b.unsupported("Concat", format!("inputs of another rank than the output {shape:?}")));
    }
    let out = b.temp(shape.clone())?;
    let buf = b.bind(&mut out.clone())?;
    let out_strides = strides(&shape);
    let mut at = 0;
    for input in &mut inputs {
        let in_shape = input.shape.clone();
        let in_strides = strides(&in_shape);
        let copy = Strided {
            shape: &in_shape,
            in_base: 0,
            in_strides: &in_strides,
            out_base: at * out_strides[op.axis],
            out_strides: &out_strides,
        };
        copy::strided(b, input, buf, &copy)?;
        at += in_shape[op.axis];
    }
    Ok(vec![out])
}

fn slice(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Slice>().ok_or_else(|| b.unsupported("Slice", "not a slice"))?;
    let start = op.start.to_usize().map_err(|_| b.unsupported("Slice", format!("start {}", op.start)))?;
    check_axes(b, "Slice", &[op.axis], inputs[0].shape.len())?;
    let shape = output_shape(node, 0);
    let out = b.temp(shape.clone())?;
    let buf = b.bind(&mut out.clone())?;
    let in_strides = strides(&inputs[0].shape);
    let out_strides = strides(&shape);
    let copy = Strided {
        shape: &shape,
        in_base: start * in_strides[op.axis],
        in_strides: &in_strides,
        out_base: 0,
        out_strides: &out_strides,
    };
    copy::strided(b, &mut inputs[0], buf, &copy)?;
    Ok(vec![out])
}

/// Every `stride`-th element along an axis from `modulo` on: what tract leaves of a strided 1×1
/// convolution, and of strided slices.
fn downsample(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Downsample>().ok_or_else(|| b.unsupported("Downsample", "not a downsample"))?;
    let stride = usize::try_from(op.stride)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| b.unsupported("Downsample", format!("stride {}", op.stride)))?;
    check_axes(b, "Downsample", &[op.axis], inputs[0].shape.len())?;
    let shape = output_shape(node, 0);
    let out = b.temp(shape.clone())?;
    let buf = b.bind(&mut out.clone())?;
    let mut in_strides = strides(&inputs[0].shape);
    let in_base = op.modulo * in_strides[op.axis];
    in_strides[op.axis] *= stride;
    let out_strides = strides(&shape);
    let copy = Strided { shape: &shape, in_base, in_strides: &in_strides, out_base: 0, out_strides: &out_strides };
    copy::strided(b, &mut inputs[0], buf, &copy)?;
    Ok(vec![out])
}

fn upsample(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<NearestUpsample>().ok_or_else(|| b.unsupported("NearestUpsample", "not an upsample"))?;
    if op.scales.len() != inputs[0].shape.len() || op.scales.contains(&0) {
        return Err(b.unsupported("NearestUpsample", format!("scales {:?} over {:?}", op.scales, inputs[0].shape)));
    }
    Ok(vec![copy::upsample(b, &mut inputs[0], &op.scales)?])
}

fn tile(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Tile>().ok_or_else(|| b.unsupported("Tile", "not a tile"))?;
    let multipliers: Vec<usize> = op.multipliers.iter().filter_map(|m| m.to_usize().ok()).collect();
    if multipliers.len() != inputs[0].shape.len() || op.multipliers.len() != multipliers.len() {
        return Err(b.unsupported("Tile", format!("multipliers {:?} over {:?}", op.multipliers, inputs[0].shape)));
    }
    Ok(vec![copy::tile(b, &mut inputs[0], &multipliers)?])
}

fn lrn(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<tract_onnx_opl::lrn::Lrn>().ok_or_else(|| b.unsupported("Lrn", "not an LRN"))?;
    if op.size == 0 || inputs[0].shape.len() < 2 || inputs[0].shape[1] == 0 {
        return Err(b.unsupported("Lrn", format!("size {} over shape {:?}", op.size, inputs[0].shape)));
    }
    let p = norm::Lrn { alpha: op.alpha, beta: op.beta, bias: op.bias, size: op.size };
    Ok(vec![norm::lrn(b, &mut inputs[0], &p)?])
}

fn broadcast(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    if node.op_as::<MultiBroadcastTo>().is_none() {
        return Err(b.unsupported("MultiBroadcastTo", "not a broadcast"));
    }
    let shape = output_shape(node, 0);
    let out = b.temp(shape.clone())?;
    let buf = b.bind(&mut out.clone())?;
    let in_strides = crate::kernels::broadcast_strides(&inputs[0].shape, &shape);
    let out_strides = strides(&shape);
    let copy = Strided { shape: &shape, in_base: 0, in_strides: &in_strides, out_base: 0, out_strides: &out_strides };
    copy::strided(b, &mut inputs[0], buf, &copy)?;
    Ok(vec![out])
}

fn pad(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Pad>().ok_or_else(|| b.unsupported("Pad", "not a pad"))?;
    let mode = match &op.mode {
        PadMode::Constant(value) => match value.cast_to_scalar::<f32>() {
            Ok(v) if v.is_finite() => copy::PadMode::Constant(v),
            _ => return Err(b.unsupported("Pad", "a non-finite or non-f32 fill value")),
        },
        PadMode::Reflect => copy::PadMode::Reflect,
        PadMode::Edge => copy::PadMode::Edge,
    };
    let shape = &inputs[0].shape;
    if op.pads.len() != shape.len() {
        return Err(b.unsupported("Pad", format!("{} pads for a rank-{} value", op.pads.len(), shape.len())));
    }
    if mode == copy::PadMode::Reflect && shape.iter().zip(&op.pads).any(|(&d, &(x, y))| x.max(y) >= d) {
        return Err(b.unsupported("Pad", format!("reflecting {:?} by {:?}", shape, op.pads)));
    }
    if mode == copy::PadMode::Edge && shape.contains(&0) {
        return Err(b.unsupported("Pad", "edge padding of an empty tensor"));
    }
    Ok(vec![copy::pad(b, &mut inputs[0], &op.pads, mode)?])
}
