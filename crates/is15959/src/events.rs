//! IS 15959 event codes and the event status word (ESW) bit map, as data
//! (`tables/events.txt`, `tables/esw.txt`), with lookups both ways.

use std::sync::OnceLock;

use dlms::data::BitString;
use model::{EventCategory, EventKind};

use crate::table::{self, At, TableError};

pub const EVENTS_TABLE: &str = include_str!("tables/events.txt");
pub const ESW_TABLE: &str = include_str!("tables/esw.txt");

/// Bits in the event status word.
pub const ESW_BITS: usize = 128;

/// One event code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCode {
    pub code: u16,
    pub category: EventCategory,
    pub kind: EventKind,
    /// The restoration of an occurrence, or the occurrence of a restoration.
    pub pair: Option<u16>,
    /// snake_case, e.g. `power_failure`.
    pub name: String,
    pub description: String,
}

/// The event-code table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCodes {
    codes: Vec<EventCode>,
}

fn category_from_name(s: &str) -> Option<EventCategory> {
    Some(match s {
        "voltage" => EventCategory::Voltage,
        "current" => EventCategory::Current,
        "power" => EventCategory::Power,
        "transaction" => EventCategory::Transaction,
        "other" => EventCategory::Other,
        "non_rollover" => EventCategory::NonRollover,
        "control" => EventCategory::Control,
        _ => return None,
    })
}

impl EventCodes {
    pub fn builtin() -> &'static EventCodes {
        static BUILTIN: OnceLock<EventCodes> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            EventCodes::parse(EVENTS_TABLE).expect("the built-in event table parses (tested)")
        })
    }

    /// Reads an event table. Codes and names must be unique, and pairs must point at each other
    /// within one category.
    pub fn parse(text: &str) -> Result<EventCodes, TableError> {
        let mut codes: Vec<EventCode> = Vec::new();
        let mut lines = Vec::new();
        for (line, cells) in table::rows(text) {
            let at = At {
                table: "events",
                line,
            };
            let [code, category, kind, pair, name, description] = at.cells(&cells)?;
            let ev = EventCode {
                code: at.num("event code", code)?,
                category: category_from_name(category)
                    .ok_or_else(|| at.err(format!("unknown category {category:?}")))?,
                kind: match kind {
                    "occ" => EventKind::Occurrence,
                    "rest" => EventKind::Restoration,
                    "single" => EventKind::Single,
                    other => return Err(at.err(format!("kind {other:?}: use occ, rest or single"))),
                },
                pair: match pair {
                    "-" => None,
                    p => Some(at.num("pair", p)?),
                },
                name: name.to_string(),
                description: description.to_string(),
            };
            if (ev.kind == EventKind::Single) != ev.pair.is_none() {
                return Err(at.err("occurrences and restorations have a pair, singles do not"));
            }
            if codes.iter().any(|c| c.code == ev.code || c.name == ev.name) {
                return Err(at.err(format!("code {} or name {} listed twice", ev.code, ev.name)));
            }
            codes.push(ev);
            lines.push(line);
        }
        for (ev, line) in codes.iter().zip(&lines) {
            if let Some(p) = ev.pair {
                let ok = codes.iter().any(|o| {
                    o.code == p
                        && o.pair == Some(ev.code)
                        && o.category == ev.category
                        && o.kind != ev.kind
                });
                if !ok {
                    let at = At {
                        table: "events",
                        line: *line,
                    };
                    return Err(at.err(format!(
                        "code {} pairs with {p}, which does not pair back",
                        ev.code
                    )));
                }
            }
        }
        Ok(EventCodes { codes })
    }

    pub fn all(&self) -> &[EventCode] {
        &self.codes
    }

    pub fn get(&self, code: u16) -> Option<&EventCode> {
        self.codes.iter().find(|c| c.code == code)
    }

    pub fn by_name(&self, name: &str) -> Option<&EventCode> {
        self.codes.iter().find(|c| c.name == name)
    }

    pub fn in_category(&self, category: EventCategory) -> impl Iterator<Item = &EventCode> {
        self.codes.iter().filter(move |c| c.category == category)
    }

    /// The description of a code, or "unknown event" for a code the table lacks.
    pub fn describe(&self, code: u16) -> &str {
        self.get(code)
            .map_or("unknown event", |c| c.description.as_str())
    }
}

/// One bit of the event status word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EswBit {
    /// Counted from the first (most significant) bit of the bit-string.
    pub bit: u8,
    pub name: String,
    /// Event codes that set this bit; their restorations clear it.
    pub events: Vec<u16>,
    pub description: String,
}

/// The ESW bit map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EswMap {
    bits: Vec<EswBit>,
}

