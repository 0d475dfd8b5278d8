//! Every translator against tract's own evaluation of the same node, on odd sizes, broadcasting,
//! strides, dilations, pads and groups. A translator without a passing case fails the suite.

// Tests unwrap: a panic is a failure with a message.
#![allow(clippy::unwrap_used)]

use tract_core::internal::*;
use tract_core::ops::array::{MultiBroadcastTo, Pad, PadMode, Slice, TypedConcat};
use tract_core::ops::change_axes::AxisOp;
use tract_core::ops::cnn::{Conv, Deconv, KernelFormat, MaxPool, PaddingSpec, PoolSpec, SumPool};
use tract_core::ops::einsum::prefix_matmul::PrefixMatMul;
use tract_core::ops::math;
use tract_core::ops::nn::{self, DataFormat, Reduce, Reducer, Softmax, SoftmaxKind};

mod integers;

/// A one-node graph (plus constants) and the ranges its inputs are drawn from.
struct Case {
    name: String,
    /// The translators this case covers.
    ops: Vec<String>,
    model: TypedModel,
    range: (f32, f32),
    /// For integer inputs: `lo..hi`.
    ints: (i64, i64),
}

fn lcg(seed: &mut u64) -> f32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32) / ((1u64 << 24) as f32)
}

fn tensor(shape: &[usize], seed: u64, (lo, hi): (f32, f32)) -> Tensor {
    let mut s = seed;
    let values: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| lo + (hi - lo) * lcg(&mut s)).collect();
    Tensor::from_shape(shape, &values).unwrap()
}

/// An input of any type the engine takes: floats in `range`, integers in `ints`, fair booleans.
fn input_tensor(fact: &TypedFact, seed: u64, case: &Case) -> Tensor {
    let shape = fact.shape.as_concrete().unwrap();
    let mut s = seed;
    let n = shape.iter().product::<usize>();
    let (lo, hi) = case.ints;
    let int = |s: &mut u64| lo + ((hi - lo) as f32 * lcg(s)) as i64;
    match fact.datum_type {
        DatumType::F32 => tensor(shape, seed, case.range),
        DatumType::I64 => Tensor::from_shape(shape, &(0..n).map(|_| int(&mut s)).collect::<Vec<_>>()).unwrap(),
        DatumType::I32 => Tensor::from_shape(shape, &(0..n).map(|_| int(&mut s) as i32).collect::<Vec<_>>()).unwrap(),
        DatumType::Bool => Tensor::from_shape(shape, &(0..n).map(|_| lcg(&mut s) > 0.5).collect::<Vec<_>>()).unwrap(),
        other => panic!("no generator for {other:?}"),
    }
}

struct Graph {
    model: TypedModel,
    seed: u64,
}

impl Graph {
    fn new() -> Graph {
        Graph { model: TypedModel::default(), seed: 1 }
    }
    fn input(&mut self, shape: &[usize]) -> OutletId {
        self.input_of::<f32>(shape)
    }
    fn input_of<T: Datum>(&mut self, shape: &[usize]) -> OutletId {
        let name = format!("x{}", self.model.inputs.len());
        self.model.add_source(name, T::fact(shape)).unwrap()
    }
    fn add_const(&mut self, t: Tensor) -> OutletId {
        self.seed += 1;
        let name = format!("k{}", self.seed);
        self.model.add_const(name, t).unwrap()
    }
    fn konst(&mut self, shape: &[usize]) -> OutletId {
        self.seed += 1;
        let t = tensor(shape, self.seed * 7919, (-1.0, 1.0));
        let name = format!("c{}", self.seed);
        self.model.add_const(name, t).unwrap()
    }
    /// A one-element constant of `rank` (tract broadcasts only between equal ranks).
    fn scalar(&mut self, v: f32, rank: usize) -> OutletId {
        self.seed += 1;
        let name = format!("s{}", self.seed);
        let t = tensor0(v).broadcast_into_rank(rank).unwrap();
        self.model.add_const(name, t).unwrap()
    }
    fn node(mut self, name: &str, op: impl Into<Box<dyn TypedOp>>, inputs: &[OutletId]) -> TypedModel {
        let out = self.model.wire_node(name, op.into(), inputs).unwrap();
        self.model.select_output_outlets(&out).unwrap();
        self.model
    }
}

