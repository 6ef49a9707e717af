//! Times at the edge: UTC inside, ISO 8601 with the IST offset (+05:30) out; any RFC 3339
//! offset in.

use chrono::{DateTime, FixedOffset, Offset, SecondsFormat, Utc};

use crate::error::ApiError;

/// India Standard Time, UTC+05:30.
pub fn ist_offset() -> FixedOffset {
    // 5 h 30 min is well inside ±24 h, so this is always `Some`.
    FixedOffset::east_opt(5 * 3600 + 30 * 60).unwrap_or(Utc.fix())
}

/// `2026-12-01T00:15:00+05:30` (milliseconds only when there are some).
pub fn ist(t: DateTime<Utc>) -> String {
    t.with_timezone(&ist_offset())
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

pub fn ist_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ist)
}

/// Parses an RFC 3339 time with any offset (`Z`, `+05:30`, `-04:00`). A query string decodes
/// `+` to a space, so an offset written `+05:30` unencoded arrives as ` 05:30`: that is taken
/// back as the `+` it was.
pub fn parse_time(what: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    let parsed = DateTime::parse_from_rfc3339(s).or_else(|e| {
        let len = s.len();
        if len > 6
            && s.is_char_boundary(len - 6)
            && s[..len - 6].contains('T')
            && s[len - 6..].starts_with(' ')
        {
            let fixed = format!("{}+{}", &s[..len - 6], &s[len - 5..]);
            DateTime::parse_from_rfc3339(&fixed)
        } else {
            Err(e)
        }
    });
    parsed.map(|t| t.with_timezone(&Utc)).map_err(|_| {
        ApiError::bad_request(
            "invalid_time",
            format!(
                "{what}: {s:?} is not an RFC 3339 time with an offset, e.g. \
                 2026-12-01T00:15:00+05:30 (write + as %2B in a query string)"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_in_ist_in_with_any_offset() {
        let t: DateTime<Utc> = "2026-11-30T18:45:00Z".parse().unwrap();
        assert_eq!(ist(t), "2026-12-01T00:15:00+05:30");
        assert_eq!(parse_time("t", "2026-12-01T00:15:00+05:30").unwrap(), t);
        assert_eq!(parse_time("t", "2026-11-30T18:45:00Z").unwrap(), t);
        assert_eq!(parse_time("t", "2026-11-30T13:45:00-05:00").unwrap(), t);
        assert_eq!(parse_time("t", "2026-12-01T00:15:00 05:30").unwrap(), t);
        let ms = t + chrono::Duration::milliseconds(250);
        assert_eq!(ist(ms), "2026-12-01T00:15:00.250+05:30");
        for bad in [
            "",
            "2026-12-01",
            "2026-12-01T00:15:00",
            "yesterday",
            "2026-12-01T00:15:00 0é:30",
        ] {
            assert_eq!(
                parse_time("t", bad).unwrap_err().code,
                "invalid_time",
                "{bad}"
            );
        }
    }
}
