//! Fault injection: which meters misbehave, and how. Parsed from `--faults`, assigned to meters
//! deterministically from the seed (a hash decides, nothing is stored for a meter that has no
//! override), and overridable per meter at run time through the fleet handle.
//!
//! Syntax: a comma-separated list of `KIND=WHO[:PARAM]` where `WHO` is a share of the fleet
//! (`2%`, `0.5%`) or one meter by its number (`#7`, the 7th meter, serial `URJ10000007`), e.g.
//! `no-answer=2%,slow=5%:3s,drop=1%,corrupt=1%,skew=5%:600s,power-off=2%:2h,flaky=10%:30%`.
//!
//! | kind | effect | param (default) |
//! |---|---|---|
//! | `no-answer` | accepts the connection, never replies | — |
//! | `slow` | delays every reply | delay (`3s`) |
//! | `drop` | closes the connection after the association is established, before answering the first request | — |
//! | `corrupt` | every frame sent is malformed (wrong wrapper version / bad HDLC FCS) | — |
//! | `skew` | clock off by ± the duration (sign from the seed) | offset (`600s`) |
//! | `power-off` | off for the duration once a day (no answer, gap in the load profile, events 101/102) | duration (`1h`, at most 12h) |
//! | `flaky` | each connection fails with the given probability: the meter closes it on the AARQ, before any AARE; whether connection *n* fails is a hash of (seed, meter, n), so a retry may well succeed | share of connections (`50%`) |

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
    Flaky,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::NoAnswer,
        FaultKind::Slow,
        FaultKind::Drop,
        FaultKind::Corrupt,
        FaultKind::Skew,
        FaultKind::PowerOff,
        FaultKind::Flaky,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::NoAnswer => "no-answer",
            FaultKind::Slow => "slow",
            FaultKind::Drop => "drop",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Skew => "skew",
            FaultKind::PowerOff => "power-off",
            FaultKind::Flaky => "flaky",
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
    /// For `flaky`: the share of connections that fail, parts per million; zero otherwise.
    pub chance_ppm: u32,
}

/// Default share of a `flaky` meter's connections that fail.
pub const FLAKY_DEFAULT_PPM: u32 = 500_000;

impl Fault {
    pub fn new(kind: FaultKind) -> Self {
        Fault::with_param(kind, kind.default_param())
    }

    pub fn with_param(kind: FaultKind, param: Duration) -> Self {
        Fault {
            kind,
            param,
            chance_ppm: if kind == FaultKind::Flaky {
                FLAKY_DEFAULT_PPM
            } else {
                0
            },
        }
    }

    /// A `flaky` fault: each connection fails with probability `chance` (0.0 ..= 1.0).
    pub fn flaky(chance: f64) -> Self {
        Fault {
            kind: FaultKind::Flaky,
            param: Duration::ZERO,
            chance_ppm: (chance.clamp(0.0, 1.0) * 1e6).round() as u32,
        }
    }

    /// Whether connection number `connection` of meter `meter` fails (for `flaky`; always
    /// false for other kinds). A hash of (seed, meter, connection): deterministic, independent
    /// from one connection to the next.
    pub fn fails_connection(&self, seed: u64, meter: u32, connection: u64) -> bool {
        self.kind == FaultKind::Flaky
            && unit(hash(seed, &[tag::FLAKY, meter as u64, connection])) * 1e6
                < self.chance_ppm as f64
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
    #[error(
        "unknown fault kind `{0}` (known: no-answer, slow, drop, corrupt, skew, power-off, flaky)"
    )]
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

/// Parses a percentage, `2%` or `0.5%`, as a share 0.0 ..= 1.0.
fn parse_share(s: &str) -> Result<f64, FaultSpecError> {
    let bad = || FaultSpecError::BadShare(s.to_string());
    let pct: f64 = s
        .strip_suffix('%')
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    if !(0.0..=100.0).contains(&pct) {
        return Err(bad());
    }
    Ok(pct / 100.0)
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
                Some((who, param)) => (who.trim(), Some(param.trim())),
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
                Target::Share(parse_share(who)?)
            };
            let fault = match (kind, param) {
                (FaultKind::Flaky, Some(p)) => Fault::flaky(parse_share(p)?),
                (_, Some(p)) => Fault::with_param(kind, parse_duration(p)?),
                (_, None) => Fault::new(kind),
            };
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
            if r.fault.kind == FaultKind::Flaky {
                write!(f, ":{}%", r.fault.chance_ppm as f64 / 10_000.0)?;
            } else if !r.fault.param.is_zero() {
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
    fn flaky_fails_about_the_given_share_of_connections_deterministically() {
        let spec: FaultSpec = "flaky=10%:30%".parse().unwrap();
        let fault = spec.rules[0].fault;
        assert_eq!(fault.kind, FaultKind::Flaky);
        assert_eq!(fault.chance_ppm, 300_000);
        assert_eq!(spec.to_string(), "flaky=10%:30%");
        let plain: FaultSpec = "flaky=#2".parse().unwrap();
        assert_eq!(plain.rules[0].fault.chance_ppm, FLAKY_DEFAULT_PPM);
        assert!("flaky=5%:3s".parse::<FaultSpec>().is_err());
        assert!("flaky=5%:120%".parse::<FaultSpec>().is_err());
        let failed = (0..10_000)
            .filter(|n| fault.fails_connection(4, 3, *n))
            .count();
        assert!((2_700..3_300).contains(&failed), "{failed}");
        let again = (0..10_000)
            .filter(|n| fault.fails_connection(4, 3, *n))
            .count();
        assert_eq!(failed, again);
        // Consecutive connections are independent: a failure is often followed by a success.
        assert!(
            (0..100)
                .any(|n| fault.fails_connection(4, 3, n) && !fault.fails_connection(4, 3, n + 1))
        );
        assert!(!Fault::flaky(0.0).fails_connection(4, 3, 0));
        assert!(Fault::flaky(1.0).fails_connection(4, 3, 0));
        assert!(!Fault::new(FaultKind::Slow).fails_connection(4, 3, 0));
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
