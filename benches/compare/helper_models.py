#!/usr/bin/env python3
"""Builds, with the onnx helper, the real-model architectures no package ships with weights we may
use, seeded, and writes each as an ONNX backend test case with onnxruntime's outputs.

- `minilm`: a MiniLM-L6-class sentence encoder, node for node what exporting a BERT encoder from
  PyTorch gives (opset 17): token, position and segment embeddings looked up with `Gather` on i64
  ids; LayerNormalization after the embeddings and the decomposed form (ReduceMean, Sub, Pow, Sqrt,
  Div) in the blocks; 12-head self-attention with Reshape/Transpose, a `Where` mask from the
  attention mask; exact GELU through `Erf`. MiniLM-L6's geometry: 6 layers, hidden 384, 12 heads,
  FFN 1536, 30,522 tokens, 2 segments; a sequence of 16 with the last 4 positions padded.

usage: helper_models.py OUT_DIR [NAME ...]   (default: every model)
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17)]


class Graph:
    """Nodes and seeded initializers, with fresh names."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, hint, value):
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, hint, shape, scale):
        return self.const(hint, self.rng.normal(0, scale, size=shape).astype(np.float32))

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def layer_norm_decomposed(g, x, hidden):
    """What torch's opset-14 export writes for nn.LayerNorm."""
    mean = g.op("ReduceMean", [x], axes=[-1], keepdims=1)
    centered = g.op("Sub", [x, mean])
    squared = g.op("Pow", [centered, g.const("two", np.float32(2.0))])
    variance = g.op("ReduceMean", [squared], axes=[-1], keepdims=1)
    std = g.op("Sqrt", [g.op("Add", [variance, g.const("eps", np.float32(1e-12))])])
    normed = g.op("Div", [centered, std])
    gamma = g.const("ln_gamma", (1.0 + 0.1 * g.rng.normal(size=hidden)).astype(np.float32))
    beta = g.const("ln_beta", (0.1 * g.rng.normal(size=hidden)).astype(np.float32))
    return g.op("Add", [g.op("Mul", [normed, gamma]), beta])


def linear(g, x, n_in, n_out):
    w = g.weight("w", (n_in, n_out), 1.0 / np.sqrt(n_in))
    b = g.weight("b", (n_out,), 0.02)
    return g.op("Add", [g.op("MatMul", [x, w]), b])


def minilm(seed=0, layers=6, hidden=384, heads=12, ffn=1536, vocab=30522, positions=512, seq=16, padded=4):
    g = Graph(seed)
    head = hidden // heads
    ids, mask, segments = "input_ids", "attention_mask", "token_type_ids"
    # Embeddings: tokens + positions + segments, then LayerNormalization.
    words = g.op("Gather", [g.weight("word_embeddings", (vocab, hidden), 0.5), ids], axis=0)
    position_ids = g.const("position_ids", np.arange(seq, dtype=np.int64)[None, :])
    where = g.op("Gather", [g.weight("position_embeddings", (positions, hidden), 0.5), position_ids], axis=0)
    kinds = g.op("Gather", [g.weight("token_type_embeddings", (2, hidden), 0.5), segments], axis=0)
    summed = g.op("Add", [g.op("Add", [words, where]), kinds])
    gamma = g.const("emb_gamma", np.ones(hidden, dtype=np.float32))
    beta = g.const("emb_beta", np.zeros(hidden, dtype=np.float32))
    x = g.op("LayerNormalization", [summed, gamma, beta], axis=-1, epsilon=1e-12)
    # The mask: 0 where attended, the lowest float where padded, broadcast over heads and queries.
    padding = g.op("Equal", [g.op("Unsqueeze", [mask, g.const("axes", np.array([1, 2], dtype=np.int64))]),
                             g.const("zero", np.int64(0))])
    lowest = g.const("lowest", np.float32(np.finfo(np.float32).min))
    bias = g.op("Where", [padding, lowest, g.const("nothing", np.float32(0.0))])
    split = g.const("heads_shape", np.array([1, seq, heads, head], dtype=np.int64))
    merged = g.const("hidden_shape", np.array([1, seq, hidden], dtype=np.int64))
    scale = g.const("scale", np.float32(np.sqrt(head)))
    for _ in range(layers):
        def heads_of(t, perm):
            return g.op("Transpose", [g.op("Reshape", [t, split])], perm=perm)
        q = heads_of(linear(g, x, hidden, hidden), [0, 2, 1, 3])
        k = heads_of(linear(g, x, hidden, hidden), [0, 2, 3, 1])
        v = heads_of(linear(g, x, hidden, hidden), [0, 2, 1, 3])
        scores = g.op("Add", [g.op("Div", [g.op("MatMul", [q, k]), scale]), bias])
        attention = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        context = g.op("Reshape", [g.op("Transpose", [attention], perm=[0, 2, 1, 3]), merged])
        x = layer_norm_decomposed(g, g.op("Add", [linear(g, context, hidden, hidden), x]), hidden)
        up = linear(g, x, hidden, ffn)
        erf = g.op("Erf", [g.op("Div", [up, g.const("sqrt2", np.float32(np.sqrt(2.0)))])])
        gelu = g.op("Mul", [g.op("Mul", [up, g.op("Add", [erf, g.const("one", np.float32(1.0))])]),
                            g.const("half", np.float32(0.5))])
        x = layer_norm_decomposed(g, g.op("Add", [linear(g, gelu, ffn, hidden), x]), hidden)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    int_input = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, [1, seq])
    graph = helper.make_graph(
        g.nodes, "minilm", [int_input(ids), int_input(mask), int_input(segments)],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, seq, hidden])], g.inits,
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-helper-models")
    inputs = {
        ids: g.rng.integers(0, vocab, size=(1, seq), dtype=np.int64),
        mask: np.array([[1] * (seq - padded) + [0] * padded], dtype=np.int64),
        segments: np.array([[0] * (seq // 2) + [1] * (seq - seq // 2)], dtype=np.int64),
    }
    return model, inputs


MODELS = {"minilm": minilm}


def main():
    out_dir = sys.argv[1]
    for seed, name in enumerate(sys.argv[2:] or list(MODELS)):
        model, inputs = MODELS[name](seed)
        onnx.checker.check_model(model)
        folder = os.path.join(out_dir, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
        onnx.save(model, os.path.join(folder, "model.onnx"))
        session = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
        outputs = session.run(None, inputs)
        data = os.path.join(folder, "test_data_set_0")
        for i, (key, value) in enumerate(inputs.items()):
            onnx.save_tensor(numpy_helper.from_array(value, key), os.path.join(data, f"input_{i}.pb"))
        for i, (info, value) in enumerate(zip(session.get_outputs(), outputs)):
            onnx.save_tensor(numpy_helper.from_array(value, info.name), os.path.join(data, f"output_{i}.pb"))
        print(f"{name}: {len(model.graph.node)} nodes, outputs {[o.shape for o in outputs]}")


if __name__ == "__main__":
    main()
