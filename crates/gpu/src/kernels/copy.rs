//! Data movement: strided copies (transposes, concatenation, slices, broadcasts) and padding.

use std::fmt::Write;

use super::{coords, element_main, groups, literal, offset, strides, typed_bindings};
use crate::error::Result;
use crate::plan::{BufId, Builder, Val};

/// `out[out_base + c·out_strides] = in[in_base + c·in_strides]` for every `c` over `shape`.
pub(crate) struct Strided<'a> {
    pub shape: &'a [usize],
    pub in_base: usize,
    pub in_strides: &'a [usize],
    pub out_base: usize,
    pub out_strides: &'a [usize],
}

pub(crate) fn strided(b: &mut Builder, x: &mut Val, out: BufId, copy: &Strided<'_>) -> Result<()> {
    let n: usize = copy.shape.iter().product();
    let bound = vec![b.bind(x)?, out];
    let mut s = typed_bindings(&[x.dt], x.dt);
    s.push_str(&element_main(n));
    s.push_str(&coords("i", copy.shape, "c"));
    let _ = writeln!(
        s,
        "out[{}] = in0[{}];\n}}",
        offset(copy.out_base, "c", copy.out_strides),
        offset(copy.in_base, "c", copy.in_strides)
    );
    let groups = groups(n as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(())
}

/// A copy of `x` with its axes in `order` (output axis `d` is input axis `order[d]`).
pub(crate) fn permute(b: &mut Builder, x: &mut Val, order: &[usize]) -> Result<Val> {
    let shape: Vec<usize> = order.iter().map(|&d| x.shape[d]).collect();
    let own = strides(&x.shape);
    let in_strides: Vec<usize> = order.iter().map(|&d| own[d]).collect();
    let out = b.temp(shape.clone(), x.dt)?;
    let buf = b.bind(&mut out.clone())?;
    let out_strides = strides(&shape);
    strided(
        b,
        x,
        buf,
        &Strided { shape: &shape, in_base: 0, in_strides: &in_strides, out_base: 0, out_strides: &out_strides },
    )?;
    Ok(out)
}

/// Integer nearest upsampling: output axis `d` is `scales[d]` times longer, and
/// `out[.., i, ..] = in[.., i / scales[d], ..]`.
pub(crate) fn upsample(b: &mut Builder, x: &mut Val, scales: &[usize]) -> Result<Val> {
    let shape: Vec<usize> = x.shape.iter().zip(scales).map(|(d, s)| d * s).collect();
    remap(b, x, shape, |d| format!("c{d} / {}u", scales[d]))
}

/// Repetition: output axis `d` is `multipliers[d]` copies of the input's, and
/// `out[.., i, ..] = in[.., i % len[d], ..]`.
pub(crate) fn tile(b: &mut Builder, x: &mut Val, multipliers: &[usize]) -> Result<Val> {
    let input = x.shape.clone();
    let shape: Vec<usize> = input.iter().zip(multipliers).map(|(d, m)| d * m).collect();
    remap(b, x, shape, |d| format!("c{d} % {}u", input[d]))
}

/// `out[c] = in[source(c)]` over `shape`, where `source(d)` is the WGSL for the input coordinate on
/// axis `d` from the output coordinates `c0, c1, …`.
fn remap(b: &mut Builder, x: &mut Val, shape: Vec<usize>, source: impl Fn(usize) -> String) -> Result<Val> {
    let own = strides(&x.shape);
    let out = b.temp(shape.clone(), x.dt)?;
    let bound = vec![b.bind(x)?, b.bind(&mut out.clone())?];
    let mut s = typed_bindings(&[x.dt], x.dt);
    s.push_str(&element_main(out.len()));
    s.push_str(&coords("i", &shape, "c"));
    let mut offset = String::from("0u");
    for (d, &stride) in own.iter().enumerate() {
        let _ = write!(offset, " + ({}) * {stride}u", source(d));
    }
    let _ = writeln!(s, "out[i] = in0[{offset}];\n}}");
    let groups = groups(out.len() as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum PadMode {
    Constant(f32),
    Reflect,
    Edge,
}

pub(crate) fn pad(b: &mut Builder, x: &mut Val, pads: &[(usize, usize)], mode: PadMode) -> Result<Val> {
    let shape: Vec<usize> = x.shape.iter().zip(pads).map(|(&d, &(before, after))| d + before + after).collect();
    let out = b.temp(shape.clone(), x.dt)?;
    let bound = vec![b.bind(x)?, b.bind(&mut out.clone())?];
    let own = strides(&x.shape);
    let mut s = typed_bindings(&[x.dt], x.dt);
    s.push_str(&element_main(out.len()));
    s.push_str(&coords("i", &shape, "o"));
    s.push_str("var inside = true;\n");
    for (d, (&dim, &(before, _))) in x.shape.iter().zip(pads).enumerate() {
        let _ = writeln!(s, "var c{d} = i32(o{d}) - {before};");
        match mode {
            PadMode::Constant(_) => {
                let _ = writeln!(s, "if (c{d} < 0 || c{d} >= {dim}) {{ inside = false; c{d} = 0; }}");
            }
            PadMode::Edge => {
                let _ = writeln!(s, "c{d} = clamp(c{d}, 0, {});", dim as i64 - 1);
            }
            PadMode::Reflect => {
                let _ = writeln!(
                    s,
                    "if (c{d} < 0) {{ c{d} = -c{d}; }}\nif (c{d} >= {dim}) {{ c{d} = {} - c{d}; }}",
                    2 * (dim as i64 - 1)
                );
            }
        }
    }
    let index: Vec<String> = own.iter().enumerate().map(|(d, st)| format!("u32(c{d}) * {st}u")).collect();
    let index = if index.is_empty() { "0u".to_owned() } else { index.join(" + ") };
    let fill = match mode {
        PadMode::Constant(v) => literal(v),
        _ => "0.0".into(),
    };
    let _ = writeln!(s, "var v = {fill};\nif (inside) {{ v = in0[{index}]; }}\nout[i] = v;\n}}");
    let groups = groups(out.len() as u64, &b.node)?;
    b.dispatch(s, bound, groups);
    Ok(out)
}
