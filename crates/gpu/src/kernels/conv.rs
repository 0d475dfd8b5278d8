//! Direct convolution and transposed convolution, NCHW input and OIHW kernel, one thread per
//! output element: correct for every stride, dilation, padding and group count (1-D convolutions
//! run as H = 1).

use std::fmt::Write;

use super::{bindings, element_main, groups, literal};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

/// The geometry of a 2-D window over an NCHW input.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// Padding before and after each spatial axis.
    pub pad: [usize; 2],
    pub pad_after: [usize; 2],
    /// Input and output spatial sizes.
    pub input: [usize; 2],
    pub output: [usize; 2],
}

impl Window {
    /// WGSL that loops `ky`, `kx` over the taps of output (`oy`, `ox`) in `direction`, skipping
    /// positions outside the input, with `iy`, `ix` in scope for `body`. Forward:
    /// `i = o · stride + k · dilation - pad`; transposed: `o + pad = i · stride + k · dilation`.
    pub fn each(&self, direction: Direction, body: &str) -> String {
        let axis = |ax: usize, o: &str, k: &str, i: &str| {
            let (s, d, p, n) = (self.strides[ax], self.dilations[ax], self.pad[ax], self.input[ax]);
            match direction {
                Direction::Forward => format!(
                    "let {i} = i32({o} * {s}u + {k} * {d}u) - {p};\n\
                     if ({i} < 0 || {i} >= {n}) {{ continue; }}\n"
                ),
                Direction::Transposed => format!(
                    "let t{i} = i32({o} + {p}u) - i32({k} * {d}u);\n\
                     if (t{i} < 0 || t{i} % {s} != 0) {{ continue; }}\n\
                     let {i} = t{i} / {s};\n\
                     if ({i} >= {n}) {{ continue; }}\n"
                ),
            }
        };
        let [kh, kw] = self.kernel;
        format!(
            "for (var ky = 0u; ky < {kh}u; ky++) {{\n{}for (var kx = 0u; kx < {kw}u; kx++) {{\n{}{body}\n}}\n}}\n",
            axis(0, "oy", "ky", "iy"),
            axis(1, "ox", "kx", "ix"),
        )
    }
}

/// Which way the window runs: a convolution, or its transpose (ONNX's ConvTranspose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Transposed,
}

/// `out[n, co, oy, ox] = bias[co] + Σ x[n, g·cin + ci, iy, ix] · w[co, ci, ky, kx]`, over the
/// window's taps in `direction`.
#[allow(clippy::too_many_arguments)] // the convolution's operands and geometry, each its own
pub(crate) fn emit(
    b: &mut Builder,
    x: &mut Val,
    w: &mut Val,
    bias: &mut Val,
    window: &Window,
    group: usize,
    direction: Direction,
    out_shape: Vec<usize>,
) -> Result<Val> {
    let (n, ci) = (x.shape[0], x.shape[1]);
    let co = w.shape[0];
    let (cipg, copg) = (ci / group, co / group);
    let [oh, ow] = window.output;
    let [ih, iw] = window.input;
    let [kh, kw] = window.kernel;
    let out = b.temp(out_shape, Dt::F32)?;
    let mut bound = vec![b.bind(x)?, b.bind(w)?];
    let bias_expr = match bias.scalar() {
        Some(v) if v.is_finite() => literal(v),
        _ if bias.len() == co => {
            bound.push(b.bind(bias)?);
            "in2[co]".to_owned()
        }
        _ => return Err(b.unsupported("Conv", format!("bias of shape {:?} for {co} output channels", bias.shape))),
    };
    let inputs = bound.len();
    bound.push(b.bind(&mut out.clone())?);
    let total = n * co * oh * ow;
    let mut s = bindings(inputs);
    s.push_str(&element_main(total));
    let _ = writeln!(
        s,
        "let ox = i % {ow}u; let oy = (i / {ow}u) % {oh}u; let co = (i / {}u) % {co}u; let b = i / {}u;\n\
         let g = co / {copg}u;\nvar acc = {bias_expr};\n\
         for (var c = 0u; c < {cipg}u; c++) {{\n\
         let xbase = (b * {ci}u + g * {cipg}u + c) * {};\n\
         let wbase = (co * {cipg}u + c) * {};",
        oh * ow,
        co * oh * ow,
        ih * iw,
        kh * kw
    );
    let tap = format!("acc = fma(in0[xbase + u32(iy) * {iw}u + u32(ix)], in1[wbase + ky * {kw}u + kx], acc);");
    s.push_str(&window.each(direction, &tap));
    s.push_str("}\nout[i] = acc;\n}\n");
    let groups = groups(total as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}
