//! Element-wise comparison of tensors: how the GPU probe, `sextant check` and conformance judge results.

use crate::Tensor;

/// A value passes when it is within `abs` of the expected value, or within `rel` of its magnitude.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { abs: 1e-4, rel: 1e-4 }
    }
}

/// The result of comparing one tensor with its expected value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub max_abs: f64,
    /// Relative to the expected value; infinite where a zero was expected and something else came.
    pub max_rel: f64,
    /// How many values are outside the tolerance.
    pub mismatched: usize,
    pub total: usize,
    /// A shape or type disagreement, which makes value comparison meaningless.
    pub structural: Option<String>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.structural.is_none() && self.mismatched == 0
    }

    /// A one-line summary, e.g. `3 of 10 values off, max abs error 0.2, max rel error 0.01`.
    pub fn summary(&self) -> String {
        if let Some(problem) = &self.structural {
            return problem.clone();
        }
        let off = if self.mismatched == 0 {
            format!("all {} values within tolerance", self.total)
        } else {
            format!("{} of {} values off", self.mismatched, self.total)
        };
        format!("{off}, max abs error {:.3e}, max rel error {:.3e}", self.max_abs, self.max_rel)
    }
}

/// Compares `actual` with `expected`. NaN equals NaN, infinities equal themselves.
pub fn compare(actual: &Tensor, expected: &Tensor, tolerance: Tolerance) -> Comparison {
    let mut out = Comparison { max_abs: 0.0, max_rel: 0.0, mismatched: 0, total: expected.len(), structural: None };
    if actual.shape() != expected.shape() {
        out.structural = Some(format!("shape {:?}, expected {:?}", actual.shape(), expected.shape()));
        return out;
    }
    if actual.dtype() != expected.dtype() {
        out.structural = Some(format!("dtype {}, expected {}", actual.dtype(), expected.dtype()));
        return out;
    }
    let (actual, expected) = (actual.data().to_f64_vec(), expected.data().to_f64_vec());
    for (&a, &e) in actual.iter().zip(&expected) {
        let same = a == e || (a.is_nan() && e.is_nan());
        let abs = if same { 0.0 } else { (a - e).abs() };
        let abs = if abs.is_nan() { f64::INFINITY } else { abs };
        let rel = if abs == 0.0 { 0.0 } else { abs / e.abs() };
        out.max_abs = out.max_abs.max(abs);
        out.max_rel = out.max_rel.max(rel);
        let within = abs <= tolerance.abs || abs <= tolerance.rel * e.abs();
        if !(same || (a.is_finite() && e.is_finite() && within)) {
            out.mismatched += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(actual: &[f32], expected: &[f32], passed: bool) {
        let a = Tensor::new(&[actual.len()], actual.to_vec()).unwrap();
        let e = Tensor::new(&[expected.len()], expected.to_vec()).unwrap();
        let c = compare(&a, &e, Tolerance::default());
        assert_eq!(c.passed(), passed, "{actual:?} vs {expected:?}: {}", c.summary());
    }

    #[test]
    fn tolerance_is_abs_or_rel() {
        check(&[1.0, 2.0], &[1.0, 2.0], true);
        check(&[1.00005], &[1.0], true);
        check(&[1000.05], &[1000.0], true);
        check(&[1.001], &[1.0], false);
        check(&[0.0], &[0.001], false);
    }

    #[test]
    fn nan_and_infinity() {
        check(&[f32::NAN], &[f32::NAN], true);
        check(&[f32::NAN], &[1.0], false);
        check(&[1.0], &[f32::NAN], false);
        check(&[f32::INFINITY], &[f32::INFINITY], true);
        check(&[f32::NEG_INFINITY], &[f32::INFINITY], false);
    }

    #[test]
    fn structure_is_checked_first() {
        let a = Tensor::new(&[2], vec![1f32, 2.0]).unwrap();
        let e = Tensor::new(&[1, 2], vec![1f32, 2.0]).unwrap();
        assert_eq!(compare(&a, &e, Tolerance::default()).structural.as_deref(), Some("shape [2], expected [1, 2]"));
        let e = Tensor::new(&[2], vec![1f64, 2.0]).unwrap();
        assert_eq!(compare(&a, &e, Tolerance::default()).structural.as_deref(), Some("dtype f32, expected f64"));
    }
}