fn case(name: impl Into<String>, ops: &[&str], model: TypedModel) -> Case {
    Case {
        name: name.into(),
        ops: ops.iter().map(|s| s.to_string()).collect(),
        model,
        range: (-2.0, 2.0),
        ints: (-3, 10),
    }
}

fn unary(name: &str, op: tract_core::ops::element_wise::ElementWiseOp, range: (f32, f32)) -> Case {
    let mut g = Graph::new();
    let x = g.input(&[3, 37, 5]);
    Case { range, ..case(name, &[name], g.node(name, op, &[x])) }
}

fn binary(name: &str, op: fn() -> tract_core::ops::binary::TypedBinOp) -> Vec<Case> {
    let shapes: [(&[usize], &[usize]); 3] = [(&[4, 33], &[4, 33]), (&[2, 1, 7], &[1, 5, 1]), (&[1, 1], &[3, 9])];
    let mut cases: Vec<Case> = shapes
        .iter()
        .map(|(a, b)| {
            let mut g = Graph::new();
            let (x, y) = (g.input(a), g.input(b));
            Case { range: (0.25, 2.0), ..case(format!("{name} {a:?} {b:?}"), &[name], g.node(name, op(), &[x, y])) }
        })
        .collect();
    let mut g = Graph::new();
    let x = g.input(&[6, 5]);
    let s = g.scalar(1.5, 2);
    cases.push(Case {
        range: (-2.0, 2.0),
        ..case(format!("{name} with a scalar"), &[name], g.node(name, op(), &[x, s]))
    });
    cases
}

fn matmul(ta: bool, tb: bool, tc: bool, (m, k, n): (usize, usize, usize), batch: (&[usize], &[usize])) -> Case {
    let mut g = Graph::new();
    let mut a: Vec<usize> = batch.0.to_vec();
    a.extend(if ta { [k, m] } else { [m, k] });
    let mut b: Vec<usize> = batch.1.to_vec();
    b.extend(if tb { [n, k] } else { [k, n] });
    let x = g.input(&a);
    let w = g.konst(&b);
    let op =
        PrefixMatMul { transpose_a: ta, transpose_b: tb, transpose_c: tc, quantize_output: None, operating_dt: None };
    case(format!("matmul {a:?}x{b:?} t={ta},{tb},{tc}"), &["PrefixMatMul"], g.node("mm", op, &[x, w]))
}

fn spec(
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    padding: PaddingSpec,
    ci: usize,
    co: usize,
) -> PoolSpec {
    PoolSpec {
        data_format: DataFormat::NCHW,
        kernel_shape: kernel.into(),
        padding,
        dilations: Some(dilations.into()),
        strides: Some(strides.into()),
        input_channels: ci,
        output_channels: co,
    }
}

