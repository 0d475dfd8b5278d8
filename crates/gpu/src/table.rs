//! The translator table: tract op → kernels. Anything not here is refused with the node named.
//!
//! Entries are keyed by tract's op name (for element-wise and binary ops, the name of the inner
//! mini-op); each entry says which variants it takes. `tests/` runs a case for every entry.

mod math;
mod movement;
mod values;
mod windows;

use tract_core::internal::*;

use crate::error::Result;
use crate::plan::{Builder, Val};
use math::{arg, lrn, prefix_matmul, reduce_, rms_norm, softmax};
use movement::{broadcast, concat, downsample, gather, move_axis, pad, slice, tile, upsample, view};
use values::{binary, cast, iff, not, unary};
use windows::{conv_, deconv, max_pool, sum_pool};

/// Translates one node: its inputs' values in, its outputs' values out.
pub(crate) type Translate = fn(&mut Builder, &TypedNode, Vec<Val>) -> Result<Vec<Val>>;

/// One op the GPU engine takes.
#[derive(Debug, Clone, Copy)]
pub struct Translator {
    /// tract's name for the op.
    pub op: &'static str,
    /// The values it takes.
    pub kinds: Kinds,
    /// The variants taken; any other is refused with the reason.
    pub variants: &'static str,
    pub(crate) translate: Translate,
}

/// The values a translator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// f32 inputs and outputs only, checked before the translator is called.
    F32,
    /// f32, integers (i64 and i32, held as i32) and booleans: the translator types its kernels
    /// by its inputs and refuses the combinations it does not take.
    Any,
}

macro_rules! entries {
    ($($op:literal, $kinds:ident, $variants:literal => $f:expr;)*) => {
        /// Every op the GPU engine takes.
        pub const TRANSLATORS: &[Translator] =
            &[$(Translator { op: $op, kinds: Kinds::$kinds, variants: $variants, translate: $f }),*];
    };
}

