//! Data movement translators: views, transposes, concatenation, slices, padding, gathers.

use tract_core::internal::*;
use tract_core::ops::array::{Gather, MultiBroadcastTo, Pad, PadMode, Slice, Tile, TypedConcat};
use tract_core::ops::change_axes::AxisOp;
use tract_core::ops::downsample::Downsample;
use tract_core::ops::nn::NearestUpsample;

use super::{check_axes, output_shape};
use crate::error::Result;
use crate::kernels::copy::{self, Strided};
use crate::kernels::{gather, strides};
use crate::plan::{Builder, Dt, Val};

pub(super) fn view(_: &mut Builder, node: &TypedNode, inputs: Vec<Val>) -> Result<Vec<Val>> {
    Ok(vec![inputs[0].reshaped(output_shape(node, 0))])
}

pub(super) fn move_axis(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let Some(AxisOp::Move(from, to)) = node.op_as::<AxisOp>() else {
        return Err(b.unsupported("MoveAxis", "not an axis move"));
    };
    check_axes(b, "MoveAxis", &[*from, *to], inputs[0].shape.len())?;
    let mut order: Vec<usize> = (0..inputs[0].shape.len()).collect();
    let axis = order.remove(*from);
    order.insert(*to, axis);
    Ok(vec![copy::permute(b, &mut inputs[0], &order)?])
}

pub(super) fn concat(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<TypedConcat>().ok_or_else(|| b.unsupported("Concat", "not a concatenation"))?;
    let shape = output_shape(node, 0);
    check_axes(b, "Concat", &[op.axis], shape.len())?;
    if inputs.iter().any(|i| i.shape.len() != shape.len()) {
        return Err(b.unsupported("Concat", format!("inputs of another rank than the output {shape:?}")));
    }
    let out = b.temp(shape.clone(), inputs[0].dt)?;
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

pub(super) fn slice(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Slice>().ok_or_else(|| b.unsupported("Slice", "not a slice"))?;
    let start = op.start.to_usize().map_err(|_| b.unsupported("Slice", format!("start {}", op.start)))?;
    check_axes(b, "Slice", &[op.axis], inputs[0].shape.len())?;
    let shape = output_shape(node, 0);
    let out = b.temp(shape.clone(), inputs[0].dt)?;
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
pub(super) fn downsample(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Downsample>().ok_or_else(|| b.unsupported("Downsample", "not a downsample"))?;
    let stride = usize::try_from(op.stride)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| b.unsupported("Downsample", format!("stride {}", op.stride)))?;
    check_axes(b, "Downsample", &[op.axis], inputs[0].shape.len())?;
    let shape = output_shape(node, 0);
    let out = b.temp(shape.clone(), inputs[0].dt)?;
    let buf = b.bind(&mut out.clone())?;
    let mut in_strides = strides(&inputs[0].shape);
    let in_base = op.modulo * in_strides[op.axis];
    in_strides[op.axis] *= stride;
    let out_strides = strides(&shape);
    let copy = Strided { shape: &shape, in_base, in_strides: &in_strides, out_base: 0, out_strides: &out_strides };
    copy::strided(b, &mut inputs[0], buf, &copy)?;
    Ok(vec![out])
}

pub(super) fn upsample(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<NearestUpsample>().ok_or_else(|| b.unsupported("NearestUpsample", "not an upsample"))?;
    if op.scales.len() != inputs[0].shape.len() || op.scales.contains(&0) {
        return Err(b.unsupported("NearestUpsample", format!("scales {:?} over {:?}", op.scales, inputs[0].shape)));
    }
    Ok(vec![copy::upsample(b, &mut inputs[0], &op.scales)?])
}

pub(super) fn tile(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Tile>().ok_or_else(|| b.unsupported("Tile", "not a tile"))?;
    let multipliers: Vec<usize> = op.multipliers.iter().filter_map(|m| m.to_usize().ok()).collect();
    if multipliers.len() != inputs[0].shape.len() || op.multipliers.len() != multipliers.len() {
        return Err(b.unsupported("Tile", format!("multipliers {:?} over {:?}", op.multipliers, inputs[0].shape)));
    }
    Ok(vec![copy::tile(b, &mut inputs[0], &multipliers)?])
}

pub(super) fn broadcast(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    if node.op_as::<MultiBroadcastTo>().is_none() {
        return Err(b.unsupported("MultiBroadcastTo", "not a broadcast"));
    }
    let shape = output_shape(node, 0);
    let out = b.temp(shape.clone(), inputs[0].dt)?;
    let buf = b.bind(&mut out.clone())?;
    let in_strides = crate::kernels::broadcast_strides(&inputs[0].shape, &shape);
    let out_strides = strides(&shape);
    let copy = Strided { shape: &shape, in_base: 0, in_strides: &in_strides, out_base: 0, out_strides: &out_strides };
    copy::strided(b, &mut inputs[0], buf, &copy)?;
    Ok(vec![out])
}

pub(super) fn pad(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
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

pub(super) fn gather(b: &mut Builder, node: &TypedNode, mut inputs: Vec<Val>) -> Result<Vec<Val>> {
    let op = node.op_as::<Gather>().ok_or_else(|| b.unsupported("Gather", "not a gather"))?;
    let [data, indices] = &mut inputs[..] else { return Err(b.unsupported("Gather", "expected data and indices")) };
    if op.output_type.is_some() || indices.dt != Dt::I32 {
        return Err(b.unsupported("Gather", format!("{} indices or a converting gather", indices.dt.wgsl())));
    }
    check_axes(b, "Gather", &[op.axis], data.shape.len())?;
    if data.shape[op.axis] > i32::MAX as usize {
        return Err(b.unsupported("Gather", format!("an axis of {} elements", data.shape[op.axis])));
    }
    Ok(vec![gather::emit(b, data, indices, op.axis)?])
}
