//! IS 15959 profiles (IC 7 profile generic) as data: for each profile and meter kind, the
//! capture objects in order and the scaler profile. The built-in table is
//! `tables/profiles.txt`; [`Profiles::parse`] reads an edited copy.

use std::sync::OnceLock;

use dlms::{Data, DecodeError, ObisCode};
use model::{EventCategory, MeterKind};

use crate::catalogue::{Catalogue, KindSet};
use crate::table::{self, At, TableError};
use crate::units::describe;

/// The built-in profile table text.
pub const PROFILES_TABLE: &str = include_str!("tables/profiles.txt");

/// One column of a profile: which attribute of which object is captured (Blue Book
/// `capture_object_definition`). The same type the `dlms` selective-access code uses; attribute 3
/// of a profile returns these as `structure {long-unsigned class_id, octet-string(6)
/// logical_name, integer attribute_index, long-unsigned data_index}`.
pub type CaptureObject = dlms::apdu::CaptureColumn;

/// Reads attribute 3 of a profile (an array of capture object definitions).
pub fn capture_objects_from_data(d: &Data) -> Result<Vec<CaptureObject>, DecodeError> {
    match d {
        Data::Array(items) => items.iter().map(CaptureObject::from_data).collect(),
        other => Err(DecodeError::invalid(
            "capture objects",
            format!("expected an array, found {}", describe(other)),
        )),
    }
}

/// Attribute 3 of a profile: an array of capture object definitions.
pub fn capture_objects_to_data(list: &[CaptureObject]) -> Data {
    Data::Array(list.iter().map(CaptureObject::to_data).collect())
}

/// What a profile records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProfileKind {
    Instantaneous,
    BlockLoad,
    DailyLoad,
    Billing,
    EventLog(EventCategory),
    NamePlate,
}

impl ProfileKind {
    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Instantaneous => "instantaneous",
            ProfileKind::BlockLoad => "block_load",
            ProfileKind::DailyLoad => "daily_load",
            ProfileKind::Billing => "billing",
            ProfileKind::EventLog(_) => "event_log",
            ProfileKind::NamePlate => "name_plate",
        }
    }
}

/// One profile for a set of meter kinds.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileDef {
    pub profile: ProfileKind,
    pub kinds: KindSet,
    pub logical_name: ObisCode,
    /// The profile holding the scaler/units of this profile's columns.
    pub scaler_profile: Option<ObisCode>,
    pub capture_objects: Vec<CaptureObject>,
}

impl ProfileDef {
    /// Attribute 3 (capture objects) as a meter returns it.
    pub fn capture_objects_data(&self) -> Data {
        capture_objects_to_data(&self.capture_objects)
    }

    /// The capture objects as the structures of attribute 3, one per column.
    pub fn capture_object_structures(&self) -> Vec<Data> {
        self.capture_objects
            .iter()
            .map(CaptureObject::to_data)
            .collect()
    }

    /// The index of a column.
    pub fn column(&self, class_id: u16, logical_name: ObisCode, attribute: i8) -> Option<usize> {
        self.capture_objects.iter().position(|c| {
            c.class_id == class_id
                && c.logical_name == logical_name
                && c.attribute_index == attribute
        })
    }