entries! {
    "Abs", F32, "f32" => unary;
    "Neg", F32, "f32" => unary;
    "Exp", F32, "f32" => unary;
    "Ln", F32, "f32 (NaN below 0, as the driver gives)" => unary;
    "Sqrt", F32, "f32 (NaN below 0, as the driver gives)" => unary;
    "Rsqrt", F32, "f32" => unary;
    "Recip", F32, "f32" => unary;
    "Floor", F32, "f32" => unary;
    "Ceil", F32, "f32" => unary;
    "RoundHalfToEven", F32, "f32" => unary;
    "Sign", F32, "f32" => unary;
    "Square", F32, "f32" => unary;
    "Sigmoid", F32, "f32" => unary;
    "Tanh", F32, "f32" => unary;
    "Erf", F32, "f32 (|error| < 1.5e-7)" => unary;
    "HardSwish", F32, "f32" => unary;
    "Silu", F32, "f32" => unary;
    "GeluExact", F32, "f32" => unary;
    "GeluApproximate", F32, "f32, both tanh forms" => unary;
    "LeakyRelu", F32, "f32, any alpha" => unary;
    "PowConst", F32, "f32, any exponent" => unary;
    "Add", Any, "f32 and integers, numpy broadcasting" => binary;
    "Sub", Any, "f32 and integers, numpy broadcasting" => binary;
    "SubF", Any, "f32 and integers, numpy broadcasting" => binary;
    "Mul", Any, "f32 and integers, numpy broadcasting" => binary;
    "Div", Any, "f32 and integers (truncating), numpy broadcasting" => binary;
    "Max", Any, "f32 and integers, numpy broadcasting" => binary;
    "Min", Any, "f32 and integers, numpy broadcasting" => binary;
    "Pow", F32, "f32, numpy broadcasting" => binary;
    "Reshape", Any, "any" => view;
    "AddAxis", Any, "any" => view;
    "RmAxis", Any, "any" => view;
    "Identity", Any, "any" => view;
    "Cast", Any, "between f32, i64, i32 and bool" => cast;
    "MoveAxis", Any, "any" => move_axis;
    "PrefixMatMul", F32, "f32, any transposition, broadcast batch dims" => prefix_matmul;
    "Conv", F32, "f32 NCHW/OIHW, 1-D and 2-D, any stride, dilation, padding, groups" => conv_;
    "Deconv", F32, "f32 NCHW/OIHW, 1-D and 2-D, any stride, dilation, padding, groups, adjustments" => deconv;
    "MaxPool", F32, "f32 NCHW, 1-D and 2-D, without index output" => max_pool;
    "SumPool", F32, "f32 NCHW, 1-D and 2-D, average or sum" => sum_pool;
    "Reduce<Sum>", F32, "f32, any axes" => reduce_;
    "Reduce<Max>", F32, "f32, any axes" => reduce_;
    "Reduce<Min>", F32, "f32, any axes" => reduce_;
    "Reduce<Prod>", F32, "f32, any axes" => reduce_;
    "Reduce<MeanOfSquares>", F32, "f32, any axes" => reduce_;
    "Softmax", F32, "f32, one axis" => softmax;
    "LogSoftmax", F32, "f32, one axis" => softmax;
    "Concat", Any, "any type, any axis" => concat;
    "Slice", Any, "any type, fixed bounds" => slice;
    "Downsample", Any, "any type, positive strides" => downsample;
    "Lrn", F32, "f32, across channels (axis 1)" => lrn;
    "RmsNorm", F32, "f32, any axis, finite epsilon" => rms_norm;
    "NearestUpsample", Any, "any type, integer scales" => upsample;
    "Tile", Any, "any type, fixed multipliers" => tile;
    "MultiBroadcastTo", Any, "any type" => broadcast;
    "Pad", F32, "f32, constant, reflect and edge" => pad;
    "And", Any, "bool, numpy broadcasting" => binary;
    "Or", Any, "bool, numpy broadcasting" => binary;
    "Xor", Any, "bool, numpy broadcasting" => binary;
    "Not", Any, "bool" => not;
    "Eq", Any, "f32, integers and bool, numpy broadcasting" => binary;
    "NE", Any, "f32, integers and bool, numpy broadcasting" => binary;
    "LT", Any, "f32 and integers, numpy broadcasting" => binary;
    "GT", Any, "f32 and integers, numpy broadcasting" => binary;
    "LTE", Any, "f32 and integers, numpy broadcasting" => binary;
    "GTE", Any, "f32 and integers, numpy broadcasting" => binary;
    "Iff", Any, "any type, numpy broadcasting" => iff;
    "Gather", Any, "any type, i64 or i32 indices (negative from the end; out of range fails the run)" => gather;
    "Reduce<ArgMax(false)>", Any, "f32 in, one axis, the first largest" => arg;
    "Reduce<ArgMax(true)>", Any, "f32 in, one axis, the last largest" => arg;
    "Reduce<ArgMin(false)>", Any, "f32 in, one axis, the first smallest" => arg;
    "Reduce<ArgMin(true)>", Any, "f32 in, one axis, the last smallest" => arg;
}

/// The translator for `op`, if any.
pub fn translator(op: &str) -> Option<&'static Translator> {
    TRANSLATORS.iter().find(|t| t.op == op)
}

pub(crate) fn output_shape(node: &TypedNode, ix: usize) -> Vec<usize> {
    node.outputs[ix].fact.shape.as_concrete().map(<[usize]>::to_vec).unwrap_or_default()
}

/// Axis attributes come from the model file: each must name an axis of the value it applies to.
pub(crate) fn check_axes(b: &Builder, op: &str, axes: &[usize], rank: usize) -> Result<()> {
    match axes.iter().find(|&&a| a >= rank) {
        Some(axis) => Err(b.unsupported(op, format!("axis {axis} of a rank-{rank} value"))),
        None => Ok(()),
    }
}
