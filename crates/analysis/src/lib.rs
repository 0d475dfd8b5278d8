//! Sextant's monitoring statistics, on counts that merge: drift, data integrity and performance.
//!
//! No IO, no clock: the collector (incrementally, as batches arrive), `sextant drift` (offline on
//! two CSV files) and the browser all call the same functions. Everything that accumulates is a sum
//! of counts, so an hour's results merge into a day's without rescanning history.
//!
//! - [`difference`]: whether a metric differs between two independent samples (two proportions,
//!   Welch's t): a validation set against the model's promise.
//! - [`distance`]: PSI, Jensen–Shannon, Hellinger, chi-square, binned KS and Wasserstein on bin
//!   counts against a reference profile; exact KS and Wasserstein on raw samples.
//! - [`drift`]: which statistic decides, with which threshold, for how many rows, and why.
//! - [`histogram`]: reference vs current counts with bin labels, for plotting.
//! - [`integrity`]: missing, renamed and unexpected fields, type mismatches, out-of-range values,
//!   new categories.
//! - [`performance`]: confusion matrices and classification metrics with Wilson intervals;
//!   regression errors.
//! - [`window`]: feature counts summed over a window, mergeable.

pub mod difference;
pub mod distance;
pub mod drift;
pub mod histogram;
pub mod integrity;
pub mod performance;
pub mod window;
