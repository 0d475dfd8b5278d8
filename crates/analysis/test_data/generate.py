"""Reference values for the analysis crate's statistics, from scipy and scikit-learn.

Run with `python3 generate.py` (needs numpy, scipy, scikit-learn; see requirements.txt); writes
reference.json next to this file. The Rust tests compare against it to 1e-9 relative.
"""
import json
import pathlib

import numpy as np
import scipy
import sklearn
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, kstwobign, wasserstein_distance
from sklearn.metrics import accuracy_score, mean_absolute_error, mean_squared_error, precision_recall_fscore_support, r2_score

rng = np.random.default_rng(20261126)
out = {"versions": {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}}

binned = []
for k in [2, 3, 5, 8, 12]:
    ref = rng.integers(0, 400, size=k)
    cur = rng.integers(0, 400, size=k)
    if k > 3:
        cur[1] = 0  # an empty bin on one side
    p, q = ref / ref.sum(), cur / cur.sum()
    chi = chi2_contingency(np.array([ref, cur]), correction=False)
    binned.append({
        "reference": ref.tolist(),
        "current": cur.tolist(),
        "js_distance_base2": float(jensenshannon(p, q, base=2)),
        "chi2_statistic": float(chi.statistic),
        "chi2_dof": int(chi.dof),
        "chi2_p_value": float(chi.pvalue),
    })
out["binned"] = binned

raw = []
for a, b in [
    (rng.normal(0, 1, 500), rng.normal(0.2, 1.1, 300)),
    (rng.uniform(0, 1, 1000), rng.uniform(0.05, 1.0, 1200)),
    (rng.integers(0, 10, 400).astype(float), rng.integers(0, 11, 450).astype(float)),  # ties
    (rng.normal(5, 2, 2000), rng.normal(5, 2, 2000)),
]:
    ks = ks_2samp(a, b)
    en = len(a) * len(b) / (len(a) + len(b))
    raw.append({
        "reference": a.tolist(),
        "current": b.tolist(),
        "ks_statistic": float(ks.statistic),
        # The Kolmogorov limit distribution (what the Rust side computes), not scipy's finite-n kstwo.
        "ks_p_value": float(kstwobign.sf(np.sqrt(en) * ks.statistic)),
        "wasserstein": float(wasserstein_distance(a, b)),
    })
out["raw"] = raw

labels = ["a", "b", "c"]
truth = rng.choice(labels, 300, p=[0.5, 0.3, 0.2])
pred = np.where(rng.random(300) < 0.7, truth, rng.choice(labels, 300))
p, r, f, s = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
avg = {
    a: dict(zip(["precision", "recall", "f1"], precision_recall_fscore_support(truth, pred, average=a, zero_division=0)[:3]))
    for a in ["macro", "micro", "weighted"]
}
out["classification"] = {
    "truth": truth.tolist(),
    "predicted": pred.tolist(),
    "accuracy": float(accuracy_score(truth, pred)),
    "classes": [
        {"label": l, "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, l in enumerate(labels)
    ],
    "averages": {a: {k: float(v) for k, v in d.items()} for a, d in avg.items()},
}

y = rng.normal(10, 3, 200)
yhat = y + rng.normal(0, 1, 200)
out["regression"] = {
    "truth": y.tolist(),
    "predicted": yhat.tolist(),
    "mae": float(mean_absolute_error(y, yhat)),
    "rmse": float(np.sqrt(mean_squared_error(y, yhat))),
    "r2": float(r2_score(y, yhat)),
}

pathlib.Path(__file__).with_name("reference.json").write_text(json.dumps(out))
print("wrote reference.json")
