//! Max and average pooling over NCHW, one thread per output element.

use std::fmt::Write;

use super::conv::{Direction, Window};
use super::{bindings, element_main, groups};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pooling {
    Max,
    /// A sum, divided by the positions counted (`count_pad`: padded ones too) when `normalize`.
    Sum {
        normalize: bool,
        count_pad: bool,
    },
}

pub(crate) fn emit(
    b: &mut Builder,
    x: &mut Val,
    window: &Window,
    pooling: Pooling,
    out_shape: Vec<usize>,
) -> Result<Val> {
    let [oh, ow] = window.output;
    let [ih, iw] = window.input;
    let planes = x.shape[0] * x.shape[1];
    let out = b.temp(out_shape, Dt::F32)?;
    let bound = vec![b.bind(x)?, b.bind(&mut out.clone())?];
    let total = planes * oh * ow;
    let mut s = bindings(1);
    s.push_str(&element_main(total));
    let _ = writeln!(s, "let ox = i % {ow}u; let oy = (i / {ow}u) % {oh}u; let plane = i / {}u;", oh * ow);
    let _ = writeln!(s, "let base = plane * {}u;", ih * iw);
    let at = format!("in0[base + u32(iy) * {iw}u + u32(ix)]");
    match pooling {
        Pooling::Max => {
            // The first position in the window seeds the maximum: no infinity literal needed.
            s.push_str("var acc = 0.0; var seen = false;\n");
            s.push_str(
                &window.each(
                    Direction::Forward,
                    &format!("let v = {at}; if (!seen || v > acc) {{ acc = v; seen = true; }}"),
                ),
            );
        }
        Pooling::Sum { .. } => {
            s.push_str("var acc = 0.0; var count = 0u;\n");
            s.push_str(&window.each(Direction::Forward, &format!("acc += {at}; count += 1u;")));
        }
    }
    match pooling {
        Pooling::Sum { normalize: true, count_pad: false } => s.push_str("acc = acc / f32(max(count, 1u));\n"),
        Pooling::Sum { normalize: true, count_pad: true } => {
            // Positions of the window inside the padded input (ONNX: not beyond it in ceil mode).
            let [kh, kw] = window.kernel;
            let [sy, sx] = window.strides;
            let [dy, dx] = window.dilations;
            let ([py, px], [ay, ax]) = (window.pad, window.pad_after);
            let (hy, hx) = (ih + py + ay, iw + px + ax);
            let _ = writeln!(
                s,
                "var padded = 0u;\nfor (var ky = 0u; ky < {kh}u; ky++) {{ for (var kx = 0u; kx < {kw}u; kx++) {{\n\
                 if (oy * {sy}u + ky * {dy}u < {hy}u && ox * {sx}u + kx * {dx}u < {hx}u) {{ padded += 1u; }} }} }}\n\
                 acc = acc / f32(max(padded, 1u));"
            );
        }
        _ => {}
    }
    s.push_str("out[i] = acc;\n}\n");
    let groups = groups(total as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}
