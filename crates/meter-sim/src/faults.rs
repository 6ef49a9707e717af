//! Fault injection: which meters misbehave, and how. Parsed from `--faults`, assigned to meters
//! deterministically from the seed (a hash decides, nothing is stored for a meter that has no
//! override), and overridable per meter at run time through the fleet handle.
//!
//! Syntax: a comma-separated list of `KIND=WHO[:PARAM]` where `WHO` is a share of the fleet
//! (`2%`, `0.5%`) or one meter by its number (`#7`, the 7th meter, serial `URJ10000007`), e.g.
//! `no-answer=2%,slow=5%:3s,drop=1%,corrupt=1%,skew=5%:600s,power-off=2%:2h`.
//!
//! | kind | effect | param (default) |
//! |---|---|---|
//! | `no-answer` | accepts the connection, never replies | — |
//! | `slow` | delays every reply | delay (`3s`) |
//! | `drop` | closes the connection after the association is established, before answering the first request | — |
//! | `corrupt` | every frame sent is malformed (wrong wrapper version / bad HDLC FCS) | — |
//! | `skew` | clock off by ± the duration (sign from the seed) | offset (`600s`) |
//! | `power-off` | off for the duration once a day (no answer, gap in the load profile, events 101/102) | duration (`1h`, at most 12h) |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::hash::{hash, tag, unit};

/// The kinds of fault a meter can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    NoAnswer,
    Slow,
    Drop,
    Corrupt,
    Skew,
    PowerOff,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::NoAnswer,
        FaultKind::Slow,
        FaultKind::Drop,
        FaultKind::Corrupt,
        FaultKind::Skew,
        FaultKind::PowerOff,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NoAnswer => "no-answer",
            FaultKind::Slow => "slow",
            FaultKind::Drop => "drop",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Skew => "skew",
            FaultKind::PowerOff => "power-off",
        }
    }

    fn default_param(self) -> Duration {
        match self {
            FaultKind::Slow => Duration::from_secs(3),
            FaultKind::Skew => Duration::from_secs(600),
            FaultKind::PowerOff => Duration::from_secs(3600),
            _ => Duration::ZERO,
        }
    }

    fn index(self) -> u64 {
        self as u64
    }
}

impl FromStr for FaultKind {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| FaultSpecError::UnknownKind(s.to_string()))
    }
}

/// One fault as a meter has it (kind plus its parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Delay for `slow`, offset for `skew`, outage length for `power-off`; zero otherwise.
    pub param: Duration,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            param: kind.default_param(),
        }
    }

    pub fn with_param(kind: FaultKind, param: Duration) -> Self {
        Fault { kind, param }
    }
}

/// Which meters a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A share of the fleet, 0.0 ..= 1.0, chosen by hash.
    Share(f64),
    /// One meter, by zero-based index.
    Meter(u32),
}

/// One `KIND=WHO[:PARAM]` rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    pub target: Target,
}

/// The parsed `--faults` option.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultSpec {
    pub rules: Vec<FaultRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("unknown fault kind `{0}` (known: no-answer, slow, drop, corrupt, skew, power-off)")]
    UnknownKind(String),
    #[error("fault rule `{0}` is not KIND=SHARE%[:PARAM] or KIND=#METER[:PARAM]")]
    Malformed(String),
    #[error("bad share `{0}`: give a percentage 0-100, e.g. 2% or 0.5%")]
    BadShare(String),
    #[error("bad duration `{0}`: give a number with a unit, e.g. 500ms, 3s, 10m, 2h")]
    BadDuration(String),
    #[error("power-off duration {0:?} is longer than the 12 h allowed")]
    TooLong(Duration),
}

