//! Distances between a reference and a current distribution.
//!
//! Binned statistics take the two count vectors over the same bins (the reference profile's:
//! underflow, quantile bins, overflow for numbers; dictionary entries and "other" for categories).
//! Logarithms: PSI uses the natural log; Jensen–Shannon uses base 2, so the distance lies in [0, 1].
//! Empty bins are smoothed with [`EPSILON`] where a logarithm needs it (PSI), as Evidently does.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Probability given to an empty bin by PSI, so the logarithm stays finite.
pub const EPSILON: f64 = 1e-4;

fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return vec![0.0; counts.len()];
    }
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

/// Population stability index: Σ (q − p)·ln(q / p), empty bins smoothed to [`EPSILON`].
pub fn psi(reference: &[u64], current: &[u64]) -> f64 {
    let (p, q) = (shares(reference), shares(current));
    p.iter()
        .zip(&q)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(EPSILON), q.max(EPSILON));
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Jensen–Shannon distance, base 2 (the square root of the divergence; 0 = same, 1 = disjoint).
/// Equals `scipy.spatial.distance.jensenshannon(p, q, base=2)`.
pub fn js_distance(reference: &[u64], current: &[u64]) -> f64 {
    let (p, q) = (shares(reference), shares(current));
    let kl = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let divergence: f64 = p
        .iter()
        .zip(&q)
        .map(|(&p, &q)| {
            let m = (p + q) / 2.0;
            (kl(p, m) + kl(q, m)) / 2.0
        })
        .sum();
    divergence.max(0.0).sqrt().min(1.0)
}

/// Hellinger distance: √(1 − Σ √(p·q)), in [0, 1].
pub fn hellinger(reference: &[u64], current: &[u64]) -> f64 {
    let (p, q) = (shares(reference), shares(current));
    let affinity: f64 = p.iter().zip(&q).map(|(p, q)| (p * q).sqrt()).sum();
    (1.0 - affinity).max(0.0).sqrt()
}

/// A chi-square homogeneity test of two count vectors (a 2×k contingency table, no continuity
/// correction; bins empty in both are left out).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub dof: u64,
    pub p_value: f64,
}

/// Equals `scipy.stats.chi2_contingency([reference, current], correction=False)`.
pub fn chi_square(reference: &[u64], current: &[u64]) -> ChiSquare {
    let (n_ref, n_cur) = (reference.iter().sum::<u64>() as f64, current.iter().sum::<u64>() as f64);
    let total = n_ref + n_cur;
    let mut statistic = 0.0;
    let mut used = 0u64;
    for (&r, &c) in reference.iter().zip(current) {
        let column = (r + c) as f64;
        if column == 0.0 {
            continue;
        }
        used += 1;
        for (observed, row) in [(r as f64, n_ref), (c as f64, n_cur)] {
            let expected = row * column / total;
            if expected > 0.0 {
                statistic += (observed - expected).powi(2) / expected;
            }
        }
    }
    let dof = used.saturating_sub(1);
    let p_value = if dof == 0 || n_ref == 0.0 || n_cur == 0.0 {
        1.0
    } else {
        ChiSquared::new(dof as f64).map_or(f64::NAN, |d| d.sf(statistic))
    };
    ChiSquare { statistic, dof, p_value }
}

/// The Kolmogorov–Smirnov statistic from binned counts, with its binning error bound.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BinnedKs {
    /// max |F_ref − F_cur| over the bin edges: a lower bound of the statistic on the raw values.
    pub statistic: f64,
    /// The raw-value statistic is at most `statistic + bound`: inside a bin each CDF moves by at most
    /// that bin's share, so `bound` is the largest share either distribution puts in one bin.
    pub bound: f64,
    /// Asymptotic p-value of `statistic` (see [`kolmogorov_sf`]).
    pub p_value: f64,
}

pub fn binned_ks(reference: &[u64], current: &[u64]) -> BinnedKs {
    let (p, q) = (shares(reference), shares(current));
    let (mut fp, mut fq, mut statistic, mut bound) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&p, &q) in p.iter().zip(&q) {
        fp += p;
        fq += q;
        statistic = statistic.max((fp - fq).abs());
        bound = bound.max(p.max(q));
    }
    let (n, m) = (reference.iter().sum::<u64>() as f64, current.iter().sum::<u64>() as f64);
    BinnedKs { statistic, bound, p_value: ks_p_value(statistic, n, m) }
}