#[allow(clippy::too_many_arguments)] // a convolution's knobs, each named by its position at the call
fn conv(
    input: &[usize],
    co: usize,
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    padding: PaddingSpec,
    group: usize,
    bias: bool,
) -> Case {
    let ci = input[1];
    let mut g = Graph::new();
    let x = g.input(input);
    let mut wshape = vec![co, ci / group];
    wshape.extend(kernel);
    let w = g.konst(&wshape);
    let b = if bias { g.konst(&[co]) } else { g.scalar(0.0, 0) };
    let op = Conv {
        pool_spec: spec(kernel, strides, dilations, padding, ci, co),
        kernel_fmt: KernelFormat::OIHW,
        group,
        q_params: None,
    };
    case(
        format!("conv {input:?} k{kernel:?} s{strides:?} d{dilations:?} g{group}"),
        &["Conv"],
        g.node("conv", op, &[x, w, b]),
    )
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        unary("Abs", math::abs(), (-2.0, 2.0)),
        unary("Neg", math::neg(), (-2.0, 2.0)),
        unary("Exp", math::exp(), (-5.0, 5.0)),
        unary("Ln", math::ln(), (0.01, 10.0)),
        unary("Sqrt", math::sqrt(), (0.0, 10.0)),
        unary("Rsqrt", math::rsqrt(), (0.01, 10.0)),
        unary("Recip", math::recip(), (0.1, 10.0)),
        unary("Floor", math::floor(), (-5.0, 5.0)),
        unary("Ceil", math::ceil(), (-5.0, 5.0)),
        unary("RoundHalfToEven", math::round_half_to_even(), (-5.0, 5.0)),
        unary("Sign", math::sign(), (-2.0, 2.0)),
        unary("Square", math::square(), (-3.0, 3.0)),
        unary("Sigmoid", nn::sigmoid(), (-20.0, 20.0)),
        unary("Tanh", math::tanh(), (-60.0, 60.0)),
        unary("Erf", math::erf(), (-4.0, 4.0)),
        unary("HardSwish", nn::hard_swish(), (-5.0, 5.0)),
        unary("Silu", nn::silu::silu(), (-8.0, 8.0)),
        unary("GeluExact", nn::gelu_exact::gelu_exact(), (-5.0, 5.0)),
        unary("GeluApproximate", nn::gelu_approximate::gelu_approximate(false), (-5.0, 5.0)),
        unary("LeakyRelu", nn::leaky_relu(0.1), (-2.0, 2.0)),
        unary("PowConst", math::pow_const(3.0), (-2.0, 2.0)),
    ];
    for (name, op) in [
        ("Add", math::add as fn() -> _),
        ("Sub", math::sub),
        ("SubF", math::subf),
        ("Mul", math::mul),
        ("Div", math::div),
        ("Max", math::max),
        ("Min", math::min),
        ("Pow", math::pow),
    ] {
        cases.extend(binary(name, op));
    }
    // Views and copies.
    let mut g = Graph::new();
    let x = g.input(&[2, 3, 4]);
    cases.push(case(
        "reshape",
        &["Reshape"],
        g.node("r", AxisOp::Reshape(1, tvec![3.to_dim(), 4.to_dim()], tvec![12.to_dim()]), &[x]),
    ));
    let mut g = Graph::new();
    let x = g.input(&[2, 3]);
    cases.push(case("add axis", &["AddAxis"], g.node("a", AxisOp::Add(1), &[x])));
    let mut g = Graph::new();
    let x = g.input(&[2, 1, 3]);
    cases.push(case("rm axis", &["RmAxis"], g.node("r", AxisOp::Rm(1), &[x])));
    let mut g = Graph::new();
    let x = g.input(&[5, 3]);
    cases.push(case("identity", &["Identity"], g.node("i", tract_core::ops::identity::Identity, &[x])));
    let mut g = Graph::new();
    let x = g.input(&[5, 3]);
    cases.push(case("cast", &["Cast"], g.node("c", tract_core::ops::cast::cast(f32::datum_type()), &[x])));
    for (from, to) in [(0, 2), (2, 0), (1, 3), (3, 1)] {
        let mut g = Graph::new();
        let x = g.input(&[2, 3, 5, 7]);
        cases.push(case(format!("move {from}->{to}"), &["MoveAxis"], g.node("m", AxisOp::Move(from, to), &[x])));
    }
    for axis in [0, 1, 2] {
        let mut g = Graph::new();
        let (x, y) = (g.input(&[2, 3, 4]), g.konst(&[2, 3, 4]));
        let model = g.node("c", TypedConcat { axis }, &[x, y, x]);
        cases.push(case(format!("concat axis {axis}"), &["Concat"], model));
    }
    let mut g = Graph::new();
    let x = g.input(&[4, 9, 3]);
    cases.push(case("slice", &["Slice"], g.node("s", Slice::new(1, 2, 7), &[x])));
    let mut g = Graph::new();
    let x = g.input(&[3, 1]);
    cases.push(case(
        "broadcast",
        &["MultiBroadcastTo"],
        g.node("b", MultiBroadcastTo { shape: tvec![2, 3, 5].into() }, &[x]),
    ));
    for mode in [PadMode::Constant(Arc::new(tensor0(0.5f32))), PadMode::Reflect, PadMode::Edge] {
        let mut g = Graph::new();
        let x = g.input(&[2, 3, 4]);
        let label = format!("pad {mode:?}");
        cases.push(case(label, &["Pad"], g.node("p", Pad { pads: vec![(0, 0), (1, 2), (2, 1)], mode }, &[x])));
    }
    // Matrix products: every transposition, sizes off the tile, broadcast batches.
    for ta in [false, true] {
        for tb in [false, true] {
            for tc in [false, true] {
                cases.push(matmul(ta, tb, tc, (67, 33, 70), (&[], &[])));
            }
        }
    }
    cases.push(matmul(false, false, false, (1, 130, 10), (&[3], &[3])));
    cases.push(matmul(false, true, false, (5, 17, 3), (&[2, 1], &[1, 4])));
    cases.push(matmul(true, false, true, (129, 64, 65), (&[2], &[1])));
    // Convolutions.
    let explicit = |b: &[usize], a: &[usize]| PaddingSpec::Explicit(b.into(), a.into());
    cases.push(conv(&[2, 3, 9, 11], 5, &[3, 3], &[1, 1], &[1, 1], explicit(&[1, 1], &[1, 1]), 1, true));
    cases.push(conv(&[1, 4, 10, 9], 6, &[3, 2], &[2, 3], &[1, 1], explicit(&[0, 1], &[2, 0]), 2, false));
    cases.push(conv(&[1, 6, 12, 12], 6, &[3, 3], &[1, 1], &[2, 2], explicit(&[2, 2], &[2, 2]), 6, true));
    cases.push(conv(&[2, 8, 7, 7], 16, &[1, 1], &[1, 1], &[1, 1], PaddingSpec::Valid, 1, true));
    cases.push(conv(&[1, 3, 8, 8], 4, &[3, 3], &[2, 2], &[1, 1], PaddingSpec::SameUpper, 1, true));
    cases.push(conv(&[2, 4, 17], 3, &[5], &[2], &[2], explicit(&[3], &[1]), 1, true));
    for (axis, stride, modulo) in [(1, 2, 0), (2, 3, 1), (0, 1, 1)] {
        let mut g = Graph::new();
        let x = g.input(&[3, 7, 8]);
        let op = tract_core::ops::downsample::Downsample { axis, stride, modulo };
        cases.push(case(
            format!("downsample axis {axis} by {stride} from {modulo}"),
            &["Downsample"],
            g.node("d", op, &[x]),
        ));
    }
    for (shape, size) in [(&[2, 7, 3, 4][..], 5), (&[1, 4, 5, 5], 2), (&[1, 3, 6], 1)] {
        let mut g = Graph::new();
        let x = g.input(shape);
        let op = tract_onnx_opl::lrn::Lrn { alpha: 1e-3, beta: 0.75, bias: 1.5, size };
        cases.push(case(format!("lrn {shape:?} size {size}"), &["Lrn"], g.node("lrn", op, &[x])));
    }
    for scales in [&[1, 1, 2, 2][..], &[1, 3, 1, 2], &[2, 1, 3]] {
        let mut g = Graph::new();
        let x = g.input(&[2, 3, 5, 4][..scales.len()]);
        let op = nn::NearestUpsample { scales: scales.into() };
        cases.push(case(format!("nearest upsample {scales:?}"), &["NearestUpsample"], g.node("up", op, &[x])));
    }
    // Transposed convolutions: the kernel is OIHW as tract reorders ONNX's [Ci, Co/g, ..].
    for (input, co, kernel, strides, dilations, padding, adjustments, group) in [
        (vec![2, 3, 5, 6], 4, vec![3, 3], vec![2, 2], vec![1, 1], explicit(&[1, 1], &[1, 1]), vec![1, 0], 1),
        (vec![1, 4, 4, 5], 6, vec![2, 3], vec![1, 2], vec![2, 1], PaddingSpec::Valid, vec![0, 1], 2),
        (vec![1, 2, 7], 3, vec![4], vec![3], vec![1], explicit(&[2], &[0]), vec![2], 1),
        (vec![1, 2, 4, 4], 2, vec![2, 2], vec![2, 2], vec![1, 1], PaddingSpec::Valid, vec![0, 0], 1),
    ] {
        let ci = input[1];
        let mut g = Graph::new();
        let x = g.input(&input);
        let mut wshape = vec![co, ci / group];
        wshape.extend(&kernel);
        let w = g.konst(&wshape);
        let bias = g.konst(&[co]);
        let op = Deconv {
            pool_spec: spec(&kernel, &strides, &dilations, padding, ci, co),
            kernel_format: KernelFormat::OIHW,
            adjustments: adjustments.into(),
            group,
        };
        cases.push(case(
            format!("deconv {input:?} k{kernel:?} s{strides:?} g{group}"),
            &["Deconv"],
            g.node("d", op, &[x, w, bias]),
        ));
    }
    for multipliers in [&[1, 2, 3][..], &[3, 1, 1], &[2, 2, 2]] {
        let mut g = Graph::new();
        let x = g.input(&[2, 3, 5]);
        let op = tract_core::ops::array::Tile { multipliers: multipliers.iter().map(|&m| m.into()).collect() };
        cases.push(case(format!("tile {multipliers:?}"), &["Tile"], g.node("t", op, &[x])));
    }
    // Batch 1 as tract declutters it: no batch axis (CHW).
    for (op, name) in [
        (
            Box::new(Conv {
                pool_spec: PoolSpec {
                    data_format: DataFormat::CHW,
                    ..spec(&[3, 3], &[2, 2], &[1, 1], explicit(&[1, 1], &[1, 1]), 3, 4)
                },
                kernel_fmt: KernelFormat::OIHW,
                group: 1,
                q_params: None,
            }) as Box<dyn TypedOp>,
            "Conv",
        ),
        (
            Box::new(MaxPool {
                pool_spec: PoolSpec {
                    data_format: DataFormat::CHW,
                    ..spec(&[3, 3], &[2, 2], &[1, 1], PaddingSpec::Valid, 3, 3)
                },
                with_index_outputs: None,
            }),
            "MaxPool",
        ),
    ] {
        let mut g = Graph::new();
        let x = g.input(&[3, 9, 8]);
        let mut wires = vec![x];
        if name == "Conv" {
            wires.push(g.konst(&[4, 3, 3, 3]));
            wires.push(g.konst(&[4]));
        }
        cases.push(case(format!("{name} CHW"), &[name], g.node("chw", op, &wires)));
    }
    // Pooling.
    for (kernel, strides, padding) in [
        (vec![3, 3], vec![2, 2], PaddingSpec::Valid),
        (vec![2, 3], vec![1, 2], PaddingSpec::Explicit(tvec![1, 1], tvec![1, 1])),
        (vec![3], vec![2], PaddingSpec::Explicit(tvec![1], tvec![0])),
    ] {
        let shape: Vec<usize> = if kernel.len() == 2 { vec![2, 3, 9, 10] } else { vec![2, 3, 11] };
        let dil = vec![1; kernel.len()];
        let mut g = Graph::new();
        let x = g.input(&shape);
        let op = MaxPool { pool_spec: spec(&kernel, &strides, &dil, padding.clone(), 3, 3), with_index_outputs: None };
        cases.push(case(format!("max pool {kernel:?} {padding:?}"), &["MaxPool"], g.node("p", op, &[x])));
        for (normalize, count_include_pad) in [(true, false), (true, true), (false, false)] {
            let mut g = Graph::new();
            let x = g.input(&shape);
            let op = SumPool {
                pool_spec: spec(&kernel, &strides, &dil, padding.clone(), 3, 3),
                count_include_pad,
                normalize,
            };
            let label = format!("sum pool {kernel:?} {padding:?} normalize={normalize} pad={count_include_pad}");
            cases.push(case(label, &["SumPool"], g.node("p", op, &[x])));
        }
    }
    // Reductions and softmax.
    for (reducer, name) in [
        (Reducer::Sum, "Reduce<Sum>"),
        (Reducer::Max, "Reduce<Max>"),
        (Reducer::Min, "Reduce<Min>"),
        (Reducer::Prod, "Reduce<Prod>"),
        (Reducer::MeanOfSquares, "Reduce<MeanOfSquares>"),
    ] {
        for axes in [vec![1], vec![0, 2], vec![2, 3]] {
            let mut g = Graph::new();
            let x = g.input(&[3, 5, 4, 7]);
            let range = if reducer == Reducer::Prod { (0.8, 1.2) } else { (-2.0, 2.0) };
            let model = g.node("r", Reduce { axes: axes.clone().into(), reducer }, &[x]);
            cases.push(Case { range, ..case(format!("{name} {axes:?}"), &[name], model) });
        }
    }
    for (kind, name) in [(SoftmaxKind::Softmax, "Softmax"), (SoftmaxKind::LogSoftmax, "LogSoftmax")] {
        for axis in [0, 1, 2] {
            let mut g = Graph::new();
            let x = g.input(&[3, 10, 6]);
            let op = Softmax { axes: tvec![axis], quant_output_dt: None, kind };
            cases.push(Case {
                range: (-30.0, 30.0),
                ..case(format!("{name} axis {axis}"), &[name], g.node("s", op, &[x]))
            });
        }
    }
    for axis in [1, 2] {
        let mut g = Graph::new();
        let x = g.input(&[2, 5, 7]);
        let op = nn::RmsNorm { axis, eps: tensor0(1e-5f32).into_arc_tensor() };
        cases.push(case(format!("RmsNorm axis {axis}"), &["RmsNorm"], g.node("rms", op, &[x])));
    }
    cases.extend(integers::cases());
    cases
}

