#!/usr/bin/env python3
"""Regenerates the runtime's test data. Run through `cargo xtask fixtures`.

- models/: small models trained on scikit-learn's bundled data sets, exported to ONNX by hand
  (standard ops only, PyTorch-exporter style), with expected outputs computed by onnxruntime.
- conformance/: cases copied from the ONNX backend test data that ships in the `onnx` wheel
  (`pytorch-converted`, `pytorch-operator`, `simple`), skipping files over 100 kB.

Every case is a folder in ONNX backend test layout: model.onnx and test_data_set_0/{input,output}_N.pb.
Output is deterministic for fixed package versions (seeds are fixed).
"""
import json
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
# Opset 13: a common export opset (and the one wonnx, the GPU engine these fixtures were first
# written for, implemented Softmax at).
OPSET = [helper.make_opsetid("", 13)]
MAX_CASE_BYTES = 100_000


def save_case(name, model, inputs, doc, full_check=True):
    """Checks the model (its stored shapes too, unless they are meant to be stale), runs
    onnxruntime on `inputs` and writes the case folder."""
    onnx.checker.check_model(model, full_check=full_check)
    model.doc_string = doc
    folder = os.path.join(HERE, "models", name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "test_data_set_0"))
    onnx.save(model, os.path.join(folder, "model.onnx"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    outputs = session.run(None, inputs)
    data = os.path.join(folder, "test_data_set_0")
    for i, (key, value) in enumerate(inputs.items()):
        write_pb(os.path.join(data, f"input_{i}.pb"), value, key)
    for i, (info, value) in enumerate(zip(session.get_outputs(), outputs)):
        write_pb(os.path.join(data, f"output_{i}.pb"), value, info.name)
    print(f"models/{name}: {os.path.getsize(os.path.join(folder, 'model.onnx'))} bytes")
    return outputs


def write_pb(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.asarray(array), name).SerializeToString())


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def metadata(model, **props):
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def classifier_tail(nodes, label):
    """logits -> probabilities (Softmax), and a label (ArgMax) as scikit-learn converters emit it."""
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1))
    if label:
        nodes.append(helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0))


def digits_split():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x.astype(np.float32), y, test_size=0.25, random_state=0, stratify=y)


def digits_mlp():
    x_train, x_test, y_train, y_test = digits_split()
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=600, random_state=0).fit(x_train / 16, y_train)
    accuracy = mlp.score(x_test / 16, y_test)
    (w1, w2), (b1, b2) = mlp.coefs_, mlp.intercepts_
    nodes = [
        helper.make_node("Mul", ["pixels", "scale"], ["scaled"], name="scale"),
        # transB=1 is how PyTorch exports Linear layers; the GPU gate rewrites it.
        helper.make_node("Gemm", ["scaled", "w1", "b1"], ["hidden_pre"], name="fc1", transB=1),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu1"),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"], name="fc2", transB=1),
    ]
    classifier_tail(nodes, label=False)
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 64])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
        ],
        [
            init("scale", np.float32(1 / 16)),
            init("w1", w1.T.astype(np.float32)),
            init("b1", b1.astype(np.float32)),
            init("w2", w2.T.astype(np.float32)),
            init("b2", b2.astype(np.float32)),
        ],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-fixtures")
    metadata(model, name="digits-mlp", version="1", test_accuracy=f"{accuracy:.4f}")
    outputs = save_case("digits_mlp", model, {"pixels": x_test[:16]}, "MLP on scikit-learn digits (8x8)")
    assert (outputs[0].argmax(axis=1) == y_test[:16]).mean() > 0.8


