"""`sextant drift` against Evidently's DataDriftPreset on the same data, in one run.

Usage: python3 drift_compare.py SEXTANT_BINARY WORKDIR (needs GNU time at /usr/bin/time: Debian `time`)

Makes 100,000 reference and 100,000 current rows (20 numeric and 5 categorical columns, five of
them shifted, seeded), writes them as CSV, then:
- runs `sextant drift REF CUR --json` as a subprocess: wall time of the whole command (CSV parsing
  included), its own analysis time, and its peak RSS;
- runs Evidently in this process on DataFrames loaded beforehand (loading not timed): wall time and
  the growth of this process's peak RSS;
and prints both verdict lists and the ratios.
"""
import json
import pathlib
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SHIFTED = ["num_0", "num_1", "num_2", "cat_0", "cat_1"]


def make(rows, seed, shifted):
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(20):
        z = rng.normal(size=rows)
        if shifted and i == 0:
            z = z + 0.3
        if shifted and i == 1:
            z = z * 1.5
        if shifted and i == 2:
            z = np.where(rng.random(rows) < 0.1, 4.0, z)
        data[f"num_{i}"] = 10 + 2 * z
    categories = np.array(["red", "green", "blue", "grey"])
    for i in range(5):
        weights = [0.1, 0.2, 0.3, 0.4] if (shifted and i == 0) else [0.4, 0.3, 0.2, 0.1]
        values = rng.choice(categories, size=rows, p=weights).astype(object)
        if shifted and i == 1:
            values[rng.random(rows) < 0.2] = "purple"
        data[f"cat_{i}"] = values
    return pd.DataFrame(data)


def peak_mib(who):
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(who).ru_maxrss / 1024


def main():
    sextant, work = sys.argv[1], pathlib.Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    ref_path, cur_path = work / "reference.csv", work / "current.csv"
    make(100_000, 1, False).to_csv(ref_path, index=False, float_format="%.6f")
    make(100_000, 2, True).to_csv(cur_path, index=False, float_format="%.6f")

    # GNU time measures the peak RSS of sextant alone: a child forked from this (large) Python
    # process would count the parent's pages in its own peak.
    rss_file = work / "sextant-rss.txt"
    started = time.perf_counter()
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), sextant, "drift", str(ref_path), str(cur_path), "--json"],
        check=True,
        capture_output=True,
    )
    sextant_wall = time.perf_counter() - started
    sextant_rss = int(rss_file.read_text().split()[-1]) / 1024
    report = json.loads(out.stdout)
    sextant_drifted = sorted(c["name"] for c in report["columns"] if c["drift"])
    sextant_analysis = report["timings"]["analysis_ms"] / 1000

    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_csv(ref_path)
    current = pd.read_csv(cur_path)
    before = peak_mib(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = Report([DataDriftPreset()]).run(current, reference)
    evidently_time = time.perf_counter() - started
    evidently_rss = peak_mib(resource.RUSAGE_SELF) - before
    evidently_drifted = []
    for metric in result.dict()["metrics"]:
        name = metric.get("metric_name", "")
        if name.startswith("ValueDrift(column="):
            column = name[len("ValueDrift(column="):].split(",")[0].rstrip(")")
            value = metric["value"]
            config = metric.get("config", {})
            threshold = config.get("threshold")
            method = config.get("method", "")
            drifted = value < threshold if "p_value" in method or "test" in method.lower() else value >= threshold
            if drifted:
                evidently_drifted.append(column)
    evidently_drifted.sort()

    import evidently

    print(f"drift on 100,000 vs 100,000 rows, 20 numeric + 5 categorical columns, shifted: {SHIFTED}")
    print(f"  sextant drift:        command {sextant_wall:.3f} s (CSV parsing included), analysis {sextant_analysis:.3f} s, peak RSS {sextant_rss:.0f} MiB")
    print(f"  evidently {evidently.__version__}: DataDriftPreset {evidently_time:.3f} s (from DataFrames), peak RSS growth {evidently_rss:.0f} MiB")
    print(f"  ratio, analysis:            {evidently_time / sextant_analysis:.0f}x faster (goal 100x)")
    print(f"  ratio, whole command:       {evidently_time / sextant_wall:.1f}x faster (goal 20x)")
    print(f"  memory:                     {sextant_rss / max(evidently_rss, 1):.2f} of Evidently's (goal < 0.1)")
    print(f"  sextant drifted:   {sextant_drifted}")
    print(f"  evidently drifted: {evidently_drifted}")
    print(f"  expected:          {sorted(SHIFTED)}")


if __name__ == "__main__":
    main()
