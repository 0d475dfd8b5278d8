#!/usr/bin/env python3
"""The `sextant validate` fixtures and the reference values its tests compare against.

- wine_holdout.csv: the wine rows the wine_tabular fixture was NOT trained on (its own split:
  test_size=0.3, random_state=0, stratified), with the `class` column.
- wine_worse.onnx: a deliberately worse challenger: the same graph with only 3 of the 13
  coefficients kept.
- expected.json: scikit-learn's metrics of each model on the holdout (predictions by onnxruntime),
  and the exact McNemar p-value of the pair.
- diabetes.onnx, diabetes_worse.onnx, diabetes_holdout.csv, expected_regression.json: the same for a
  regression: least squares on scikit-learn's diabetes data (a Gemm), a challenger keeping 2 of 10
  coefficients, MAE / RMSE / R² by scikit-learn and the exact sign test on absolute errors.

usage: python3 make.py   (numpy, onnx, onnxruntime, scikit-learn: crates/runtime/test_data/requirements.txt)
"""
import csv
import json
import math
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnx import TensorProto, helper
from sklearn.datasets import load_diabetes, load_wine
from sklearn.linear_model import LinearRegression
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, precision_recall_fscore_support, r2_score
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "../../../crates/runtime/test_data/models/wine_tabular/model.onnx")


def predict(model_bytes, x):
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(["label"], {"features": x})[0]


def metrics(truth, predicted):
    labels = sorted(set(truth) | set(predicted))
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    out = {"accuracy": accuracy_score(truth, predicted), "classes": {}}
    for i, label in enumerate(labels):
        out["classes"][str(label)] = {"precision": p[i], "recall": r[i], "f1": f[i], "support": int(s[i])}
    for average in ["macro", "weighted"]:
        ap, ar, af, _ = precision_recall_fscore_support(truth, predicted, average=average, zero_division=0)
        out[average] = {"precision": ap, "recall": ar, "f1": af}
    return out


def mcnemar_exact(truth, a, b):
    """Two-sided exact McNemar: the discordant pairs against Binomial(n, 1/2)."""
    only_a = int(np.sum((a == truth) & (b != truth)))
    only_b = int(np.sum((a != truth) & (b == truth)))
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"only_champion_right": only_a, "only_challenger_right": only_b, "p_value": p}


def main():
    data = load_wine()
    names = [n.replace("/", "_") for n in data.feature_names]
    x, y = data.data.astype(np.float32), data.target
    _, x_test, _, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    with open(os.path.join(HERE, "wine_holdout.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names + ["class"])
        for row, label in zip(x_test, y_test):
            writer.writerow([repr(float(v)) for v in row] + [int(label)])

    champion = onnx.load(FIXTURE)
    worse = onnx.load(FIXTURE)
    for init in worse.graph.initializer:
        if init.name == "coef":
            coef = numpy_helper.to_array(init).copy()
            coef[:, 3:] = 0.0
            init.CopyFrom(numpy_helper.from_array(coef, "coef"))
    worse.metadata_props.clear()
    entry = worse.metadata_props.add()
    entry.key, entry.value = "version", "worse"
    onnx.checker.check_model(worse, full_check=True)
    onnx.save(worse, os.path.join(HERE, "wine_worse.onnx"))

    a = predict(champion.SerializeToString(), x_test)
    b = predict(worse.SerializeToString(), x_test)
    expected = {
        "rows": len(y_test),
        "champion": metrics(y_test, a),
        "challenger": metrics(y_test, b),
        "mcnemar": mcnemar_exact(y_test, a, b),
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
    print(json.dumps({k: expected[k] for k in ["rows", "mcnemar"]}), expected["champion"]["accuracy"], expected["challenger"]["accuracy"])


def sign_test(truth, a, b):
    """Two-sided exact sign test: rows where each model's absolute error is the smaller (ties left out)."""
    ea, eb = np.abs(a - truth), np.abs(b - truth)
    only_a, only_b = int(np.sum(ea < eb)), int(np.sum(eb < ea))
    n, k = only_a + only_b, min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
    return {"model_closer": only_a, "challenger_closer": only_b, "p_value": p}


def regression_model(coef, intercept, version):
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["features", "coef", "intercept"], ["prediction"], name="linear", transB=1)],
        "diabetes",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N", 1])],
        [
            numpy_helper.from_array(coef.reshape(1, 10).astype(np.float32), "coef"),
            numpy_helper.from_array(np.array([intercept], dtype=np.float32), "intercept"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="sextant-fixtures")
    entry = model.metadata_props.add()
    entry.key, entry.value = "version", version
    onnx.checker.check_model(model, full_check=True)
    return model


def regression():
    data = load_diabetes()
    x, y = data.data.astype(np.float32), data.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    fit = LinearRegression().fit(x_train, y_train)
    worse_coef = fit.coef_.copy()
    keep = [data.feature_names.index("bmi"), data.feature_names.index("s5")]
    worse_coef[[i for i in range(10) if i not in keep]] = 0.0
    models = {"diabetes.onnx": regression_model(fit.coef_, fit.intercept_, "1"),
              "diabetes_worse.onnx": regression_model(worse_coef, fit.intercept_, "worse")}
    predictions = {}
    for name, model in models.items():
        onnx.save(model, os.path.join(HERE, name))
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        predictions[name] = session.run(["prediction"], {"features": x_test})[0][:, 0].astype(np.float64)
    with open(os.path.join(HERE, "diabetes_holdout.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(data.feature_names + ["target"])
        for row, target in zip(x_test, y_test):
            writer.writerow([repr(float(v)) for v in row] + [repr(float(target))])
    metrics = lambda p: {"mae": mean_absolute_error(y_test, p), "rmse": math.sqrt(mean_squared_error(y_test, p)), "r2": r2_score(y_test, p)}
    a, b = predictions["diabetes.onnx"], predictions["diabetes_worse.onnx"]
    expected = {"rows": len(y_test), "model": metrics(a), "challenger": metrics(b), "sign_test": sign_test(y_test, a, b)}
    with open(os.path.join(HERE, "expected_regression.json"), "w") as f:
        json.dump(expected, f, indent=2, sort_keys=True)
    print(expected)


if __name__ == "__main__":
    main()
    regression()