/// Parses `500ms`, `3s`, `10m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, FaultSpecError> {
    let s = s.trim();
    let bad = || FaultSpecError::BadDuration(s.to_string());
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rules = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, rest) = part
                .split_once('=')
                .ok_or_else(|| FaultSpecError::Malformed(part.to_string()))?;
            let kind: FaultKind = kind.trim().parse()?;
            let (who, param) = match rest.split_once(':') {
                Some((who, param)) => (who.trim(), Some(parse_duration(param)?)),
                None => (rest.trim(), None),
            };
            let target = if let Some(n) = who.strip_prefix('#') {
                let n: u32 = n
                    .parse()
                    .map_err(|_| FaultSpecError::Malformed(part.to_string()))?;
                if n == 0 {
                    return Err(FaultSpecError::Malformed(part.to_string()));
                }
                Target::Meter(n - 1)
            } else {
                let pct = who
                    .strip_suffix('%')
                    .ok_or_else(|| FaultSpecError::BadShare(who.into()))?;
                let pct: f64 = pct
                    .parse()
                    .map_err(|_| FaultSpecError::BadShare(who.into()))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(FaultSpecError::BadShare(who.to_string()));
                }
                Target::Share(pct / 100.0)
            };
            let fault = Fault::with_param(kind, param.unwrap_or(kind.default_param()));
            if kind == FaultKind::PowerOff && fault.param > Duration::from_secs(12 * 3600) {
                return Err(FaultSpecError::TooLong(fault.param));
            }
            rules.push(FaultRule { fault, target });
        }
        Ok(FaultSpec { rules })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return write!(f, "none");
        }
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            match r.target {
                Target::Share(s) => write!(f, "{}={}%", r.fault.kind.name(), s * 100.0)?,
                Target::Meter(m) => write!(f, "{}=#{}", r.fault.kind.name(), m + 1)?,
            }
            if !r.fault.param.is_zero() {
                write!(f, ":{}s", r.fault.param.as_secs_f64())?;
            }
        }
        Ok(())
    }
}

impl FaultSpec {
    /// The fault of `kind` that the spec gives meter `meter`, if any. Independent draws per kind,
    /// so a meter may have several faults of different kinds.
    pub fn fault_for(&self, seed: u64, meter: u32, kind: FaultKind) -> Option<Fault> {
        self.rules
            .iter()
            .filter(|r| r.fault.kind == kind)
            .find_map(|r| {
                let hit = match r.target {
                    Target::Meter(m) => m == meter,
                    Target::Share(share) => {
                        unit(hash(seed, &[tag::FAULT, kind.index(), meter as u64])) < share
                    }
                };
                hit.then_some(r.fault)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let spec: FaultSpec =
            "no-answer=2%,slow=5%:3s,drop=1%,corrupt=1%,skew=5%:600s,power-off=2%:2h,slow=#7:250ms"
                .parse()
                .unwrap();
        assert_eq!(spec.rules.len(), 7);
        assert_eq!(spec.rules[1].fault.param, Duration::from_secs(3));
        assert_eq!(spec.rules[5].fault.param, Duration::from_secs(7200));
        assert_eq!(spec.rules[6].target, Target::Meter(6));
        assert_eq!(spec.rules[6].fault.param, Duration::from_millis(250));
        assert!("bogus=2%".parse::<FaultSpec>().is_err());
        assert!("slow=2".parse::<FaultSpec>().is_err());
        assert!("slow=200%".parse::<FaultSpec>().is_err());
        assert!("slow=2%:3 parsecs".parse::<FaultSpec>().is_err());
        assert!("power-off=1%:13h".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn shares_are_roughly_right_and_deterministic() {
        let spec: FaultSpec = "no-answer=10%".parse().unwrap();
        let hits = |seed| {
            (0..10_000)
                .filter(|m| spec.fault_for(seed, *m, FaultKind::NoAnswer).is_some())
                .count()
        };
        let n = hits(1);
        assert!((800..1200).contains(&n), "{n}");
        assert_eq!(n, hits(1));
        assert!(spec.fault_for(1, 0, FaultKind::Slow).is_none());
        let one: FaultSpec = "corrupt=#3".parse().unwrap();
        assert!(one.fault_for(9, 2, FaultKind::Corrupt).is_some());
        assert!(one.fault_for(9, 3, FaultKind::Corrupt).is_none());
    }
}
