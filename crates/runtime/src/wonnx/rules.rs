//! The GPU allowlist: ops, and the attribute variants of each, that this project's conformance runs
//! prove wonnx computes correctly: the backend cases in `crates/runtime/test_data/conformance` and
//! the fixtures in `test_data/models` (`gpu_ops` covers the ops no backend case reaches), run on
//! every engine by the tests. Anything else is refused before wonnx sees it. Adding an op here
//! needs a passing case there.
//!
//! Known-bad wonnx cases this keeps out: Gemm with transA (transB is rewritten away), 1-D and 3-D
//! convolution and pooling, Pad and Concat (wrong numbers), ConstantOfShape (unsupported), Softmax
//! in browsers (Chromium rejects the shader and the run returns zeros), graphs whose output is an
//! input (zeros), Reshape/Flatten straight from an input or into an output (panics), and buffers over
//! the default WebGPU binding limit (panics).

use std::collections::{HashMap, HashSet};

use tract_onnx::pb;
use tract_onnx::prelude::DatumType;

use super::prepare::Fact;
use crate::backend::Refusal;
use crate::model::node_name;

/// WebGPU's default `maxStorageBufferBindingSize`, which wonnx requests; bigger tensors panic.
const MAX_BUFFER_BYTES: u64 = 128 << 20;

/// Browsers differ from native drivers (Softmax); the web build is stricter.
const WEB: bool = cfg!(target_arch = "wasm32");

pub(crate) fn check(graph: &pb::GraphProto, facts: &HashMap<String, Fact>, opset: i64) -> Result<(), Refusal> {
    let inputs: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    if let Some(output) = graph.output.iter().find(|o| inputs.contains(o.name.as_str())) {
        return Err(Refusal::UnsupportedOp {
            node: output.name.clone(),
            op: "graph output".to_owned(),
            detail: "a graph output that is also a graph input comes back as zeros from wonnx".to_owned(),
        });
    }
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    for (name, fact) in facts {
        let bytes = fact.shape.iter().map(|&d| d as u64).product::<u64>() * fact.datum_type.size_of() as u64;
        if bytes > MAX_BUFFER_BYTES {
            return Err(Refusal::TooLarge { tensor: name.clone(), bytes, limit: MAX_BUFFER_BYTES });
        }
    }
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    for (ix, node) in graph.node.iter().enumerate() {
        let node_check =
            NodeCheck { node, facts, initializers: &initializers, inputs: &inputs, outputs: &outputs, opset };
        node_check.run().map_err(|detail| Refusal::UnsupportedOp {
            node: node_name(node, ix),
            op: node.op_type.clone(),
            detail,
        })?;
    }
    Ok(())
}

struct NodeCheck<'a> {
    node: &'a pb::NodeProto,
    facts: &'a HashMap<String, Fact>,
    initializers: &'a HashSet<&'a str>,
    inputs: &'a HashSet<&'a str>,
    outputs: &'a HashSet<&'a str>,
    opset: i64,
}

type Verdict = Result<(), String>;

