//! What the demo's traffic is: rows of scikit-learn's wine data (the data the example model was
//! trained on), the requests the edge clients and the page make of them, the ground truth they
//! report later, and what changes when the drift starts. No IO, no clock: the generator and the
//! tests both read the same definitions.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rand::{Rng, RngExt};

use crate::table::Table;

/// The model the edge host serves (through the tabular guest), and the page's deployment of it.
pub const EDGE_MODEL: &str = "wine";
pub const PAGE_MODEL: &str = "wine-web";
/// The version both deployments report (the fixture model has no version metadata).
pub const VERSION: &str = "1";
/// The class column of the data, and the class names the model's output is summarised with.
pub const TARGET: &str = "class";
pub const CLASSES: [&str; 3] = ["0", "1", "2"];

/// The drift at the edge: this feature moves up by `SHIFT` (about two standard deviations).
pub const SHIFTED: &str = "alcohol";
pub const SHIFT: f64 = 1.5;
/// The page's records carry a region the model does not use; drift brings one never seen.
pub const REGION: &str = "region";
pub const REGIONS: [&str; 3] = ["piemonte", "toscana", "veneto"];
pub const NEW_REGION: &str = "sicilia";
/// A new release of the page's app logs this field under another name.
pub const RENAMED: (&str, &str) = ("color_intensity", "colour_intensity");
/// The concept shift: the cultivar labelled `from` is graded `to` from then on (same inputs).
pub const CONCEPT_SHIFT: (&str, &str) = ("1", "2");

/// One labelled row of the data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub values: Vec<f64>,
    pub class: String,
}

/// The data set: feature names in the model's input order, and the rows.
#[derive(Debug)]
pub struct Data {
    pub features: Vec<String>,
    pub rows: Vec<Row>,
    /// Each feature's smallest and largest value: clean traffic stays inside them.
    ranges: Vec<(f64, f64)>,
}

impl Data {
    /// The rows of a table of numeric features and the `class` column (`wine.csv` of the
    /// fixtures); `path` names it in errors.
    pub fn from_table(table: &Table, path: &Path) -> Result<Data> {
        let classes = table.column(TARGET).with_context(|| format!("{} has no `{TARGET}` column", path.display()))?;
        let features: Vec<String> = table.headers.iter().filter(|h| *h != TARGET).cloned().collect();
        let mut rows: Vec<Row> =
            classes.iter().map(|c| Row { values: Vec::new(), class: crate::drift::class_name(c).to_owned() }).collect();
        for (name, cells) in table.headers.iter().zip(&table.columns).filter(|(h, _)| *h != TARGET) {
            for (i, (row, cell)) in rows.iter_mut().zip(cells.iter()).enumerate() {
                let value = cell.parse::<f64>().ok().filter(|v| v.is_finite());
                let Some(value) = value else {
                    bail!("{}: data row {}, column `{name}`: {cell:?} is not a number", path.display(), i + 1)
                };
                row.values.push(value);
            }
        }
        if let Some(row) = rows.iter().find(|r| !CLASSES.contains(&r.class.as_str())) {
            bail!("{}: class {:?} is not one of {CLASSES:?}", path.display(), row.class);
        }
        for feature in [SHIFTED, RENAMED.0] {
            if !features.iter().any(|f| f == feature) {
                bail!("{} has no `{feature}` column, which the drift scenario changes", path.display());
            }
        }
        let ranges = (0..features.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r.values[i])
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
            })
            .collect();
        Ok(Data { features, rows, ranges })
    }

    pub fn sample(&self, rng: &mut impl Rng) -> &Row {
        &self.rows[rng.random_range(0..self.rows.len())]
    }

    fn index(&self, feature: &str) -> Option<usize> {
        self.features.iter().position(|f| f == feature)
    }

    /// What an edge client measures for a row: its values with ±1% noise (kept within the data's
    /// range, as the reference saw it); once drifting, `SHIFTED` is `SHIFT` higher.
    pub fn measure(&self, row: &Row, drifting: bool, rng: &mut impl Rng) -> Vec<f64> {
        let noisy = |(v, (lo, hi)): (&f64, &(f64, f64))| (v * rng.random_range(0.99..1.01)).clamp(*lo, *hi);
        let mut values: Vec<f64> = row.values.iter().zip(&self.ranges).map(noisy).collect();
        if drifting && let Some(i) = self.index(SHIFTED) {
            values[i] += SHIFT;
        }
        values
    }

    /// The edge request body: the measurements by feature name, as the tabular guest reads them.
    pub fn edge_request(&self, values: &[f64]) -> serde_json::Value {
        let record: serde_json::Map<String, serde_json::Value> =
            self.features.iter().zip(values).map(|(name, v)| (name.clone(), serde_json::json!(v))).collect();
        serde_json::Value::Object(record)
    }

    /// The page's application record as it logs it: the measurements (noise only) by name, and
    /// the region. Once drifting, a share of rows comes from a region never seen, and the app's
    /// new release names one field differently (the model input, built by position, is unchanged).
    pub fn page_record(&self, row: &Row, values: &[f64], drifting: bool, rng: &mut impl Rng) -> Vec<(String, Field)> {
        let mut record: Vec<(String, Field)> = self
            .features
            .iter()
            .zip(values)
            .map(|(name, v)| {
                let name = if drifting && name == RENAMED.0 { RENAMED.1 } else { name.as_str() };
                (name.to_owned(), Field::Number(*v))
            })
            .collect();
        let region = if drifting && rng.random_bool(0.4) { NEW_REGION } else { region_of(&row.class, rng) };
        record.push((REGION.to_owned(), Field::Text(region)));
        record
    }
}

