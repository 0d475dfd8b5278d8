//! CSV data sets as columns of trimmed cells: what `profile build` and `drift` read.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Cells that mean "no value".
pub const MISSING: [&str; 6] = ["", "NA", "NaN", "nan", "null", "None"];

#[derive(Debug)]
pub struct Table {
    pub headers: Vec<String>,
    pub columns: Vec<Vec<String>>,
}

impl Table {
    /// Reads a CSV file with a header row. Ragged rows are errors naming the row; a file with no
    /// data rows is an error.
    pub fn read(path: &Path) -> Result<Table> {
        let mut reader = csv::Reader::from_path(path).with_context(|| format!("while opening {}", path.display()))?;
        let headers: Vec<String> = reader
            .headers()
            .with_context(|| format!("while reading the header row of {}", path.display()))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        let mut columns: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
        for (line, record) in reader.records().enumerate() {
            // The csv crate refuses ragged rows, naming the line and the field counts.
            let record =
                record.with_context(|| format!("while reading data row {} of {}", line + 1, path.display()))?;
            for (column, cell) in columns.iter_mut().zip(record.iter()) {
                column.push(cell.trim().to_owned());
            }
        }
        if columns.first().is_none_or(Vec::is_empty) {
            bail!("{} has a header but no data rows", path.display());
        }
        Ok(Table { headers, columns })
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    pub fn column(&self, name: &str) -> Option<&[String]> {
        self.headers.iter().position(|h| h == name).map(|i| &self.columns[i][..])
    }
}

pub fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell)
}
