//! Cases for integer and boolean values (i64 held as i32 on the device, booleans as 0 and 1).

use tract_core::internal::*;
use tract_core::ops::array::TypedConcat;
use tract_core::ops::change_axes::AxisOp;
use tract_core::ops::math;
use tract_core::ops::nn::{Reduce, Reducer};

use super::{Case, Graph, case};

/// Integer and boolean values: i64 held as i32 on the device, booleans as 0 and 1.
pub(crate) fn cases() -> Vec<Case> {
    use tract_core::ops::array::Gather;
    use tract_core::ops::binary::TypedBinOp;
    use tract_core::ops::logic;
    let mut cases = Vec::new();
    for (name, op) in [
        ("Add", math::add as fn() -> TypedBinOp),
        ("Sub", math::sub),
        ("SubF", math::subf),
        ("Mul", math::mul),
        ("Max", math::max),
        ("Min", math::min),
    ] {
        let mut g = Graph::new();
        let (x, y) = (g.input_of::<i64>(&[2, 1, 7]), g.input_of::<i64>(&[1, 5, 1]));
        cases.push(Case { ints: (-50, 50), ..case(format!("{name} i64"), &[name], g.node(name, op(), &[x, y])) });
    }
    // Division truncates toward zero, as tract's does: negative operands, a divisor never zero.
    let mut g = Graph::new();
    let x = g.input_of::<i64>(&[4, 9]);
    let d = g.add_const(tensor2(&[[-3i64]]));
    cases.push(Case { ints: (-20, 20), ..case("Div i64 by -3", &["Div"], g.node("div", math::div(), &[x, d])) });
    let mut g = Graph::new();
    let x = g.input_of::<i32>(&[3, 5]);
    let y = g.add_const(tensor2(&[[1i32, 2, 3, 4, 7]]));
    cases.push(Case { ints: (-40, 40), ..case("Div i32", &["Div"], g.node("div", math::div(), &[x, y])) });
    type Comparison = fn() -> Box<dyn tract_core::ops::binary::BinMiniOp>;
    for (name, op) in [
        ("Eq", logic::comp_eq as Comparison),
        ("NE", logic::comp_ne),
        ("LT", logic::comp_lt),
        ("GT", logic::comp_gt),
        ("LTE", logic::comp_lte),
        ("GTE", logic::comp_gte),
    ] {
        let mut g = Graph::new();
        let (x, y) = (g.input_of::<i64>(&[3, 1]), g.input_of::<i64>(&[1, 6]));
        let model = g.node(name, TypedBinOp(op(), None), &[x, y]);
        cases.push(Case { ints: (0, 4), ..case(format!("{name} i64"), &[name], model) });
        let mut g = Graph::new();
        let x = g.input(&[4, 33]);
        let t = g.scalar(0.5, 2);
        cases.push(case(format!("{name} f32"), &[name], g.node(name, TypedBinOp(op(), None), &[x, t])));
    }
    for (name, op) in [("And", logic::and as fn() -> TypedBinOp), ("Or", logic::or), ("Xor", logic::xor)] {
        let mut g = Graph::new();
        let (x, y) = (g.input_of::<bool>(&[2, 9]), g.input_of::<bool>(&[2, 1]));
        cases.push(case(format!("{name} bool"), &[name], g.node(name, op(), &[x, y])));
    }
    let mut g = Graph::new();
    let x = g.input_of::<bool>(&[17]);
    cases.push(case("Not", &["Not"], g.node("not", logic::not(), &[x])));
    // Where(x > 0, x, mask constant): the attention-mask pattern.
    let mut g = Graph::new();
    let c = g.input_of::<bool>(&[2, 1, 6]);
    let t = g.input(&[2, 3, 6]);
    let f = g.scalar(-1e4, 3);
    cases.push(case("Iff", &["Iff"], g.node("where", logic::Iff, &[c, t, f])));
    let mut g = Graph::new();
    let c = g.input_of::<bool>(&[5]);
    let (t, f) = (g.input_of::<i64>(&[5]), g.input_of::<i64>(&[1]));
    cases.push(case("Iff i64", &["Iff"], g.node("where", logic::Iff, &[c, t, f])));
    for (from, to, range) in [
        (DatumType::I64, DatumType::F32, (0.0, 0.0)),
        (DatumType::Bool, DatumType::F32, (0.0, 0.0)),
        (DatumType::F32, DatumType::I64, (-9.9, 9.9)),
        (DatumType::F32, DatumType::Bool, (-1.0, 1.0)),
        (DatumType::I64, DatumType::Bool, (0.0, 0.0)),
        (DatumType::Bool, DatumType::I64, (0.0, 0.0)),
        (DatumType::I64, DatumType::I32, (0.0, 0.0)),
    ] {
        let mut g = Graph::new();
        let name = format!("x{}", g.model.inputs.len());
        let x = g.model.add_source(name, from.fact([4, 6])).unwrap();
        let model = g.node("cast", tract_core::ops::cast::cast(to), &[x]);
        cases.push(Case { range, ..case(format!("Cast {from:?} to {to:?}"), &["Cast"], model) });
    }
    // Embedding lookups: negative ids count from the end.
    let mut g = Graph::new();
    let table = g.konst(&[10, 3]);
    let ids = g.input_of::<i64>(&[2, 4]);
    cases.push(Case {
        ints: (-10, 10),
        ..case("Gather axis 0", &["Gather"], g.node("embed", Gather::new(0), &[table, ids]))
    });
    let mut g = Graph::new();
    let x = g.input(&[3, 7, 2]);
    let ids = g.add_const(tensor1(&[6i64, 0, -1, 3, 3]));
    cases.push(case("Gather axis 1", &["Gather"], g.node("pick", Gather::new(1), &[x, ids])));
    let mut g = Graph::new();
    let x = g.input_of::<i64>(&[4, 5]);
    let id = g.add_const(tensor0(2i64));
    cases.push(case("Gather a scalar index of i64 data", &["Gather"], g.node("pick", Gather::new(1), &[x, id])));
    for (reducer, name) in [
        (Reducer::ArgMax(false), "Reduce<ArgMax(false)>"),
        (Reducer::ArgMax(true), "Reduce<ArgMax(true)>"),
        (Reducer::ArgMin(false), "Reduce<ArgMin(false)>"),
        (Reducer::ArgMin(true), "Reduce<ArgMin(true)>"),
    ] {
        for axis in [0, 1] {
            // Whole numbers in a small range: ties, which the first/last variants break.
            let mut g = Graph::new();
            let x = g.input(&[5, 9]);
            let rounded = g.model.wire_node("round", math::floor(), &[x]).unwrap()[0];
            let model = g.node("arg", Reduce { axes: tvec![axis], reducer }, &[rounded]);
            cases.push(Case { range: (0.0, 3.0), ..case(format!("{name} axis {axis}"), &[name, "Floor"], model) });
        }
    }
    // Copies of integers and booleans.
    let mut g = Graph::new();
    let x = g.input_of::<i64>(&[2, 3, 4]);
    cases.push(case("MoveAxis i64", &["MoveAxis"], g.node("t", AxisOp::Move(2, 0), &[x])));
    let mut g = Graph::new();
    let (x, y) = (g.input_of::<bool>(&[2, 3]), g.input_of::<bool>(&[2, 5]));
    cases.push(case("Concat bool", &["Concat"], g.node("cat", TypedConcat::new(1), &[x, y])));
    cases
}
