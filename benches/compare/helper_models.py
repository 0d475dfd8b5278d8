#!/usr/bin/env python3
"""Builds, with the onnx helper, the real-model architectures no package ships with weights we may
use, seeded, and writes each as an ONNX backend test case with onnxruntime's outputs.

- `minilm`: a MiniLM-L6-class sentence encoder, node for node what exporting a BERT encoder from
  PyTorch gives (opset 17): token, position and segment embeddings looked up with `Gather` on i64
  ids; LayerNormalization after the embeddings and the decomposed form (ReduceMean, Sub, Pow, Sqrt,
  Div) in the blocks; 12-head self-attention with Reshape/Transpose, a `Where` mask from the
  attention mask; exact GELU through `Erf`. MiniLM-L6's geometry: 6 layers, hidden 384, 12 heads,
  FFN 1536, 30,522 tokens, 2 segments; a sequence of 16 with the last 4 positions padded.
- `yolo`: a YOLOv8n-class detector as its export writes it (opset 17): Conv + SiLU (x·Sigmoid(x))
  blocks, C2f blocks that `Split` and `Concat`, SPPF (three 5×5 max pools), a feature pyramid with
  nearest `Resize` ×2, and the decoding head: per-level `Concat`, `Reshape`, a `Split` into box
  distributions and class scores, the DFL (Softmax over 16 bins, a fixed 1×1 Conv), anchor
  arithmetic and `Sigmoid` scores. Width ×0.25 and depth ×0.33 as YOLOv8n; 1×3×128×128.

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
# IR 9 (onnx 1.14's): what onnxruntime-web 1.30 reads; the onnx wheel would write a newer one.
IR_VERSION = 9


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
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-helper-models", ir_version=IR_VERSION)
    inputs = {
        ids: g.rng.integers(0, vocab, size=(1, seq), dtype=np.int64),
        mask: np.array([[1] * (seq - padded) + [0] * padded], dtype=np.int64),
        segments: np.array([[0] * (seq // 2) + [1] * (seq - seq // 2)], dtype=np.int64),
    }
    return model, inputs


def conv(g, x, c_in, c_out, k=1, s=1):
    """Conv (BatchNorm folded, as the export does) + SiLU."""
    w = g.weight("conv_w", (c_out, c_in, k, k), np.sqrt(2.0 / (c_in * k * k)))
    b = g.weight("conv_b", (c_out,), 0.1)
    y = g.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4)
    return g.op("Mul", [y, g.op("Sigmoid", [y])])


def c2f(g, x, c_in, c_out, n, shortcut):
    hidden = c_out // 2
    y = conv(g, x, c_in, 2 * hidden)
    parts = [g.name("split_a"), g.name("split_b")]
    g.nodes.append(helper.make_node("Split", [y, g.const("halves", np.array([hidden, hidden], dtype=np.int64))],
                                    parts, name=g.name("split"), axis=1))
    outputs = list(parts)
    for _ in range(n):
        z = conv(g, conv(g, outputs[-1], hidden, hidden, 3), hidden, hidden, 3)
        outputs.append(g.op("Add", [outputs[-1], z]) if shortcut else z)
    return conv(g, g.op("Concat", outputs, axis=1), (2 + n) * hidden, c_out)


def sppf(g, x, c_in, c_out):
    y = conv(g, x, c_in, c_in // 2)
    pools = [y]
    for _ in range(3):
        pools.append(g.op("MaxPool", [pools[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2]))
    return conv(g, g.op("Concat", pools, axis=1), 2 * c_in, c_out)


def yolo(seed=1, size=128, classes=80, bins=16):
    g = Graph(seed)
    up = lambda t: g.op("Resize", [t, "", g.const("scales", np.array([1, 1, 2, 2], dtype=np.float32))],
                        mode="nearest")
    x = conv(g, "images", 3, 16, 3, 2)
    x = conv(g, x, 16, 32, 3, 2)
    x = c2f(g, x, 32, 32, 1, True)
    x = conv(g, x, 32, 64, 3, 2)
    p3 = c2f(g, x, 64, 64, 2, True)
    x = conv(g, p3, 64, 128, 3, 2)
    p4 = c2f(g, x, 128, 128, 2, True)
    x = conv(g, p4, 128, 256, 3, 2)
    x = sppf(g, c2f(g, x, 256, 256, 1, True), 256, 256)
    # Top-down, then bottom-up.
    n4 = c2f(g, g.op("Concat", [up(x), p4], axis=1), 384, 128, 1, False)
    n3 = c2f(g, g.op("Concat", [up(n4), p3], axis=1), 192, 64, 1, False)
    m4 = c2f(g, g.op("Concat", [conv(g, n3, 64, 64, 3, 2), n4], axis=1), 192, 128, 1, False)
    m5 = c2f(g, g.op("Concat", [conv(g, m4, 128, 128, 3, 2), x], axis=1), 384, 256, 1, False)
    levels, anchors, strides = [], [], []
    for feature, c_in, stride in [(n3, 64, 8), (m4, 128, 16), (m5, 256, 32)]:
        box = conv(g, conv(g, feature, c_in, 64, 3), 64, 64, 3)
        box = g.op("Conv", [box, g.weight("box_w", (4 * bins, 64, 1, 1), 0.1), g.weight("box_b", (4 * bins,), 0.1)])
        cls = conv(g, conv(g, feature, c_in, 80, 3), 80, 80, 3)
        cls = g.op("Conv", [cls, g.weight("cls_w", (classes, 80, 1, 1), 0.1), g.weight("cls_b", (classes,), 0.1)])
        cells = (size // stride) ** 2
        flat = g.const("level_shape", np.array([1, 4 * bins + classes, cells], dtype=np.int64))
        levels.append(g.op("Reshape", [g.op("Concat", [box, cls], axis=1), flat]))
        side = size // stride
        ys, xs = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5, indexing="ij")
        anchors.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full((1, cells), stride))
    head = g.op("Concat", levels, axis=2)
    total = sum(a.shape[1] for a in anchors)
    parts = [g.name("distributions"), g.name("class_logits")]
    g.nodes.append(helper.make_node("Split", [head, g.const("head_split", np.array([4 * bins, classes], dtype=np.int64))],
                                    parts, name=g.name("split"), axis=1))
    # DFL: a softmax over each side's 16 bins, then their expectation as a fixed 1x1 conv.
    dist = g.op("Reshape", [parts[0], g.const("dfl_shape", np.array([1, 4, bins, total], dtype=np.int64))])
    dist = g.op("Softmax", [g.op("Transpose", [dist], perm=[0, 2, 1, 3])], axis=1)
    expect = g.const("dfl_w", np.arange(bins, dtype=np.float32).reshape(1, bins, 1, 1))
    sides = g.op("Reshape", [g.op("Conv", [dist, expect]), g.const("sides_shape", np.array([1, 4, total], dtype=np.int64))])
    lt, rb = g.name("lt"), g.name("rb")
    g.nodes.append(helper.make_node("Split", [sides, g.const("two_two", np.array([2, 2], dtype=np.int64))],
                                    [lt, rb], name=g.name("split"), axis=1))
    anchor = g.const("anchors", np.concatenate(anchors, axis=1)[None].astype(np.float32))
    top_left, bottom_right = g.op("Sub", [anchor, lt]), g.op("Add", [anchor, rb])
    centre = g.op("Div", [g.op("Add", [top_left, bottom_right]), g.const("two", np.float32(2.0))])
    extent = g.op("Sub", [bottom_right, top_left])
    boxes = g.op("Mul", [g.op("Concat", [centre, extent], axis=1),
                         g.const("strides", np.concatenate(strides, axis=1)[None].astype(np.float32))])
    scores = g.op("Sigmoid", [parts[1]])
    g.nodes.append(helper.make_node("Concat", [boxes, scores], ["output0"], name="output", axis=1))
    graph = helper.make_graph(
        g.nodes, "yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, total])], g.inits,
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-helper-models", ir_version=IR_VERSION)
    return model, {"images": g.rng.uniform(0, 1, size=(1, 3, size, size)).astype(np.float32)}


MODELS = {"minilm": minilm, "yolo": yolo}


def main():
    out_dir = sys.argv[1]
    for name in sys.argv[2:] or list(MODELS):
        model, inputs = MODELS[name]()  # each with its own fixed seed
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