#[allow(clippy::disallowed_methods)] // tests are not the core: they may read their environment
fn gpu() -> Option<gpu::Gpu> {
    match pollster::block_on(gpu::Gpu::open()) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            assert!(std::env::var_os("SEXTANT_REQUIRE_GPU").is_none(), "SEXTANT_REQUIRE_GPU is set but: {e}");
            eprintln!("\n\n*** SKIPPED: no GPU adapter ({e}); the GPU engine's kernels were not run ***\n\n");
            None
        }
    }
}

#[test]
fn every_translator_has_a_case() {
    let cases = cases();
    let missing: Vec<&str> = gpu::TRANSLATORS
        .iter()
        .map(|t| t.op)
        .filter(|op| !cases.iter().any(|c| c.ops.iter().any(|o| o == op)))
        .collect();
    assert!(missing.is_empty(), "translators without a case: {missing:?}");
}

#[test]
fn every_case_matches_tract() {
    let Some(gpu) = gpu() else { return };
    let mut failures = Vec::new();
    for case in cases() {
        let inputs: Vec<Tensor> = case
            .model
            .input_outlets()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(ix, o)| input_tensor(case.model.outlet_fact(*o).unwrap(), 1000 + ix as u64, &case))
            .collect();
        let plan = case.model.clone().into_runnable().unwrap();
        let expected = plan.run(inputs.iter().cloned().map(|t| t.into_tvalue()).collect()).unwrap();
        let program = match pollster::block_on(gpu::compile(&gpu, &case.model)) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{}: refused: {e}", case.name));
                continue;
            }
        };
        let actual = match pollster::block_on(program.run(&inputs)) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{}: run failed: {e}", case.name));
                continue;
            }
        };
        for (out, (e, a)) in expected.iter().zip(&actual).enumerate() {
            if let Some(failure) = differs(e, a) {
                failures.push(format!("{} output {out}: {failure}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Where `actual` differs from tract's `expected`: floats within 1e-4 (absolute and relative),
/// integers and booleans exactly.
fn differs(expected: &Tensor, actual: &Tensor) -> Option<String> {
    if expected.datum_type() != actual.datum_type() || expected.shape() != actual.shape() {
        let [e, a] = [expected, actual].map(|t| format!("{:?} {:?}", t.datum_type(), t.shape()));
        return Some(format!("expected {e}, got {a}"));
    }
    if expected.datum_type() != DatumType::F32 {
        return (expected != actual).then(|| format!("expected {expected:?}, got {actual:?}"));
    }
    let [e, a] = [expected, actual].map(|t| t.try_as_plain_ram().unwrap().as_slice::<f32>().unwrap().to_vec());
    e.iter()
        .zip(&a)
        .enumerate()
        .find(|(_, (x, y))| !((**x - **y).abs() <= 1e-4 + 1e-4 * x.abs() || x.is_nan() && y.is_nan()))
        .map(|(ix, (x, y))| format!("at {ix} expected {x}, got {y}"))
}

#[test]
fn an_index_out_of_range_fails_the_run_naming_the_node() {
    let Some(gpu) = gpu() else { return };
    let mut g = Graph::new();
    let table = g.konst(&[10, 3]);
    let ids = g.input_of::<i64>(&[4]);
    let model = g.node("embed", tract_core::ops::array::Gather::new(0), &[table, ids]);
    let program = pollster::block_on(gpu::compile(&gpu, &model)).unwrap();
    let run = |ids: &[i64]| pollster::block_on(program.run(&[tensor1(ids)]));
    assert!(run(&[0, 9, -10, -1]).is_ok());
    for wrong in [[0, 10, 1, 2], [-11, 0, 0, 0]] {
        assert_eq!(run(&wrong).unwrap_err(), gpu::Error::Fault { node: "embed".into() }, "{wrong:?}");
    }
    // The fault is cleared between runs.
    assert!(run(&[1, 2, 3, 4]).is_ok());
}

#[test]
fn an_i64_input_outside_i32_is_refused_naming_it() {
    let Some(gpu) = gpu() else { return };
    let mut g = Graph::new();
    let (x, y) = (g.input_of::<i64>(&[2]), g.input_of::<i64>(&[2]));
    let model = g.node("add", math::add(), &[x, y]);
    let program = pollster::block_on(gpu::compile(&gpu, &model)).unwrap();
    let error = pollster::block_on(program.run(&[tensor1(&[1i64, 2]), tensor1(&[3i64, 1 << 33])])).unwrap_err();
    let gpu::Error::Input { index: 1, actual, .. } = &error else { panic!("{error}") };
    assert!(actual.contains("8589934592"), "{error}");
    let error = pollster::block_on(program.run(&[tensor1(&[1.0f32, 2.0]), tensor1(&[3i64, 1])])).unwrap_err();
    assert!(matches!(error, gpu::Error::Input { index: 0, .. }), "{error}");
}

#[test]
fn inputs_follow_the_models_order_unused_ones_included() {
    let Some(gpu) = gpu() else { return };
    // `x2 - x1`: evaluation reaches x2 first; x0 is never reached.
    let mut g = Graph::new();
    let (_, x1, x2) = (g.input(&[3]), g.input(&[3]), g.input(&[3]));
    let model = g.node("sub", math::sub(), &[x2, x1]);
    let program = pollster::block_on(gpu::compile(&gpu, &model)).unwrap();
    let inputs = [tensor1(&[9f32, 9., 9.]), tensor1(&[1f32, 2., 3.]), tensor1(&[10f32, 20., 30.])];
    let outputs = pollster::block_on(program.run(&inputs)).unwrap();
    assert_eq!(outputs, [tensor1(&[9f32, 18., 27.])]);
}

#[test]
fn integers_past_i32_and_division_by_zero_fail_the_run() {
    let Some(gpu) = gpu() else { return };
    let max = i64::from(i32::MAX);
    let min = i64::from(i32::MIN);
    for (name, op, fine, wrong) in [
        ("add", math::add(), [max - 1, 1], [max, 1]),
        ("sub", math::sub(), [min + 1, 1], [min, 1]),
        ("mul", math::mul(), [46_340, 46_340], [65_536, 65_536]),
        ("mul", math::mul(), [min, 1], [min, -1]),
        ("div", math::div(), [min, 1], [min, -1]),
        ("div", math::div(), [7, -2], [7, 0]),
    ] {
        let mut g = Graph::new();
        let (x, y) = (g.input_of::<i64>(&[1]), g.input_of::<i64>(&[1]));
        let model = g.node(name, op, &[x, y]);
        let program = pollster::block_on(gpu::compile(&gpu, &model)).unwrap();
        let run = |[a, b]: [i64; 2]| pollster::block_on(program.run(&[tensor1(&[a]), tensor1(&[b])]));
        let expected =
            model.clone().into_runnable().unwrap().run(tvec![tensor1(&[fine[0]]).into(), tensor1(&[fine[1]]).into()]);
        assert_eq!(run(fine).unwrap(), [expected.unwrap()[0].clone().into_tensor()], "{name} {fine:?}");
        assert_eq!(run(wrong).unwrap_err(), gpu::Error::Fault { node: name.into() }, "{name} {wrong:?}");
    }
    // A float cast to an integer past i32.
    let mut g = Graph::new();
    let x = g.input(&[2]);
    let model = g.node("cast", tract_core::ops::cast::cast(DatumType::I64), &[x]);
    let program = pollster::block_on(gpu::compile(&gpu, &model)).unwrap();
    assert_eq!(
        pollster::block_on(program.run(&[tensor1(&[-2.5f32, 1e9])])).unwrap(),
        [tensor1(&[-2i64, 1_000_000_000])]
    );
    let error = pollster::block_on(program.run(&[tensor1(&[1.0f32, 3e9])])).unwrap_err();
    assert_eq!(error, gpu::Error::Fault { node: "cast".into() });
}
