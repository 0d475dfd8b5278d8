#!/usr/bin/env python3
"""Times onnxruntime (CPU, 1 intra-op thread) on a backend test case's input, as `sextant bench` does.

usage: ort_bench.py CASE_DIR ITERATIONS WARMUP   -> prints JSON {load_ms, latency_ms: {p50, p90, p99, mean, min}}
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper, TensorProto


def main():
    case, iterations, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    start = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.path.join(case, "model.onnx"), options, providers=["CPUExecutionProvider"])
    load = time.perf_counter() - start
    feeds = {}
    for i, info in enumerate(session.get_inputs()):
        proto = TensorProto()
        with open(os.path.join(case, "test_data_set_0", f"input_{i}.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        feeds[info.name] = numpy_helper.to_array(proto)
    latencies = []
    for i in range(warmup + iterations):
        t = time.perf_counter()
        session.run(None, feeds)
        if i >= warmup:
            latencies.append(time.perf_counter() - t)
    latencies.sort()
    pct = lambda p: latencies[round((len(latencies) - 1) * p)] * 1e3
    print(json.dumps({
        "load_ms": load * 1e3,
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
                       "mean": float(np.mean(latencies)) * 1e3, "min": latencies[0] * 1e3},
        "onnxruntime": ort.__version__,
    }))


if __name__ == "__main__":
    main()
