//! Tumbling windows: a width ("5m", "1h", "1d") and the half-open span of event time it cuts.
//!
//! Windows are aligned to the Unix epoch, so every collector process (and every reader) cuts the
//! same windows, and a day is exactly the merge of its 24 hours.

use serde::{Deserialize, Serialize};

/// A window width, written as a whole number and a unit: `30s`, `5m`, `1h`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Width {
    ms: i64,
}

impl Width {
    pub const MINUTE: Width = Width { ms: 60_000 };
    pub const HOUR: Width = Width { ms: 3_600_000 };

    pub fn ms(self) -> i64 {
        self.ms
    }

    pub fn parse(text: &str) -> Result<Width, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit_ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("window {text:?}: expected a number and a unit s, m, h or d, e.g. \"5m\"")),
        };
        let n: i64 = number.parse().map_err(|_| format!("window {text:?}: expected a whole number before {unit:?}"))?;
        match n.checked_mul(unit_ms) {
            Some(ms) if ms > 0 && ms <= 366 * 86_400_000 => Ok(Width { ms }),
            _ => Err(format!("window {text:?}: expected between 1s and 366d")),
        }
    }

    /// This width, if it is whole minutes (windows are read from per-minute rollups).
    pub fn whole_minutes(self) -> Result<Width, String> {
        if self.ms % Self::MINUTE.ms == 0 {
            Ok(self)
        } else {
            Err(format!("window {self}: windows are whole minutes, e.g. \"1m\" or \"5m\""))
        }
    }

    /// The window of this width that holds `at_ms` (clamped to years 0 to 9999, where every span
    /// and its predecessors are representable).
    pub fn containing(self, at_ms: i64) -> Span {
        let at_ms = at_ms.clamp(-MAX_TIME_MS, MAX_TIME_MS);
        let start_ms = at_ms.div_euclid(self.ms) * self.ms;
        Span { start_ms, end_ms: start_ms + self.ms }
    }
}

impl TryFrom<String> for Width {
    type Error = String;
    fn try_from(text: String) -> Result<Width, String> {
        Width::parse(&text)
    }
}

impl From<Width> for String {
    fn from(width: Width) -> String {
        width.to_string()
    }
}

impl std::fmt::Display for Width {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
        match units.iter().find(|(unit, _)| self.ms % unit == 0) {
            Some((unit, name)) => write!(f, "{}{name}", self.ms / unit),
            None => write!(f, "{}ms", self.ms),
        }
    }
}

/// Times beyond ±this (about year 9999) are clamped: far from any overflow.
pub(crate) const MAX_TIME_MS: i64 = 253_402_300_800_000;

/// `[start_ms, end_ms)` in event time (milliseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Span {
    /// The window just before this one, of the same width.
    pub fn previous(self) -> Span {
        let width = self.end_ms - self.start_ms;
        Span { start_ms: self.start_ms.saturating_sub(width), end_ms: self.start_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_parse_print_and_cut_aligned_windows() {
        assert_eq!(Width::parse("5m").unwrap().ms(), 300_000);
        assert_eq!(Width::parse("1d").unwrap().to_string(), "1d");
        assert_eq!(Width::parse("90s").unwrap().to_string(), "90s");
        assert!(Width::parse("90s").unwrap().whole_minutes().unwrap_err().contains("whole minutes"));
        assert_eq!(Width::parse("120s").unwrap().whole_minutes().unwrap().to_string(), "2m");
        for bad in ["", "5", "m", "5w", "0h", "-1h", "99999999999d"] {
            let e = Width::parse(bad).unwrap_err();
            assert!(e.contains("window"), "{bad}: {e}");
        }
        let hour = Width::HOUR;
        assert_eq!(hour.containing(7_200_001), Span { start_ms: 7_200_000, end_ms: 10_800_000 });
        assert_eq!(hour.containing(-1), Span { start_ms: -3_600_000, end_ms: 0 });
        assert_eq!(hour.containing(7_200_001).previous(), Span { start_ms: 3_600_000, end_ms: 7_200_000 });
        // Hostile times (an `at=` query) neither overflow nor panic.
        for at in [i64::MIN, i64::MAX] {
            let mut span = Width::parse("366d").unwrap().containing(at);
            for _ in 0..500 {
                span = span.previous();
            }
            assert!(span.start_ms < span.end_ms);
        }
    }
}