    /// The capture objects of this profile's scaler profile: attribute 3 (scaler_unit) of each
    /// column's object that has one, once each, in column order.
    pub fn scaler_capture_objects(
        &self,
        catalogue: &Catalogue,
        kind: MeterKind,
    ) -> Vec<CaptureObject> {
        let mut out: Vec<CaptureObject> = Vec::new();
        for c in &self.capture_objects {
            let scaled = catalogue
                .get(kind, c.logical_name)
                .is_some_and(|o| o.scaler_unit.is_some() && o.class_id == c.class_id);
            let s = CaptureObject::new(c.class_id, c.logical_name, 3);
            if scaled && !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// The one row of the scaler profile's buffer holding the catalogue's default scalers
    /// (what a meter built from the catalogue serves).
    pub fn default_scaler_row(&self, catalogue: &Catalogue, kind: MeterKind) -> Data {
        Data::Structure(
            self.scaler_capture_objects(catalogue, kind)
                .iter()
                .filter_map(|c| catalogue.get(kind, c.logical_name)?.scaler_unit)
                .map(|su| su.to_data())
                .collect(),
        )
    }
}

/// All profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    defs: Vec<ProfileDef>,
}

impl Profiles {
    /// The built-in profiles (parsed once).
    pub fn builtin() -> &'static Profiles {
        static BUILTIN: OnceLock<Profiles> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Profiles::parse(PROFILES_TABLE).expect("the built-in profile table parses (tested)")
        })
    }

    pub fn parse(text: &str) -> Result<Profiles, TableError> {
        struct Section {
            line: usize,
            name: String,
            kinds: KindSet,
            profile: Option<String>,
            scaler: Option<String>,
            rows: Vec<(usize, [String; 4])>,
        }
        let mut sections: Vec<Section> = Vec::new();
        for (line, cells) in table::rows(text) {
            let at = At {
                table: "profiles",
                line,
            };
            let first = cells.first().copied().unwrap_or_default();
            if let Some(header) = first.strip_prefix('[') {
                let header = header
                    .strip_suffix(']')
                    .ok_or_else(|| at.err("a section header is [profile kinds]"))?;
                let (name, kinds) = header
                    .trim()
                    .split_once(' ')
                    .ok_or_else(|| at.err("a section header is [profile kinds]"))?;
                sections.push(Section {
                    line,
                    name: name.to_string(),
                    kinds: KindSet::parse(at, kinds)?,
                    profile: None,
                    scaler: None,
                    rows: Vec::new(),
                });
                continue;
            }
            let section = sections
                .last_mut()
                .ok_or_else(|| at.err("a row before any section"))?;
            if cells.len() == 1 {
                let (key, value) = first
                    .split_once('=')
                    .ok_or_else(|| at.err("expected key = value"))?;
                let slot = match key.trim() {
                    "profile" => &mut section.profile,
                    "scaler" => &mut section.scaler,
                    other => return Err(at.err(format!("unknown key {other:?}"))),
                };
                *slot = Some(value.trim().to_string());
                continue;
            }
            let cells: [&str; 4] = at.cells(&cells)?;
            section.rows.push((line, cells.map(str::to_string)));
        }

        let mut defs: Vec<ProfileDef> = Vec::new();
        for s in sections {
            let at = At {
                table: "profiles",
                line: s.line,
            };
            let fixed = |p: ProfileKind| vec![(p, None)];
            let expansions: Vec<(ProfileKind, Option<u8>)> = match s.name.as_str() {
                "instantaneous" => fixed(ProfileKind::Instantaneous),
                "block_load" => fixed(ProfileKind::BlockLoad),
                "daily_load" => fixed(ProfileKind::DailyLoad),
                "billing" => fixed(ProfileKind::Billing),
                "name_plate" => fixed(ProfileKind::NamePlate),
                "event_log" => EventCategory::ALL
                    .into_iter()
                    .map(|c| (ProfileKind::EventLog(c), Some(c.log_index())))
                    .collect(),
                other => return Err(at.err(format!("unknown profile {other:?}"))),
            };
            let profile = s
                .profile
                .as_deref()
                .ok_or_else(|| at.err("no `profile =` line"))?;
            for (kind, e) in expansions {
                let subst = |text: &str| match e {
                    Some(e) => text.replace("{e}", &e.to_string()),
                    None => text.to_string(),
                };
                let scaler_profile = match s.scaler.as_deref() {
                    None | Some("-") => None,
                    Some(text) => Some(at.obis(&subst(text))?),
                };
                let mut capture_objects = Vec::with_capacity(s.rows.len());
                for (line, [class, ln, attr, index]) in &s.rows {
                    let at = At {
                        table: "profiles",
                        line: *line,
                    };
                    capture_objects.push(CaptureObject {
                        class_id: at.num("class id", class)?,
                        logical_name: at.obis(&subst(ln))?,
                        attribute_index: at.num("attribute", attr)?,
                        data_index: at.num("data index", index)?,
                    });
                }
                let def = ProfileDef {
                    profile: kind,
                    kinds: s.kinds,
                    logical_name: at.obis(&subst(profile))?,
                    scaler_profile,
                    capture_objects,
                };
                if defs
                    .iter()
                    .any(|d| d.profile == def.profile && d.kinds.overlaps(def.kinds))
                {
                    return Err(at.err(format!("{} defined twice for a meter kind", s.name)));
                }
                defs.push(def);
            }
        }
        Ok(Profiles { defs })
    }

    pub fn all(&self) -> &[ProfileDef] {
        &self.defs
    }

    pub fn for_kind(&self, kind: MeterKind) -> impl Iterator<Item = &ProfileDef> {
        self.defs.iter().filter(move |d| d.kinds.contains(kind))
    }

    pub fn get(&self, kind: MeterKind, profile: ProfileKind) -> Option<&ProfileDef> {
        self.for_kind(kind).find(|d| d.profile == profile)
    }

    /// The profile with this logical name.
    pub fn by_logical_name(&self, kind: MeterKind, logical_name: ObisCode) -> Option<&ProfileDef> {
        self.for_kind(kind).find(|d| d.logical_name == logical_name)
    }

    /// The profiles whose scalers this scaler profile holds (several for the event logs, which
    /// share one).
    pub fn by_scaler_profile(
        &self,
        kind: MeterKind,
        scaler_profile: ObisCode,
    ) -> impl Iterator<Item = &ProfileDef> {
        self.for_kind(kind)
            .filter(move |d| d.scaler_profile == Some(scaler_profile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::obis;

    #[test]
    fn builtin_parses_with_every_profile_for_every_kind() {
        let profiles = Profiles::parse(PROFILES_TABLE).unwrap();
        for kind in MeterKind::ALL {
            let mut expected = vec![
                ProfileKind::Instantaneous,
                ProfileKind::BlockLoad,
                ProfileKind::DailyLoad,
                ProfileKind::Billing,
                ProfileKind::NamePlate,
            ];
            expected.extend(EventCategory::ALL.map(ProfileKind::EventLog));
            for p in expected {
                assert!(
                    profiles.get(kind, p).is_some(),
                    "{p:?} missing for {kind:?}"
                );
            }
        }
    }

    #[test]
    fn every_capture_object_is_in_the_catalogue_with_its_class_and_attribute() {
        let cat = Catalogue::builtin();
        for kind in MeterKind::ALL {
            for p in Profiles::builtin().for_kind(kind) {
                let def = cat.get(kind, p.logical_name);
                assert!(
                    def.is_some_and(|d| d.class_id == 7),
                    "{} for {kind:?}",
                    p.logical_name
                );
                if let Some(s) = p.scaler_profile {
                    assert!(cat.get(kind, s).is_some_and(|d| d.class_id == 7), "{s}");
                }
                for c in &p.capture_objects {
                    let o = cat.get(kind, c.logical_name).unwrap_or_else(|| {
                        panic!(
                            "{:?} column {} not in the catalogue for {kind:?}",
                            p.profile, c.logical_name
                        )
                    });
                    assert_eq!(o.class_id, c.class_id, "{}", o.name);
                    assert!(
                        o.class().unwrap().has_attribute(c.attribute_index),
                        "{}",
                        o.name
                    );
                }
            }
        }
    }

    #[test]
    fn block_load_layout_and_data_form() {
        let one = MeterKind::SinglePhaseWholeCurrent;
        let p = Profiles::builtin()
            .get(one, ProfileKind::BlockLoad)
            .unwrap();
        assert_eq!(p.logical_name, obis::BLOCK_LOAD_PROFILE);
        assert_eq!(p.scaler_profile, Some(ObisCode::must("1.0.94.91.4.255")));
        let names: Vec<String> = p
            .capture_objects
            .iter()
            .map(|c| c.logical_name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "0.0.1.0.0.255",
                "1.0.12.27.0.255",
                "1.0.11.27.0.255",
                "1.0.1.29.0.255",
                "1.0.9.29.0.255",
                "1.0.2.29.0.255",
                "1.0.10.29.0.255"
            ]
        );
        let data = p.capture_objects_data();
        let Data::Array(items) = &data else { panic!() };
        assert_eq!(
            items[0],
            Data::Structure(vec![
                Data::LongUnsigned(8),
                Data::OctetString(vec![0, 0, 1, 0, 0, 255]),
                Data::Integer(2),
                Data::LongUnsigned(0),
            ])
        );
        assert_eq!(capture_objects_from_data(&data).unwrap(), p.capture_objects);
        assert_eq!(p.capture_object_structures().len(), 7);
        assert!(capture_objects_from_data(&Data::Structure(vec![])).is_err());
        assert!(CaptureObject::from_data(&Data::Structure(vec![Data::LongUnsigned(8)])).is_err());

        let scalers = p.scaler_capture_objects(Catalogue::builtin(), one);
        assert_eq!(scalers.len(), 6); // every column but the clock
        assert!(scalers.iter().all(|c| c.attribute_index == 3));
        let Data::Structure(row) = p.default_scaler_row(Catalogue::builtin(), one) else {
            panic!()
        };
        assert_eq!(row.len(), 6);
    }

    #[test]
    fn event_logs_expand_per_category() {
        let k = MeterKind::ThreePhaseWholeCurrent;
        let p = Profiles::builtin()
            .get(k, ProfileKind::EventLog(EventCategory::Power))
            .unwrap();
        assert_eq!(p.logical_name, obis::event_log(2));
        assert_eq!(
            p.capture_objects[1].logical_name,
            obis::current_event_code(2)
        );
        let sharing = Profiles::builtin().by_scaler_profile(k, ObisCode::must("1.0.94.91.7.255"));
        assert_eq!(sharing.count(), 7);
    }

    #[test]
    fn bad_tables_name_the_line() {
        assert_eq!(
            Profiles::parse("8 | 0.0.1.0.0.255 | 2 | 0")
                .unwrap_err()
                .line,
            1
        );
        let e = Profiles::parse("[block_load 1P]\nprofile = 1.0.99.1.0.255\n8 | x | 2 | 0\n");
        assert_eq!(e.unwrap_err().line, 3);
        assert!(Profiles::parse("[nonsense 1P]\nprofile = 1.0.99.1.0.255\n").is_err());
        let twice = "[daily_load all]\nprofile = 1.0.99.2.0.255\n[daily_load 1P]\nprofile = 1.0.99.2.0.255\n";
        assert!(Profiles::parse(twice).is_err());
    }
}
