#!/usr/bin/env python3
"""Pretrained models shipped inside PyPI packages, written as ONNX backend test cases with
onnxruntime's outputs on a seeded input.

Each package is fetched from PyPI by pinned version and checked against its pinned SHA-256 before
anything is read from it; the model file inside is checked too.

usage: pretrained_models.py OUT_DIR
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import onnxruntime as ort
from onnx import numpy_helper

# name: (requirement, wheel file, wheel sha256, model path in the wheel, model sha256, input shape)
MODELS = {
    # PaddleOCR's v4 text detector (a DBNet: convolutions, transposed convolutions, upsampling).
    "ppocr_v4_det": (
        "rapidocr_onnxruntime==1.4.4",
        "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
        "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
        "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
        "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
        [1, 3, 96, 96],
    ),
}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fetch(requirement, wheel, digest, downloads):
    path = os.path.join(downloads, wheel)
    if not os.path.exists(path):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--dest", downloads, requirement],
            check=True,
        )
    with open(path, "rb") as f:
        data = f.read()
    if sha256(data) != digest:
        sys.exit(f"{wheel}: sha256 {sha256(data)}, expected {digest}")
    return path


def main():
    out_dir = sys.argv[1]
    downloads = os.path.join(out_dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    for seed, (name, (requirement, wheel, digest, member, model_digest, shape)) in enumerate(MODELS.items()):
        with zipfile.ZipFile(fetch(requirement, wheel, digest, downloads)) as archive:
            model = archive.read(member)
        if sha256(model) != model_digest:
            sys.exit(f"{name}: {member} has sha256 {sha256(model)}, expected {model_digest}")
        folder = os.path.join(out_dir, name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.join(folder, "test_data_set_0"))
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as f:
            f.write(model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        (info,) = session.get_inputs()
        feed = np.random.default_rng(200 + seed).uniform(0, 1, size=shape).astype(np.float32)
        with open(os.path.join(folder, "test_data_set_0", "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(feed, info.name).SerializeToString())
        outputs = [o.name for o in session.get_outputs()]
        for i, (value, output) in enumerate(zip(session.run(None, {info.name: feed}), outputs)):
            with open(os.path.join(folder, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(value, output).SerializeToString())
        print(f"{name}: {len(model)} bytes from {wheel}")


if __name__ == "__main__":
    main()