impl NodeCheck<'_> {
    fn run(&self) -> Verdict {
        if !self.node.domain.is_empty() && self.node.domain != "ai.onnx" {
            return Err(format!("domain `{}` is not supported on the GPU", self.node.domain));
        }
        for output in &self.node.output {
            if let Some(fact) = self.facts.get(output)
                && fact.datum_type != DatumType::F32
            {
                return Err(format!("output `{output}` is {:?}; only f32 results are proven", fact.datum_type));
            }
        }
        match self.node.op_type.as_str() {
            "Relu" | "Sigmoid" | "Tanh" | "Abs" | "Neg" | "Exp" | "Floor" | "Ceil" => Ok(()),
            "Add" | "Sub" | "Mul" | "Div" => self.broadcast_into_first(),
            "Conv" => {
                self.rank(0, 4, "only 2-D convolution (NCHW) is proven")?;
                self.int_is("group", 1, 1)?;
                self.ints_all("dilations", 1)?;
                self.no_auto_pad()
            }
            "MaxPool" | "AveragePool" => {
                self.rank(0, 4, "only 2-D pooling (NCHW) is proven")?;
                self.ints_all("dilations", 1)?;
                self.int_is("ceil_mode", 0, 0)?;
                self.int_is("count_include_pad", 0, 0)?;
                self.int_is("storage_order", 0, 0)?;
                self.single_output()?;
                self.no_auto_pad()
            }
            "GlobalAveragePool" => self.rank(0, 4, "only NCHW inputs are proven"),
            "Gemm" => {
                self.int_is("transA", 0, 0)?;
                self.int_is("transB", 0, 0)?;
                self.float_is("alpha", 1.0)?;
                self.float_is("beta", 1.0)?;
                self.rank(0, 2, "A must be a matrix")?;
                self.matrix_dims_share_a_factor()
            }
            "MatMul" => {
                self.rank(0, 2, "only matrix products of 2-D operands are proven")?;
                self.rank(1, 2, "only matrix products of 2-D operands are proven")?;
                self.matrix_dims_share_a_factor()
            }
            "Softmax" if WEB => Err("Chromium rejects wonnx's Softmax shader and the run returns zeros".to_owned()),
            "Softmax" if self.opset > 15 => Err(format!("wonnx implements Softmax up to opset 15, not {}", self.opset)),
            "Softmax" => {
                let rank = self.input_rank(0).ok_or("input rank unknown")?;
                let default = if self.opset >= 13 { -1 } else { 1 };
                let axis = self.int("axis").unwrap_or(default);
                let axis = if axis < 0 { axis + rank as i64 } else { axis };
                if axis != rank as i64 - 1 || (self.opset < 13 && rank != 2) {
                    return Err(format!("only softmax over the last axis is proven (axis {axis}, rank {rank})"));
                }
                Ok(())
            }
            "Reshape" | "Flatten" => {
                self.not_aliasing_graph_values()?;
                self.constant_shape_input()
            }
            op => Err(format!("`{op}` is not on the GPU allowlist of ops this project's conformance runs prove")),
        }
    }

    fn attribute(&self, name: &str) -> Option<&pb::AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.attribute(name).map(|a| a.i)
    }

    fn int_is(&self, name: &str, want: i64, default: i64) -> Verdict {
        let value = self.int(name).unwrap_or(default);
        if value == want { Ok(()) } else { Err(format!("{name}={value} is not proven (only {name}={want})")) }
    }

    fn float_is(&self, name: &str, want: f32) -> Verdict {
        match self.attribute(name).map(|a| a.f) {
            Some(value) if value != want => Err(format!("{name}={value} is not proven (only {name}={want})")),
            _ => Ok(()),
        }
    }

    fn ints_all(&self, name: &str, want: i64) -> Verdict {
        match self.attribute(name) {
            Some(a) if a.ints.iter().any(|&v| v != want) => {
                Err(format!("{name}={:?} is not proven (only all {want})", a.ints))
            }
            _ => Ok(()),
        }
    }

    fn no_auto_pad(&self) -> Verdict {
        match self.attribute("auto_pad").map(|a| String::from_utf8_lossy(&a.s).into_owned()) {
            Some(mode) if mode != "NOTSET" => Err(format!("auto_pad={mode} is not proven (give explicit pads)")),
            _ => Ok(()),
        }
    }

    fn single_output(&self) -> Verdict {
        if self.node.output.iter().filter(|o| !o.is_empty()).count() == 1 {
            Ok(())
        } else {
            Err("only the single-output form is proven".to_owned())
        }
    }

    fn input_shape(&self, ix: usize) -> Option<&[usize]> {
        let name = self.node.input.get(ix)?;
        self.facts.get(name).map(|f| f.shape.as_slice())
    }

    fn input_rank(&self, ix: usize) -> Option<usize> {
        self.input_shape(ix).map(<[usize]>::len)
    }

    fn rank(&self, ix: usize, want: usize, detail: &str) -> Verdict {
        match self.input_rank(ix) {
            Some(rank) if rank == want => Ok(()),
            Some(rank) => Err(format!("{detail} (input {ix} has rank {rank})")),
            None => Err(format!("{detail} (input {ix} has no inferred shape)")),
        }
    }

    /// wonnx tiles matrix products by gcd(M, K, N) and has no kernel for 1 when M > 1.
    fn matrix_dims_share_a_factor(&self) -> Verdict {
        let (Some(&[m, k]), Some(&[_, n])) = (self.input_shape(0), self.input_shape(1)) else {
            return Err("operand shapes were not inferred as matrices".to_owned());
        };
        let gcd = |mut a: usize, mut b: usize| {
            while b != 0 {
                (a, b) = (b, a % b);
            }
            a
        };
        if m > 1 && gcd(gcd(m, k), n) == 1 {
            Err(format!("wonnx needs M, K and N to share a factor when M > 1 (M={m}, K={k}, N={n})"))
        } else {
            Ok(())
        }
    }

    /// The second operand broadcasts (numpy rules) into the first's shape, which is the result's.
    fn broadcast_into_first(&self) -> Verdict {
        let (Some(a), Some(b)) = (self.input_shape(0), self.input_shape(1)) else {
            return Err("operand shapes were not inferred".to_owned());
        };
        let fits = b.len() <= a.len() && b.iter().rev().zip(a.iter().rev()).all(|(&db, &da)| db == da || db == 1);
        if fits {
            Ok(())
        } else {
            Err(format!(
                "broadcasting {a:?} with {b:?} is not proven (only the second operand broadcasting into the first)"
            ))
        }
    }

    /// wonnx implements Reshape and Flatten by aliasing buffers; reading a graph input or writing a
    /// graph output that way panics or returns zeros (conformance: test_operator_flatten, _view).
    fn not_aliasing_graph_values(&self) -> Verdict {
        let reads_input = self.node.input.first().is_some_and(|i| self.inputs.contains(i.as_str()));
        let writes_output = self.node.output.iter().any(|o| self.outputs.contains(o.as_str()));
        if reads_input || writes_output {
            Err("reshaping a graph input or into a graph output is not supported by wonnx (it aliases buffers)"
                .to_owned())
        } else {
            Ok(())
        }
    }

    fn constant_shape_input(&self) -> Verdict {
        if self.node.op_type == "Flatten" {
            return self.int_is("axis", 1, 1);
        }
        match self.node.input.get(1) {
            Some(shape) if self.initializers.contains(shape.as_str()) => Ok(()),
            _ => Err("the target shape must be a constant".to_owned()),
        }
    }
}