/// Wasserstein-1 between binned numbers, divided by the reference standard deviation.
///
/// Each bin's mass sits at its midpoint (underflow at the lowest edge, overflow at the highest), so
/// moves inside one bin are invisible and moves beyond the reference range count only up to its
/// edge (the out-of-range integrity check reports those). `edges` are the profile's bin edges.
pub fn binned_wasserstein(edges: &[f64], reference: &[u64], current: &[u64], reference_std: f64) -> f64 {
    let Some((&first, &last)) = edges.first().zip(edges.last()) else { return 0.0 };
    let points: Vec<f64> = std::iter::once(first)
        .chain(edges.windows(2).map(|w| (w[0] + w[1]) / 2.0))
        .chain(std::iter::once(last))
        .collect();
    if points.len() != reference.len() || points.len() != current.len() {
        return f64::NAN;
    }
    let (p, q) = (shares(reference), shares(current));
    let (mut fp, mut fq, mut distance) = (0.0, 0.0, 0.0);
    for i in 0..points.len() - 1 {
        fp += p[i];
        fq += q[i];
        distance += (fp - fq).abs() * (points[i + 1] - points[i]);
    }
    normalise(distance, reference_std)
}

pub fn normalise(distance: f64, std: f64) -> f64 {
    if std > 0.0 {
        distance / std
    } else if distance == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// The two-sample Kolmogorov–Smirnov test on raw values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Ks {
    pub statistic: f64,
    pub p_value: f64,
}

/// Sorts both samples. The statistic equals `scipy.stats.ks_2samp`'s; the p-value is the
/// Kolmogorov limit distribution at √(nm/(n+m))·D (`scipy.stats.kstwobign.sf`), which scipy refines
/// with a finite-n distribution: they differ by a few percent near p = 0.05 at n ≈ 200.
pub fn ks_2samp(reference: &mut [f64], current: &mut [f64]) -> Ks {
    reference.sort_unstable_by(f64::total_cmp);
    current.sort_unstable_by(f64::total_cmp);
    let statistic = ks_sorted(reference, current);
    Ks { statistic, p_value: ks_p_value(statistic, reference.len() as f64, current.len() as f64) }
}

/// max |F_a − F_b| of two sorted samples.
pub fn ks_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

fn ks_p_value(d: f64, n: f64, m: f64) -> f64 {
    if n == 0.0 || m == 0.0 {
        return 1.0;
    }
    kolmogorov_sf(d * (n * m / (n + m)).sqrt())
}

/// The survival function of the Kolmogorov distribution, P(K > x) (scipy's `kstwobign.sf`).
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        // The theta-function form converges fast for small x: P(K ≤ x) = √(2π)/x Σ e^{−(2k−1)²π²/(8x²)}.
        let c = -std::f64::consts::PI.powi(2) / (8.0 * x * x);
        let cdf: f64 = (1..=20).map(|k| ((2 * k - 1) as f64).powi(2) * c).map(f64::exp).sum::<f64>()
            * (2.0 * std::f64::consts::PI).sqrt()
            / x;
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let sf: f64 = (1..=100)
        .map(|k| {
            let k = k as f64;
            let sign = if k as u64 % 2 == 1 { 1.0 } else { -1.0 };
            sign * (-2.0 * k * k * x * x).exp()
        })
        .sum::<f64>()
        * 2.0;
    sf.clamp(0.0, 1.0)
}

/// Wasserstein-1 between two raw samples (sorted here), divided by `reference_std`. The
/// unnormalised distance equals `scipy.stats.wasserstein_distance(a, b)`.
pub fn wasserstein(reference: &mut [f64], current: &mut [f64], reference_std: f64) -> f64 {
    reference.sort_unstable_by(f64::total_cmp);
    current.sort_unstable_by(f64::total_cmp);
    normalise(wasserstein_sorted(reference, current), reference_std)
}

/// ∫ |F_a − F_b| dx of two sorted samples.
pub fn wasserstein_sorted(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut x = a[0].min(b[0]);
    let mut distance = 0.0;
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&u), Some(&v)) => u.min(v),
            (Some(&u), None) => u,
            (None, Some(&v)) => v,
            (None, None) => break,
        };
        distance += (i as f64 / n - j as f64 / m).abs() * (next - x);
        x = next;
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
    }
    distance
}

/// Standard deviation (population) of raw values, for normalising.
pub fn std_dev(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}
