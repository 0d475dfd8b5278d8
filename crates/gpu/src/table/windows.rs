//! Window translators: convolutions (forward and transposed) and pools.

use tract_core::internal::*;
use tract_core::ops::cnn::{Conv, Deconv, KernelFormat, MaxPool, PoolSpec, SumPool};
use tract_core::ops::nn::DataFormat;

use super::output_shape;
use crate::error::Result;
use crate::kernels::conv::{self, Direction, Window};
use crate::kernels::pool::{self, Pooling};
use crate::plan::{Builder, Val};

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

pub(super) fn conv_(b: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Conv>().ok_or_else(|| b.unsupported("Conv", "not a convolution"))?;
    if op.q_params.is_some() {
        return Err(b.unsupported("Conv", "quantized convolution"));
    }
    if op.kernel_fmt != KernelFormat::OIHW {
        return Err(b.unsupported("Conv", format!("kernel format {:?}", op.kernel_fmt)));
    }
    convolve(b, node, inputs, &op.pool_spec, op.group, Direction::Forward, None)
}

pub(super) fn deconv(b: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Deconv>().ok_or_else(|| b.unsupported("Deconv", "not a transposed convolution"))?;
    if op.kernel_format != KernelFormat::OIHW {
        return Err(b.unsupported("Deconv", format!("kernel format {:?}", op.kernel_format)));
    }
    convolve(b, node, inputs, &op.pool_spec, op.group, Direction::Transposed, Some(&op.adjustments))
}

pub(super) fn max_pool(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<MaxPool>().ok_or_else(|| b.unsupported("MaxPool", "not a max pool"))?;
    if op.with_index_outputs.is_some() {
        return Err(b.unsupported("MaxPool", "the index output"));
    }
    let mut out_shape = output_shape(node, 0);
    let added = batched(b, "MaxPool", &op.pool_spec, &mut inputs[0], &mut out_shape)?;
    let window = window(b, "MaxPool", &op.pool_spec, &inputs[0].shape, &out_shape, None)?;
    Ok(unbatched(pool::emit(b, &mut inputs[0], &window, Pooling::Max, out_shape)?, added))
}

pub(super) fn sum_pool(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<SumPool>().ok_or_else(|| b.unsupported("SumPool", "not a sum pool"))?;
    let mut out_shape = output_shape(node, 0);
    let added = batched(b, "SumPool", &op.pool_spec, &mut inputs[0], &mut out_shape)?;
    let window = window(b, "SumPool", &op.pool_spec, &inputs[0].shape, &out_shape, None)?;
    let pooling = Pooling::Sum { normalize: op.normalize, count_pad: op.count_include_pad };
    Ok(unbatched(pool::emit(b, &mut inputs[0], &window, pooling, out_shape)?, added))
}
