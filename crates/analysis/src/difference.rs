//! Whether a metric measured on two independent samples differs: a validation set's accuracy or
//! mean error against what the model scored when its profile was built. (Two models on the *same*
//! rows are compared by an exact paired test instead; see `sextant validate --against`.)

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Two-sided p-value that two proportions, `k1` of `n1` and `k0` of `n0`, are equal: the pooled
/// two-proportion z-test (statsmodels' `proportions_ztest`). 1 when either sample is empty.
pub fn two_proportions_p(k1: u64, n1: u64, k0: u64, n0: u64) -> f64 {
    if n1 == 0 || n0 == 0 {
        return 1.0;
    }
    let (n1f, n0f) = (n1 as f64, n0 as f64);
    let pooled = (k1 + k0) as f64 / (n1f + n0f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n0f)).sqrt();
    let difference = k1 as f64 / n1f - k0 as f64 / n0f;
    if se == 0.0 {
        return if difference == 0.0 { 1.0 } else { 0.0 };
    }
    let Ok(normal) = Normal::new(0.0, 1.0) else { return 1.0 };
    2.0 * normal.sf((difference / se).abs())
}

/// Two-sided p-value that two means are equal, from each sample's mean, standard deviation (with
/// n − 1) and size: Welch's t-test (scipy's `ttest_ind_from_stats(equal_var=False)`). 1 when a
/// sample has fewer than two values.
pub fn welch_p(mean1: f64, sd1: f64, n1: u64, mean0: f64, sd0: f64, n0: u64) -> f64 {
    if n1 < 2 || n0 < 2 {
        return 1.0;
    }
    let (v1, v0) = (sd1 * sd1 / n1 as f64, sd0 * sd0 / n0 as f64);
    let se = (v1 + v0).sqrt();
    if !se.is_finite() || se == 0.0 {
        return if mean1 == mean0 { 1.0 } else { 0.0 };
    }
    let df = (v1 + v0).powi(2) / (v1 * v1 / (n1 - 1) as f64 + v0 * v0 / (n0 - 1) as f64);
    let Ok(t) = StudentsT::new(0.0, 1.0, df) else { return 1.0 };
    2.0 * t.sf(((mean1 - mean0) / se).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_agree_with_statsmodels_and_scipy() {
        // scipy: 2 * norm.sf(1.4213381090374024); ttest_ind_from_stats(10, 2, 30, 11, 3, 40, equal_var=False)
        assert!((two_proportions_p(50, 100, 60, 100) - 0.155_218_489_684_684_1).abs() < 1e-9);
        assert!((welch_p(10.0, 2.0, 30, 11.0, 3.0, 40) - 0.099_465_411_176_331_02).abs() < 1e-9);
        assert_eq!(two_proportions_p(9, 10, 90, 100), 1.0);
        assert_eq!((two_proportions_p(0, 0, 5, 10), welch_p(1.0, 1.0, 1, 2.0, 1.0, 10)), (1.0, 1.0));
        assert_eq!(two_proportions_p(10, 10, 10, 10), 1.0, "no variance, no difference");
        assert!(two_proportions_p(450, 500, 980, 1000) < 1e-6, "0.90 on 500 rows against a promised 0.98");
    }
}