def digits_cnn_features(images, filters, bias):
    """Conv 3x3 pad 1 -> ReLU -> MaxPool 2x2, as the ONNX graph computes it."""
    n = images.shape[0]
    padded = np.pad(images[:, 0] / 16, ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((n, filters.shape[0], 8, 8), dtype=np.float64)
    for k in range(filters.shape[0]):
        for dy in range(3):
            for dx in range(3):
                conv[:, k] += filters[k, 0, dy, dx] * padded[:, dy : dy + 8, dx : dx + 8]
        conv[:, k] += bias[k]
    relu = np.maximum(conv, 0)
    pooled = relu.reshape(n, filters.shape[0], 4, 2, 4, 2).max(axis=(3, 5))
    return pooled.reshape(n, -1)


def digits_cnn():
    """A small CNN: fixed random conv filters (a random-feature layer), trained linear head."""
    x_train, x_test, y_train, y_test = digits_split()
    rng = np.random.default_rng(7)
    filters = rng.normal(0, 0.5, size=(8, 1, 3, 3)).astype(np.float32)
    bias = rng.normal(0, 0.1, size=8).astype(np.float32)
    to_images = lambda x: x.reshape(-1, 1, 8, 8)
    head = LogisticRegression(max_iter=3000, C=1.0)
    head.fit(digits_cnn_features(to_images(x_train), filters, bias), y_train)
    accuracy = head.score(digits_cnn_features(to_images(x_test), filters, bias), y_test)
    nodes = [
        helper.make_node("Mul", ["image", "scale"], ["scaled"], name="scale"),
        helper.make_node("Conv", ["scaled", "conv_w", "conv_b"], ["conv"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["conv_relu"], name="relu1"),
        helper.make_node("MaxPool", ["conv_relu"], ["pooled"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pooled"], ["features"], name="flatten", axis=1),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    classifier_tail(nodes, label=False)
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10]),
        ],
        [
            init("scale", np.float32(1 / 16)),
            init("conv_w", filters),
            init("conv_b", bias),
            init("fc_w", head.coef_.astype(np.float32)),
            init("fc_b", head.intercept_.astype(np.float32)),
        ],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-fixtures")
    metadata(model, name="digits-cnn", version="1", test_accuracy=f"{accuracy:.4f}")
    outputs = save_case("digits_cnn", model, {"image": to_images(x_test[:16])}, "CNN on scikit-learn digits (8x8)")
    assert (outputs[0].argmax(axis=1) == y_test[:16]).mean() > 0.8


def wine_tabular():
    """Standardised multinomial logistic regression on the wine data (13 numeric features)."""
    x, y = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    clf = LogisticRegression(max_iter=2000).fit((x_train - mean) / std, y_train)
    accuracy = clf.score((x_test - mean) / std, y_test)
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centered"], name="center"),
        helper.make_node("Div", ["centered", "std"], ["standardized"], name="standardize"),
        helper.make_node("Gemm", ["standardized", "coef", "intercept"], ["logits"], name="linear", transB=1),
    ]
    classifier_tail(nodes, label=True)
    graph = helper.make_graph(
        nodes,
        "wine_tabular",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 13])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        ],
        [
            init("mean", mean.astype(np.float32)),
            init("std", std.astype(np.float32)),
            init("coef", clf.coef_.astype(np.float32)),
            init("intercept", clf.intercept_.astype(np.float32)),
        ],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-fixtures")
    metadata(model, name="wine-tabular", version="1", test_accuracy=f"{accuracy:.4f}")
    save_case("wine_tabular", model, {"features": x_test[:16]}, "logistic regression on scikit-learn wine")


