//! Durations as people write them in a configuration file: `"4h"`, `"30m"`, `"1h30m"`, `"90s"`,
//! `"2d"`, `"250ms"`, or a bare number of seconds. Used with `#[serde(with = ...)]` on the
//! planning configs so the TOML file reads `block_load_every = "4h"`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

/// Why a duration text was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration {0:?}: expected numbers with units d, h, m, s or ms (e.g. \"1h30m\")")]
    Syntax(String),
    #[error("duration {0:?} is too long")]
    Overflow(String),
}

/// Parses `"1h30m"`-style text (units `d`, `h`, `m`, `s`, `ms`, each number a whole number) or a
/// bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let syntax = || DurationError::Syntax(text.to_owned());
    let overflow = || DurationError::Overflow(text.to_owned());
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(syntax());
        }
        let (number, after) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| overflow())?;
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        let unit_ms: u64 = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" | "min" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            _ => return Err(syntax()),
        };
        let part = number.checked_mul(unit_ms).ok_or_else(overflow)?;
        total_ms = total_ms.checked_add(part).ok_or_else(overflow)?;
        rest = after.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

/// The shortest text [`parse`] reads back as `d`, to the millisecond (`"4h"`, `"1h30m"`, `"0s"`).
pub fn format(d: Duration) -> String {
    Text(d).to_string()
}

struct Text(Duration);

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            let n = ms / size;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// `serde(with = "crate::plan::duration")`: text on the way out, text or seconds on the way in.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Text(*d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse(&t).map_err(de::Error::custom),
    }
}

/// `serde(default, with = "crate::plan::duration::opt")` for an optional duration (an override
/// that may be absent).
pub mod opt {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.collect_str(&Text(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|Wrap(d)| d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_write() {
        assert_eq!(parse("4h"), Ok(Duration::from_secs(4 * 3600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("15min"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("600"), Ok(Duration::from_secs(600)));
    }

    #[test]
    fn rejects_nonsense_without_panicking() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert!(matches!(parse("h"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("4x"), Err(DurationError::Syntax(_))));
        assert_eq!(parse("4"), Ok(Duration::from_secs(4)));
        assert!(matches!(parse("-4h"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("4h5"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse("1.5h"), Err(DurationError::Syntax(_))));
        assert!(matches!(
            parse("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse("999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(parse("4ü"), Err(DurationError::Syntax(_))));
    }

    #[test]
    fn formats_shortest_and_round_trips() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(4 * 3600)), "4h");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_millis(86_400_250)), "1d250ms");
        for ms in [1, 999, 1000, 61_001, 3_600_000, 90_061_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
