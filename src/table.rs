//! CSV data sets as columns of trimmed cells: what `profile build` and `drift` read.
//!
//! Each column keeps its cells in one string with end offsets: a 100k-row, 25-column file costs
//! about its own size in memory, not a heap allocation per cell.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Cells that mean "no value".
pub const MISSING: [&str; 6] = ["", "NA", "NaN", "nan", "null", "None"];

#[derive(Debug)]
pub struct Table {
    pub headers: Vec<String>,
    pub columns: Vec<Column>,
}

/// One column's cells, trimmed.
#[derive(Debug, Default)]
pub struct Column {
    text: String,
    ends: Vec<usize>,
}

impl Column {
    fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + Clone {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| &self.text[start..end])
    }
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
        for (i, header) in headers.iter().enumerate() {
            if headers[..i].contains(header) {
                bail!(
                    "{}: column `{header}` appears twice in the header row (columns {} and {})",
                    path.display(),
                    headers[..i].iter().position(|h| h == header).map_or(0, |p| p + 1),
                    i + 1
                );
            }
        }
        let mut columns: Vec<Column> = headers.iter().map(|_| Column::default()).collect();
        let mut record = csv::StringRecord::new();
        let mut line = 0;
        // The csv crate refuses ragged rows, naming the line and the field counts.
        while reader
            .read_record(&mut record)
            .with_context(|| format!("while reading data row {} of {}", line + 1, path.display()))?
        {
            line += 1;
            for (column, cell) in columns.iter_mut().zip(record.iter()) {
                column.push(cell.trim());
            }
        }
        if columns.first().is_none_or(|c| c.len() == 0) {
            bail!("{} has a header but no data rows", path.display());
        }
        Ok(Table { headers, columns })
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.headers.iter().position(|h| h == name).map(|i| &self.columns[i])
    }
}

pub fn is_missing(cell: &str) -> bool {
    MISSING.contains(&cell)
}