impl EswMap {
    pub fn builtin() -> &'static EswMap {
        static BUILTIN: OnceLock<EswMap> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            EswMap::parse(ESW_TABLE).expect("the built-in ESW table parses (tested)")
        })
    }

    pub fn parse(text: &str) -> Result<EswMap, TableError> {
        let mut bits: Vec<EswBit> = Vec::new();
        for (line, cells) in table::rows(text) {
            let at = At { table: "esw", line };
            let [bit, name, events, description] = at.cells(&cells)?;
            let bit: u8 = at.num("bit", bit)?;
            if bit as usize >= ESW_BITS {
                return Err(at.err(format!("bit {bit} is beyond the {ESW_BITS}-bit word")));
            }
            let events = match events {
                "-" => Vec::new(),
                list => list
                    .split(',')
                    .map(|e| at.num::<u16>("event code", e.trim()))
                    .collect::<Result<_, _>>()?,
            };
            if bits.iter().any(|b| b.bit == bit || b.name == name) {
                return Err(at.err(format!("bit {bit} or name {name} listed twice")));
            }
            bits.push(EswBit {
                bit,
                name: name.to_string(),
                events,
                description: description.to_string(),
            });
        }
        Ok(EswMap { bits })
    }

    pub fn all(&self) -> &[EswBit] {
        &self.bits
    }

    pub fn bit(&self, bit: u8) -> Option<&EswBit> {
        self.bits.iter().find(|b| b.bit == bit)
    }

    pub fn by_name(&self, name: &str) -> Option<&EswBit> {
        self.bits.iter().find(|b| b.name == name)
    }

    /// The bit an event code sets, if any.
    pub fn for_event(&self, code: u16) -> Option<&EswBit> {
        self.bits.iter().find(|b| b.events.contains(&code))
    }

    /// The known bits set in a status word (unknown set bits are skipped; see
    /// [`EswMap::unknown_bits`]).
    pub fn decode<'a>(&'a self, word: &'a BitString) -> impl Iterator<Item = &'a EswBit> + 'a {
        self.bits.iter().filter(|b| word.bit(b.bit as usize))
    }

    /// Set bits the map does not name.
    pub fn unknown_bits(&self, word: &BitString) -> Vec<usize> {
        (0..word.len.min(ESW_BITS * 2))
            .filter(|i| word.bit(*i) && !self.bits.iter().any(|b| b.bit as usize == *i))
            .collect()
    }

    /// A 128-bit status word with the named bits set; `None` if a name is unknown.
    pub fn encode<'n>(&self, names: impl IntoIterator<Item = &'n str>) -> Option<BitString> {
        let mut set = Vec::new();
        for n in names {
            set.push(self.by_name(n)?.bit as usize);
        }
        Some(BitString::with_bits(ESW_BITS, set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_event_table_parses_and_looks_up_both_ways() {
        let t = EventCodes::parse(EVENTS_TABLE).unwrap();
        let pf = t.get(101).unwrap();
        assert_eq!(
            (pf.category, pf.kind, pf.pair),
            (EventCategory::Power, EventKind::Occurrence, Some(102))
        );
        assert_eq!(t.by_name("power_restored").unwrap().code, 102);
        assert_eq!(t.get(251).unwrap().category, EventCategory::NonRollover);
        assert_eq!(t.get(302).unwrap().description, "Load switch connected");
        assert_eq!(t.describe(9999), "unknown event");
        assert_eq!(t.in_category(EventCategory::Transaction).count(), 15);
        for c in EventCategory::ALL {
            assert!(t.in_category(c).next().is_some(), "{c:?} has no codes");
        }
    }

    #[test]
    fn event_table_errors() {
        let unpaired = "101 | power | occ | 102 | power_failure | Power failure\n";
        assert!(
            EventCodes::parse(unpaired)
                .unwrap_err()
                .to_string()
                .contains("does not pair back")
        );
        let dup =
            "151 | transaction | single | - | a | A\n151 | transaction | single | - | b | B\n";
        assert_eq!(EventCodes::parse(dup).unwrap_err().line, 2);
        assert!(EventCodes::parse("1 | weather | single | - | a | A").is_err());
        assert!(EventCodes::parse("1 | power | single | 2 | a | A").is_err());
    }

    #[test]
    fn esw_table_parses_and_round_trips() {
        let m = EswMap::parse(ESW_TABLE).unwrap();
        assert_eq!(m.bit(81).unwrap().name, "magnet");
        assert_eq!(m.for_event(251).unwrap().bit, 83);
        assert_eq!(m.by_name("last_gasp").unwrap().bit, 85);
        let word = m.encode(["magnet", "cover_open"]).unwrap();
        assert_eq!(word.len, 128);
        assert_eq!(word.bytes[10], 0b0101_0000); // bits 81 and 83 of byte 10 (bits 80-87)
        let names: Vec<_> = m.decode(&word).map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["magnet", "cover_open"]);
        assert!(m.encode(["nonsense"]).is_none());
        let odd = BitString::with_bits(128, [5, 81]);
        assert_eq!(m.unknown_bits(&odd), vec![5]);
        assert!(EswMap::parse("128 | x | - | X").is_err());
        assert!(EswMap::parse("1 | x | - | X\n1 | y | - | Y").is_err());
    }

    #[test]
    fn every_esw_event_is_a_known_code() {
        for b in EswMap::builtin().all() {
            for e in &b.events {
                assert!(
                    EventCodes::builtin().get(*e).is_some(),
                    "bit {} event {e}",
                    b.bit
                );
            }
        }
    }
}