/// A field of the page's record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field {
    Number(f64),
    Text(&'static str),
}

impl Field {
    pub fn value(&self) -> telemetry::Value<'_> {
        match *self {
            Field::Number(v) => telemetry::Value::Number(v),
            Field::Text(t) => telemetry::Value::Text(t),
        }
    }
}

/// Where a cultivar's wine mostly comes from: 70% its own region, 15% each of the others.
pub fn region_of(class: &str, rng: &mut impl Rng) -> &'static str {
    let own = CLASSES.iter().position(|c| *c == class).unwrap_or(0);
    let roll: f64 = rng.random();
    let offset = if roll < 0.7 {
        0
    } else if roll < 0.85 {
        1
    } else {
        2
    };
    REGIONS[(own + offset) % REGIONS.len()]
}

/// The ground truth reported for a row: its class, until the concept shift regrades one cultivar.
pub fn truth(class: &str, drifting: bool) -> &str {
    if drifting && class == CONCEPT_SHIFT.0 { CONCEPT_SHIFT.1 } else { class }
}

/// The page's reference data: the data set with a region per row, drawn as live traffic draws it.
pub fn page_reference_csv(data: &Data, rng: &mut impl Rng) -> String {
    let mut csv = data.features.join(",") + &format!(",{REGION},{TARGET}\n");
    for row in &data.rows {
        let values: Vec<String> = row.values.iter().map(f64::to_string).collect();
        csv += &format!("{},{},{}\n", values.join(","), region_of(&row.class, rng), row.class);
    }
    csv
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    fn data() -> Data {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runtime/test_data/datasets/wine.csv");
        Data::from_table(&Table::read(&path).unwrap(), &path).unwrap()
    }

    #[test]
    fn clean_traffic_is_the_data_and_drift_changes_only_what_it_names() {
        let (data, mut rng) = (data(), SmallRng::seed_from_u64(7));
        assert_eq!((data.features.len(), data.rows.len()), (13, 178));
        let row = &data.rows[0];
        let clean = data.measure(row, false, &mut rng);
        assert!(clean.iter().zip(&row.values).all(|(m, v)| (m / v - 1.0).abs() <= 0.01));
        for row in &data.rows {
            let clean = data.measure(row, false, &mut rng);
            assert!(clean.iter().zip(&data.ranges).all(|(v, (lo, hi))| lo <= v && v <= hi), "within the reference");
        }
        let drifted = data.measure(row, true, &mut rng);
        let alcohol = data.index(SHIFTED).unwrap();
        assert!((drifted[alcohol] - row.values[alcohol] - SHIFT).abs() < 0.2);
        assert_eq!(data.edge_request(&clean)[SHIFTED], serde_json::json!(clean[alcohol]));

        let names = |record: &[(String, Field)]| record.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let before = data.page_record(row, &clean, false, &mut rng);
        assert!(names(&before).contains(&RENAMED.0.to_owned()) && names(&before).contains(&REGION.to_owned()));
        let after = data.page_record(row, &clean, true, &mut rng);
        assert!(names(&after).contains(&RENAMED.1.to_owned()) && !names(&after).contains(&RENAMED.0.to_owned()));
        let new = (0..200)
            .filter(|_| data.page_record(row, &clean, true, &mut rng).last().unwrap().1 == Field::Text(NEW_REGION))
            .count();
        assert!((40..=120).contains(&new), "about 40% of drifting rows from the new region: {new}");

        assert_eq!((truth("1", false), truth("1", true), truth("0", true)), ("1", "2", "0"));
        let csv = page_reference_csv(&data, &mut rng);
        assert_eq!(csv.lines().count(), 179);
        assert!(csv.starts_with("alcohol,") && csv.lines().next().unwrap().ends_with(",region,class"));
    }
}