def dtypes():
    """One small op per element type the runtime carries, to check every conversion path."""
    nodes = [
        helper.make_node("Mul", ["f64", "f64"], ["f64_squared"]),
        helper.make_node("Add", ["i64", "i64"], ["i64_doubled"]),
        helper.make_node("Mul", ["i32", "i32"], ["i32_squared"]),
        helper.make_node("Cast", ["u8"], ["u8_as_f32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["i32"], ["i32_as_u8"], to=TensorProto.UINT8),
        helper.make_node("Neg", ["i8"], ["i8_negated"]),
        helper.make_node("Not", ["flags"], ["flags_inverted"]),
    ]
    value = lambda name, kind, shape: helper.make_tensor_value_info(name, kind, shape)
    graph = helper.make_graph(
        nodes,
        "dtypes",
        [
            value("f64", TensorProto.DOUBLE, [2, 3]),
            value("i64", TensorProto.INT64, [2, 3]),
            value("i32", TensorProto.INT32, [4]),
            value("u8", TensorProto.UINT8, [4]),
            value("i8", TensorProto.INT8, [4]),
            value("flags", TensorProto.BOOL, [4]),
        ],
        [
            value("f64_squared", TensorProto.DOUBLE, [2, 3]),
            value("i64_doubled", TensorProto.INT64, [2, 3]),
            value("i32_squared", TensorProto.INT32, [4]),
            value("u8_as_f32", TensorProto.FLOAT, [4]),
            value("i32_as_u8", TensorProto.UINT8, [4]),
            value("i8_negated", TensorProto.INT8, [4]),
            value("flags_inverted", TensorProto.BOOL, [4]),
        ],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-fixtures")
    inputs = {
        "f64": np.array([[1.5, -2.25, 1e100], [0.0, 3.0, -1e-300]]),
        "i64": np.array([[1, -2, 2**40], [0, 7, -(2**40)]], dtype=np.int64),
        "i32": np.array([3, -4, 100, 0], dtype=np.int32),
        "u8": np.array([0, 1, 128, 255], dtype=np.uint8),
        "i8": np.array([-127, -1, 0, 127], dtype=np.int8),
        "flags": np.array([True, False, False, True]),
    }
    save_case("dtypes", model, inputs, "element type coverage")


def gpu_ops():
    """The GPU allowlist's ops that no backend case proves (their cases are refused for other ops)."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"], name="gap"),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "w"], ["matmul"], name="matmul"),
        helper.make_node("Div", ["x", "divisor"], ["divided"], name="div"),
        helper.make_node("Abs", ["x"], ["absolute"], name="abs"),
        helper.make_node("Mul", ["x", "four"], ["x4"], name="times4"),
        helper.make_node("Floor", ["x4"], ["floored"], name="floor"),
        helper.make_node("Ceil", ["x4"], ["ceiled"], name="ceil"),
    ]
    rng = np.random.default_rng(11)
    value = lambda name, shape: helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
    graph = helper.make_graph(
        nodes,
        "gpu_ops",
        [value("x", [2, 4, 4, 4])],
        [value("matmul", [2, 6]), value("divided", [2, 4, 4, 4]), value("absolute", [2, 4, 4, 4]),
         value("floored", [2, 4, 4, 4]), value("ceiled", [2, 4, 4, 4])],
        [
            init("flat_shape", np.array([2, 4], dtype=np.int64)),
            # M, K, N share a factor: wonnx, the first GPU engine, needed it.
            init("w", rng.normal(size=(4, 6)).astype(np.float32)),
            init("divisor", rng.uniform(0.5, 2.0, size=4).astype(np.float32)),
            init("four", np.float32(4)),
        ],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-fixtures")
    x = rng.normal(size=(2, 4, 4, 4)).astype(np.float32)
    save_case("gpu_ops", model, {"x": x}, "ops on the GPU allowlist that no backend case proves")


def embedding():
    """Token ids -> Gather over an embedding table: ids come from outside and may be out of range."""
    rng = np.random.default_rng(5)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["vectors"], name="embed", axis=0)],
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["N", 4, 3])],
        [init("table", rng.normal(size=(10, 3)).astype(np.float32))],
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="sextant-fixtures")
    ids = np.array([[0, 9, -1, 3], [4, -10, 2, 2]], dtype=np.int64)
    save_case("embedding", model, {"ids": ids}, "embedding lookup; negative ids count from the end")


def unet(free, stale):
    """A stride-2 conv, nearest upsampling and a skip connection (a UNet's smallest step): with
    free dims, tract cannot unify `(h+1)/2*2` with `h` symbolically; stale stored shapes (the size
    an exporter traced with) contradict the inputs. onnxruntime runs both."""
    rng = np.random.default_rng(7)
    shape = [-1, 3, None, None] if free else [1, 3, 32, 24]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 160, 160] if stale else [None, 2, None, None])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="down", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("Resize", ["r1", "", "scales"], ["up"], name="up", mode="nearest"),
        helper.make_node("Concat", ["x", "up"], ["cat"], name="skip", axis=1),
        helper.make_node("Conv", ["cat", "w2"], ["y"], name="head"),
    ]
    weights = [
        init("w1", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        init("w2", rng.standard_normal((2, 7, 1, 1)).astype(np.float32)),
        init("scales", np.array([1, 1, 2, 2], np.float32)),
    ]
    graph = helper.make_graph(nodes, "unet", [x], [y], weights)
    if stale:
        graph.value_info.append(helper.make_tensor_value_info("up", TensorProto.FLOAT, [1, 4, 160, 160]))
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    sizes = [(32, 24), (16, 16)] if free else [(32, 24)]
    inputs = [{"x": rng.standard_normal((1, 3, h, w)).astype(np.float32)} for h, w in sizes]
    name = "unet_" + ("free_dims" if free else "stale_shapes")
    doc = "free dims (unnamed, -1) fixed by the run's inputs" if free else "stored shapes that contradict the inputs"
    save_case(name, model, inputs[0], doc, full_check=not stale)
    # More input sizes: one data set each (the same session runs them all).
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for i, feeds in enumerate(inputs[1:], start=1):
        data = os.path.join(HERE, "models", name, f"test_data_set_{i}")
        os.makedirs(data)
        write_pb(os.path.join(data, "input_0.pb"), feeds["x"], "x")
        write_pb(os.path.join(data, "output_0.pb"), session.run(None, feeds)[0], "y")


def wine_dataset():
    """The wine data as CSV, and numpy's quantile edges for it: the reference for profile building."""
    x, y = load_wine(return_X_y=True)
    names = [n.replace("/", "_") for n in load_wine().feature_names]
    folder = os.path.join(HERE, "datasets")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "wine.csv"), "w") as f:
        f.write(",".join(names + ["class"]) + "\n")
        for row, label in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
    edges = {n: sorted(set(np.quantile(x[:, i], np.linspace(0, 1, 11)).tolist())) for i, n in enumerate(names)}
    with open(os.path.join(folder, "wine_profile_edges.json"), "w") as f:
        json.dump({"bins": 10, "rows": len(y), "edges": edges}, f, indent=1)
    print(f"datasets/wine.csv: {len(y)} rows")


def copy_backend_cases():
    source = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    target = os.path.join(HERE, "conformance")
    shutil.rmtree(target, ignore_errors=True)
    copied = 0
    for suite in ["pytorch-converted", "pytorch-operator", "simple"]:
        for case in sorted(os.listdir(os.path.join(source, suite))):
            folder = os.path.join(source, suite, case)
            size = sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(folder) for f in files)
            if size > MAX_CASE_BYTES:
                print(f"skipping {suite}/{case}: {size} bytes", file=sys.stderr)
                continue
            shutil.copytree(folder, os.path.join(target, suite, case))
            copied += 1
    print(f"conformance: {copied} cases from onnx {onnx.__version__}")


if __name__ == "__main__":
    digits_mlp()
    digits_cnn()
    wine_tabular()
    dtypes()
    gpu_ops()
    embedding()
    unet(free=True, stale=False)
    unet(free=False, stale=True)
    wine_dataset()
    copy_backend_cases()
