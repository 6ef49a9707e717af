//! The small text-table format the built-in IS 15959 tables are written in: one row per line,
//! columns separated by `|`, `#` starts a comment line. Errors name the table and the line.

/// A table that could not be read: which table, which line, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} line {line}: {message}")]
pub struct TableError {
    pub table: &'static str,
    pub line: usize,
    pub message: String,
}

/// The rows of a table: (1-based line number, trimmed cells). Blank and `#` lines are skipped.
pub(crate) fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            None
        } else {
            Some((i + 1, line.split('|').map(str::trim).collect()))
        }
    })
}

/// Builds [`TableError`]s for one table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At {
    pub table: &'static str,
    pub line: usize,
}

impl At {
    pub fn err(self, message: impl Into<String>) -> TableError {
        TableError {
            table: self.table,
            line: self.line,
            message: message.into(),
        }
    }

    pub fn cells<'a, const N: usize>(self, cells: &[&'a str]) -> Result<[&'a str; N], TableError> {
        <[&str; N]>::try_from(cells)
            .map_err(|_| self.err(format!("expected {N} columns, found {}", cells.len())))
    }

    pub fn num<T: std::str::FromStr>(self, what: &str, s: &str) -> Result<T, TableError> {
        s.parse()
            .map_err(|_| self.err(format!("{what} {s:?} is not a valid number")))
    }

    pub fn obis(self, s: &str) -> Result<dlms::ObisCode, TableError> {
        s.parse()
            .map_err(|e| self.err(format!("OBIS code {s:?}: {e}")))
    }
}

/// A set of small numbers (attribute or method ids), written `-` (none), `*` (all from 2), or
/// `2,4-6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct IdSet(u64);

impl IdSet {
    pub const NONE: IdSet = IdSet(0);
    /// Every id from 2 up (for attributes: all but the logical name).
    pub const ALL_BUT_FIRST: IdSet = IdSet(!0b11);

    pub fn contains(self, id: i8) -> bool {
        (0..64).contains(&id) && self.0 & (1u64 << id) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ids in the set, in order.
    pub fn iter(self) -> impl Iterator<Item = i8> {
        (0..64i8).filter(move |i| self.contains(*i))
    }

    pub(crate) fn parse(at: At, s: &str) -> Result<IdSet, TableError> {
        match s {
            "-" | "" => return Ok(IdSet::NONE),
            "*" => return Ok(IdSet::ALL_BUT_FIRST),
            _ => {}
        }
        let mut bits = 0u64;
        for part in s.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (
                    at.num::<u8>("id", lo.trim())?,
                    at.num::<u8>("id", hi.trim())?,
                ),
                None => {
                    let v = at.num::<u8>("id", part)?;
                    (v, v)
                }
            };
            if lo > hi || hi > 63 {
                return Err(at.err(format!("id range {part:?} must be ascending and below 64")));
            }
            for id in lo..=hi {
                bits |= 1 << id;
            }
        }
        Ok(IdSet(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_sets() {
        let at = At {
            table: "t",
            line: 1,
        };
        let s = IdSet::parse(at, "2, 4-6").unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![2, 4, 5, 6]);
        assert!(!IdSet::parse(at, "-").unwrap().contains(1));
        assert!(IdSet::parse(at, "*").unwrap().contains(9));
        assert!(!IdSet::parse(at, "*").unwrap().contains(1));
        assert!(!IdSet::ALL_BUT_FIRST.contains(-1));
        assert!(IdSet::parse(at, "6-4").is_err());
        assert!(IdSet::parse(at, "x").is_err());
        assert!(IdSet::parse(at, "70").is_err());
    }

    #[test]
    fn rows_skip_comments_and_count_lines() {
        let rows: Vec<_> = rows("# c\n\n a | b \n").collect();
        assert_eq!(rows, vec![(3, vec!["a", "b"])]);
    }
}
