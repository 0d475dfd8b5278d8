//! Batched matrix products: a tiled GEMM, 64×64 outputs per 16×16 workgroup (4×4 per thread),
//! K in steps of 16 through workgroup memory (8 KiB; WebGPU guarantees 16).

use std::fmt::Write;

use super::{MAX_GROUPS, bindings, broadcast_strides, coords, offset};
use crate::error::Result;
use crate::plan::{Builder, Dt, Val};

const TILE: usize = 64;
const STEP: usize = 16;

/// A matrix operand: which of its last two axes is the row (m or k for `a`, k or n for `b`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub transposed: bool,
}

/// `c[.., m, n] = Σ_k a[.., m, k] · b[.., k, n]`, with either operand (and the result) transposed
/// in its last two axes and the leading axes broadcast.
pub(crate) fn emit(
    b: &mut Builder,
    a: &mut Val,
    bm: &mut Val,
    ta: Layout,
    tb: Layout,
    transpose_c: bool,
) -> Result<Val> {
    let (ra, rb) = (a.shape.len(), bm.shape.len());
    if ra < 2 || rb < 2 || ra != rb {
        return Err(b.unsupported("PrefixMatMul", format!("operands of shapes {:?} and {:?}", a.shape, bm.shape)));
    }
    let r = ra;
    let (m, k) = if ta.transposed { (a.shape[r - 1], a.shape[r - 2]) } else { (a.shape[r - 2], a.shape[r - 1]) };
    let (k2, n) = if tb.transposed { (bm.shape[r - 1], bm.shape[r - 2]) } else { (bm.shape[r - 2], bm.shape[r - 1]) };
    if k != k2 {
        return Err(b.unsupported("PrefixMatMul", format!("inner dims differ: {:?} and {:?}", a.shape, bm.shape)));
    }
    let mut prefix = Vec::with_capacity(r - 2);
    for d in 0..r - 2 {
        let (x, y) = (a.shape[d], bm.shape[d]);
        if x != y && x != 1 && y != 1 {
            return Err(b.unsupported("PrefixMatMul", format!("batch dims differ: {:?} and {:?}", a.shape, bm.shape)));
        }
        prefix.push(x.max(y));
    }
    let batches: usize = prefix.iter().product();
    if batches as u64 > MAX_GROUPS {
        return Err(b.unsupported("PrefixMatMul", format!("{batches} matrices in one product (at most {MAX_GROUPS})")));
    }
    let mut shape = prefix.clone();
    if transpose_c {
        shape.extend([n, m]);
    } else {
        shape.extend([m, n]);
    }
    let out = b.temp(shape, Dt::F32)?;
    let bindings_ = vec![b.bind(a)?, b.bind(bm)?, b.bind(&mut out.clone())?];

    // Element strides of each operand's matrix axes and of its batch axes (broadcast).
    let a_batch = broadcast_strides(&a.shape[..r - 2], &prefix);
    let b_batch = broadcast_strides(&bm.shape[..r - 2], &prefix);
    let a_batch: Vec<usize> = a_batch.iter().map(|s| s * m * k).collect();
    let b_batch: Vec<usize> = b_batch.iter().map(|s| s * k * n).collect();
    let (sam, sak) = if ta.transposed { (1, m) } else { (k, 1) };
    let (sbk, sbn) = if tb.transposed { (1, k) } else { (n, 1) };
    let (scm, scn) = if transpose_c { (1, m) } else { (n, 1) };

    let mut s = bindings(2);
    let _ =
        writeln!(s, "var<workgroup> ta: array<f32, {}>;\nvar<workgroup> tb: array<f32, {}>;", TILE * STEP, TILE * STEP);
    s.push_str(
        "@compute @workgroup_size(16, 16)\n\
         fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, \
         @builtin(local_invocation_index) li: u32) {\n",
    );
    s.push_str(&coords("wg.z", &prefix, "p"));
    let _ = writeln!(s, "let a0 = {};\nlet b0 = {};", offset(0, "p", &a_batch), offset(0, "p", &b_batch));
    let _ = writeln!(s, "let c0 = wg.z * {}u;", m * n);
    let _ = writeln!(s, "let m0 = wg.y * {TILE}u;\nlet n0 = wg.x * {TILE}u;");
    for i in 0..4 {
        for j in 0..4 {
            let _ = writeln!(s, "var acc{i}{j} = 0.0;");
        }
    }
    let _ = writeln!(s, "for (var k0 = 0u; k0 < {k}u; k0 += {STEP}u) {{");
    // Tile loads: 1024 elements per operand, 4 per thread; consecutive threads read consecutive
    // addresses along whichever axis is contiguous in memory.
    for j in 0..4 {
        let _ = writeln!(s, "{{ let e = li + {}u;", j * 256);
        let (mm, kk) = if sak == 1 { ("e / 16u", "e % 16u") } else { ("e % 64u", "e / 64u") };
        let _ = writeln!(
            s,
            "let mm = {mm}; let kk = {kk}; let m = m0 + mm; let k = k0 + kk;\n\
             var v = 0.0; if (m < {m}u && k < {k}u) {{ v = in0[a0 + m * {sam}u + k * {sak}u]; }}\n\
             ta[kk * 64u + mm] = v;"
        );
        let (nn, kk) = if sbn == 1 { ("e % 64u", "e / 64u") } else { ("e / 16u", "e % 16u") };
        let _ = writeln!(
            s,
            "let nn = {nn}; let kb = {kk}; let n = n0 + nn; let kx = k0 + kb;\n\
             var w = 0.0; if (n < {n}u && kx < {k}u) {{ w = in1[b0 + kx * {sbk}u + n * {sbn}u]; }}\n\
             tb[kb * 64u + nn] = w; }}"
        );
    }
    s.push_str("workgroupBarrier();\nfor (var kk = 0u; kk < 16u; kk++) {\n");
    for i in 0..4 {
        let _ = writeln!(s, "let x{i} = ta[kk * 64u + lid.y * 4u + {i}u];");
        let _ = writeln!(s, "let y{i} = tb[kk * 64u + lid.x * 4u + {i}u];");
    }
    for i in 0..4 {
        for j in 0..4 {
            let _ = writeln!(s, "acc{i}{j} = fma(x{i}, y{j}, acc{i}{j});");
        }
    }
    s.push_str("}\nworkgroupBarrier();\n}\n");
    for i in 0..4 {
        for j in 0..4 {
            let _ = writeln!(
                s,
                "{{ let m = m0 + lid.y * 4u + {i}u; let n = n0 + lid.x * 4u + {j}u;\n\
                 if (m < {m}u && n < {n}u) {{ out[c0 + m * {scm}u + n * {scn}u] = acc{i}{j}; }} }}"
            );
        }
    }
    s.push_str("}\n");
    let groups = [n.div_ceil(TILE).max(1) as u32, m.div_ceil(TILE).max(1) as u32, batches.max(1) as u32];
    if u64::from(groups[0]) > MAX_GROUPS || u64::from(groups[1]) > MAX_GROUPS {
        return Err(
            b.unsupported("PrefixMatMul", format!("a {m}×{n} result needs more than {MAX_GROUPS} tiles per axis"))
        );
    }
    b.dispatch(s, bindings_, groups);
    Ok(out)
}
