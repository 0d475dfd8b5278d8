#!/usr/bin/env python3
"""Materialises the `onnx` wheel's light models (squeezenet, shufflenet, resnet50, ...) into real
models and writes each as an ONNX backend test case with onnxruntime's outputs.

The light models ship without weights: every weight is `ConstantOfShape(<name>__SHAPE)`, so their
outputs are constant (softmax 0.001 everywhere) and check nothing. Here each such weight becomes a
seeded random initializer (He-style scale; BatchNorm variances positive) and the final Softmax is
dropped so the output is the logits, where differences between engines show. Activations are kept
O(1) so tolerances mean what they say.

usage: light_models.py OUT_DIR [NAME ...]   (default names: squeezenet shufflenet resnet50)
"""
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def materialise(model, seed):
    rng = np.random.default_rng(seed)
    graph = model.graph
    shapes = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name.endswith("__SHAPE")}
    consumers = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node.op_type, i))
    kept, weights = [], []
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
            shape = tuple(int(d) for d in shapes[node.input[0]])
            uses = consumers.get(node.output[0], [])
            if any(op == "BatchNormalization" and i == 4 for op, i in uses):
                value = rng.uniform(0.5, 1.5, size=shape)  # variance
            elif any(op == "BatchNormalization" and i == 1 for op, i in uses):
                # Small scales keep activations O(1) through residual sums, which otherwise double
                # the variance per block and leave logits of 1e5 where float error is meaningless.
                value = rng.uniform(0.2, 0.5, size=shape)
            else:
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else max(shape[0], 1)
                value = rng.normal(0, np.sqrt(2.0 / fan_in), size=shape)
            weights.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    remaining = [t for t in graph.initializer if not t.name.endswith("__SHAPE")]
    del graph.initializer[:]
    graph.initializer.extend(remaining + weights)
    initialized = {t.name for t in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    data_inputs = [i for i in graph.input if i.name not in initialized and i.name in used]
    del graph.input[:]
    graph.input.extend(data_inputs)
    # IR 4 lets initializers stay out of the graph inputs, so only the data input remains an input.
    model.ir_version = max(model.ir_version, 4)
    # Expose logits: drop a final Softmax.
    last = graph.node[-1]
    if last.op_type == "Softmax" and last.output[0] == graph.output[0].name:
        logits = last.input[0]
        graph.node.remove(last)
        # Softmax keeps the shape: the logits have the probabilities' type.
        graph.output[0].name = logits
    return model


def main():
    out_dir = sys.argv[1]
    names = sys.argv[2:] or ["squeezenet", "shufflenet", "resnet50"]
    source = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    for seed, name in enumerate(names):
        model = onnx.load(os.path.join(source, f"light_{name}.onnx"), load_external_data=False)
        model = materialise(model, seed)
        onnx.checker.check_model(model)
        folder = os.path.join(out_dir, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
        path = os.path.join(folder, "model.onnx")
        onnx.save(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feeds = {}
        for i, info in enumerate(session.get_inputs()):
            shape = [d if isinstance(d, int) else 1 for d in info.shape]
            feeds[info.name] = np.random.default_rng(100 + i).uniform(0, 1, size=shape).astype(np.float32)
            with open(os.path.join(folder, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(feeds[info.name], info.name).SerializeToString())
        outputs = [o.name for o in session.get_outputs()]
        for i, (value, output) in enumerate(zip(session.run(None, feeds), outputs)):
            with open(os.path.join(folder, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(value, output).SerializeToString())
        print(f"{name}: {os.path.getsize(path)} bytes, {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
