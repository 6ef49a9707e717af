//! The IS 15959 object catalogue as data: every object a whole-current (Part 2) or CT-operated
//! (Part 3) meter exposes, with its class, unit, default scaler and access rights per
//! association. The built-in table is `tables/catalogue.txt`; [`Catalogue::parse`] reads an
//! edited copy.

use std::sync::OnceLock;

use dlms::ObisCode;
use dlms::apdu::{ActionResult, DataAccessResult};
use model::MeterKind;

use crate::association::{Association, AssociationSet};
use crate::class::InterfaceClass;
use crate::table::{self, At, IdSet, TableError};
use crate::units::{ScalerUnit, Unit};

/// The built-in catalogue text.
pub const CATALOGUE_TABLE: &str = include_str!("tables/catalogue.txt");

/// A set of meter kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct KindSet(u8);

impl KindSet {
    pub const ALL: KindSet = KindSet(0b111);

    pub fn of(kinds: &[MeterKind]) -> Self {
        KindSet(kinds.iter().fold(0, |bits, k| bits | Self::bit(*k)))
    }

    fn bit(kind: MeterKind) -> u8 {
        match kind {
            MeterKind::SinglePhaseWholeCurrent => 1,
            MeterKind::ThreePhaseWholeCurrent => 2,
            MeterKind::ThreePhaseCtOperated => 4,
        }
    }

    pub fn contains(self, kind: MeterKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    pub fn overlaps(self, other: KindSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Parses `1P`, `3P`, `CT`, `WC` (whole-current: 1P 3P), `PP` (polyphase: 3P CT), `all`,
    /// separated by spaces or commas.
    pub(crate) fn parse(at: At, s: &str) -> Result<KindSet, TableError> {
        let mut bits = 0;
        for token in s.split([' ', ',']).filter(|t| !t.is_empty()) {
            bits |= match token {
                "1P" => 1,
                "3P" => 2,
                "CT" => 4,
                "WC" => 3,
                "PP" => 6,
                "all" => 7,
                other => return Err(at.err(format!("unknown meter kind {other:?}"))),
            };
        }
        if bits == 0 {
            return Err(at.err("no meter kind"));
        }
        Ok(KindSet(bits))
    }
}

/// Who may do what with one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccessRule {
    /// Associations that may read every attribute.
    pub read: AssociationSet,
    /// Associations that may write the `writable` attributes.
    pub write: AssociationSet,
    pub writable: IdSet,
    /// Associations that may invoke the `methods`.
    pub invoke: AssociationSet,
    pub methods: IdSet,
}

impl AccessRule {
    pub fn can_read(&self, who: Association) -> bool {
        self.read.contains(who)
    }

    pub fn can_write(&self, who: Association, attribute: i8) -> bool {
        self.write.contains(who) && self.writable.contains(attribute)
    }

    pub fn can_invoke(&self, who: Association, method: i8) -> bool {
        self.invoke.contains(who) && self.methods.contains(method)
    }
}

/// One COSEM object of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    pub kinds: KindSet,
    pub class_id: u16,
    pub version: u8,
    pub logical_name: ObisCode,
    /// snake_case, e.g. `block_load_profile`.
    pub name: String,
    /// Unit and default scaler, for registers.
    pub scaler_unit: Option<ScalerUnit>,
    pub access: AccessRule,
}

impl ObjectDef {
    pub fn class(&self) -> Option<&'static InterfaceClass> {
        InterfaceClass::get(self.class_id)
    }
}

/// The catalogue: objects and their access rules, looked up per meter kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    objects: Vec<ObjectDef>,
}

impl Catalogue {
    /// The built-in catalogue (parsed once).
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Catalogue::parse(CATALOGUE_TABLE).expect("the built-in catalogue table parses (tested)")
        })
    }

    /// Reads a catalogue table (the format of `tables/catalogue.txt`). Refuses unknown classes,
    /// attributes or methods the class does not have, and an OBIS code listed twice for the
    /// same meter kind.
    pub fn parse(text: &str) -> Result<Catalogue, TableError> {
        let mut objects: Vec<ObjectDef> = Vec::new();
        for (line, cells) in table::rows(text) {
            let at = At {
                table: "catalogue",
                line,
            };
            let [
                kinds,
                ic,
                ver,
                obis,
                name,
                unit,
                scaler,
                read,
                write,
                wattrs,
                invoke,
                methods,
            ] = at.cells(&cells)?;
            let class_id: u16 = at.num("class id", ic)?;
            let class = InterfaceClass::get(class_id)
                .ok_or_else(|| at.err(format!("unknown interface class {class_id}")))?;
            let scaler_unit = match (unit, scaler) {
                ("-", "-") => None,
                ("-", _) => return Err(at.err("a scaler needs a unit")),
                (u, "-") => Some(ScalerUnit::unscaled(Unit(at.num("unit", u)?))),
                (u, s) => Some(ScalerUnit::new(
                    at.num("scaler", s)?,
                    Unit(at.num("unit", u)?),
                )),
            };
            if scaler_unit.is_some() && class.scaler_unit_attribute().is_none() {
                return Err(at.err(format!("class {class_id} has no scaler/unit")));
            }
            let assoc = |s: &str| {
                AssociationSet::from_letters(s)
                    .ok_or_else(|| at.err(format!("associations {s:?}: use letters PRUSF or -")))
            };
            let access = AccessRule {
                read: assoc(read)?,
                write: assoc(write)?,
                writable: IdSet::parse(at, wattrs)?,
                invoke: assoc(invoke)?,
                methods: IdSet::parse(at, methods)?,
            };
            if let Some(a) = access.writable.iter().find(|a| !class.has_attribute(*a)) {
                return Err(at.err(format!("class {class_id} has no attribute {a}")));
            }
            if let Some(m) = access.methods.iter().find(|m| !class.has_method(*m)) {
                return Err(at.err(format!("class {class_id} has no method {m}")));
            }
            let def = ObjectDef {
                kinds: KindSet::parse(at, kinds)?,
                class_id,
                version: at.num("version", ver)?,
                logical_name: at.obis(obis)?,
                name: name.to_string(),
                scaler_unit,
                access,
            };
            if let Some(dup) = objects
                .iter()
                .find(|o| o.logical_name == def.logical_name && o.kinds.overlaps(def.kinds))
            {
                return Err(at.err(format!(
                    "{} is listed twice for the same meter kind ({} and {})",
                    def.logical_name, dup.name, def.name
                )));
            }
            objects.push(def);
        }
        Ok(Catalogue { objects })
    }

    /// Every object, for every kind.
    pub fn objects(&self) -> &[ObjectDef] {
        &self.objects
    }

    /// The objects a meter of this kind has.
    pub fn for_kind(&self, kind: MeterKind) -> impl Iterator<Item = &ObjectDef> {
        self.objects.iter().filter(move |o| o.kinds.contains(kind))
    }

    pub fn get(&self, kind: MeterKind, logical_name: ObisCode) -> Option<&ObjectDef> {
        self.for_kind(kind).find(|o| o.logical_name == logical_name)
    }

    pub fn by_name(&self, kind: MeterKind, name: &str) -> Option<&ObjectDef> {
        self.for_kind(kind).find(|o| o.name == name)
    }

    fn resolve(
        &self,
        kind: MeterKind,
        class_id: u16,
        logical_name: ObisCode,
    ) -> Result<&ObjectDef, DataAccessResult> {
        let def = self
            .get(kind, logical_name)
            .ok_or(DataAccessResult::ObjectUndefined)?;
        if def.class_id != class_id {
            return Err(DataAccessResult::ObjectClassInconsistent);
        }
        Ok(def)
    }

    /// May the association on `client_sap` GET this attribute? The object must exist for this
    /// kind of meter, with this class, and have the attribute.
    pub fn check_get(
        &self,
        kind: MeterKind,
        client_sap: u16,
        class_id: u16,
        logical_name: ObisCode,
        attribute: i8,
    ) -> Result<&ObjectDef, DataAccessResult> {
        self.check_attribute(
            kind,
            client_sap,
            class_id,
            logical_name,
            attribute,
            |rule, who| rule.can_read(who),
        )
    }

    /// May the association on `client_sap` SET this attribute?
    pub fn check_set(
        &self,
        kind: MeterKind,
        client_sap: u16,
        class_id: u16,
        logical_name: ObisCode,
        attribute: i8,
    ) -> Result<&ObjectDef, DataAccessResult> {
        self.check_attribute(
            kind,
            client_sap,
            class_id,
            logical_name,
            attribute,
            |rule, who| rule.can_write(who, attribute),
        )
    }

    fn check_attribute(
        &self,
        kind: MeterKind,
        client_sap: u16,
        class_id: u16,
        logical_name: ObisCode,
        attribute: i8,
        allowed: impl Fn(&AccessRule, Association) -> bool,
    ) -> Result<&ObjectDef, DataAccessResult> {
        let def = self.resolve(kind, class_id, logical_name)?;
        if !def.class().is_some_and(|c| c.has_attribute(attribute)) {
            return Err(DataAccessResult::ObjectUndefined);
        }
        match Association::from_client_sap(client_sap) {
            Some(who) if allowed(&def.access, who) => Ok(def),
            _ => Err(DataAccessResult::ReadWriteDenied),
        }
    }

    /// May the association on `client_sap` invoke this method?
    pub fn check_action(
        &self,
        kind: MeterKind,
        client_sap: u16,
        class_id: u16,
        logical_name: ObisCode,
        method: i8,
    ) -> Result<&ObjectDef, ActionResult> {
        let def = self
            .resolve(kind, class_id, logical_name)
            .map_err(|e| match e {
                DataAccessResult::ObjectClassInconsistent => ActionResult::ObjectClassInconsistent,
                _ => ActionResult::ObjectUndefined,
            })?;
        if !def.class().is_some_and(|c| c.has_method(method)) {
            return Err(ActionResult::ObjectUndefined);
        }
        match Association::from_client_sap(client_sap) {
            Some(who) if def.access.can_invoke(who, method) => Ok(def),
            _ => Err(ActionResult::ReadWriteDenied),
        }
    }
}

/// Well-known logical names.
pub mod obis {
    use dlms::ObisCode;

    pub const CLOCK: ObisCode = ObisCode::must("0.0.1.0.0.255");
    pub const LOGICAL_DEVICE_NAME: ObisCode = ObisCode::must("0.0.42.0.0.255");
    pub const METER_SERIAL_NUMBER: ObisCode = ObisCode::must("0.0.96.1.0.255");
    pub const MANUFACTURER_NAME: ObisCode = ObisCode::must("0.0.96.1.1.255");
    pub const FIRMWARE_VERSION: ObisCode = ObisCode::must("1.0.0.2.0.255");
    pub const INSTANTANEOUS_PROFILE: ObisCode = ObisCode::must("1.0.94.91.0.255");
    pub const BLOCK_LOAD_PROFILE: ObisCode = ObisCode::must("1.0.99.1.0.255");
    pub const DAILY_LOAD_PROFILE: ObisCode = ObisCode::must("1.0.99.2.0.255");
    pub const BILLING_PROFILE: ObisCode = ObisCode::must("1.0.98.1.0.255");
    pub const NAME_PLATE_PROFILE: ObisCode = ObisCode::must("0.0.94.91.10.255");
    pub const EVENT_STATUS_WORD: ObisCode = ObisCode::must("0.0.94.91.18.255");
    pub const EVENT_STATUS_WORD_FILTER: ObisCode = ObisCode::must("0.0.94.91.26.255");
    pub const DISCONNECT_CONTROL: ObisCode = ObisCode::must("0.0.96.3.10.255");
    pub const LIMITER: ObisCode = ObisCode::must("0.0.17.0.0.255");
    pub const PUSH_SETUP_INSTANTANEOUS: ObisCode = ObisCode::must("0.0.25.9.0.255");
    pub const PUSH_SETUP_ALERT: ObisCode = ObisCode::must("0.4.25.9.0.255");
    pub const IMAGE_TRANSFER: ObisCode = ObisCode::must("0.0.44.0.0.255");
    pub const IMAGE_ACTIVATION_SCHEDULE: ObisCode = ObisCode::must("0.0.15.0.2.255");
    pub const ACTIVITY_CALENDAR: ObisCode = ObisCode::must("0.0.13.0.0.255");
    pub const BILLING_DATES: ObisCode = ObisCode::must("0.0.15.0.0.255");
    pub const MD_RESET_SCRIPT: ObisCode = ObisCode::must("0.0.10.0.1.255");
    pub const DEMAND_INTEGRATION_PERIOD: ObisCode = ObisCode::must("1.0.0.8.0.255");
    pub const PROFILE_CAPTURE_PERIOD: ObisCode = ObisCode::must("1.0.0.8.4.255");
    pub const METERING_MODE: ObisCode = ObisCode::must("0.0.94.96.19.255");
    pub const PAYMENT_MODE: ObisCode = ObisCode::must("0.0.94.96.20.255");
    pub const CURRENT_BALANCE: ObisCode = ObisCode::must("0.0.94.96.24.255");
    pub const BILLING_DATE: ObisCode = ObisCode::must("0.0.0.1.2.255");
    pub const BILLING_COUNT: ObisCode = ObisCode::must("0.0.0.1.0.255");

    /// Event log of category `e` (0–6): 0.0.99.98.e.255.
    pub const fn event_log(e: u8) -> ObisCode {
        ObisCode::new(0, 0, 99, 98, e, 255)
    }

    /// Current event code register of category `e` (0–6): 0.0.96.11.e.255.
    pub const fn current_event_code(e: u8) -> ObisCode {
        ObisCode::new(0, 0, 96, 11, e, 255)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_KINDS: [MeterKind; 3] = MeterKind::ALL;

    #[test]
    fn builtin_parses_without_duplicates_per_kind() {
        let cat = Catalogue::parse(CATALOGUE_TABLE).unwrap();
        assert!(cat.objects().len() > 100);
        for kind in ALL_KINDS {
            let mut seen = std::collections::HashSet::new();
            for o in cat.for_kind(kind) {
                assert!(
                    seen.insert(o.logical_name),
                    "{} twice for {kind:?}",
                    o.logical_name
                );
            }
        }
    }

    #[test]
    fn duplicates_and_bad_rows_are_refused_with_the_line() {
        let dup = "all | 1 | 0 | 0.0.96.1.0.255 | a | - | - | P | - | - | - | -\n\
                   1P  | 1 | 0 | 0.0.96.1.0.255 | b | - | - | P | - | - | - | -\n";
        assert_eq!(Catalogue::parse(dup).unwrap_err().line, 2);
        // the same OBIS for disjoint kinds is fine
        let split = "1P | 1 | 0 | 0.0.96.1.0.255 | a | - | - | P | - | - | - | -\n\
                     3P | 1 | 0 | 0.0.96.1.0.255 | b | - | - | P | - | - | - | -\n";
        assert!(Catalogue::parse(split).is_ok());
        let bad_method = "\n1P | 1 | 0 | 0.0.96.1.0.255 | a | - | - | P | - | - | U | 1\n";
        let e = Catalogue::parse(bad_method).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("no method 1"), "{e}");
        assert!(
            Catalogue::parse("all | 99 | 0 | 1.2.3.4.5.6 | x | - | - | - | - | - | - | -").is_err()
        );
        assert!(Catalogue::parse("all | 1 | 0 | 1.2.3.4.5.6 | x").is_err());
    }

    #[test]
    fn units_and_kinds() {
        let cat = Catalogue::builtin();
        let one = MeterKind::SinglePhaseWholeCurrent;
        let ct = MeterKind::ThreePhaseCtOperated;
        let kwh = cat.get(one, ObisCode::must("1.0.1.8.0.255")).unwrap();
        assert_eq!(kwh.scaler_unit, Some(ScalerUnit::new(0, Unit::WATT_HOUR)));
        assert_eq!(
            cat.by_name(one, "voltage")
                .unwrap()
                .scaler_unit
                .unwrap()
                .unit,
            Unit::VOLT
        );
        assert!(cat.get(one, ObisCode::must("1.0.32.7.0.255")).is_none());
        assert!(cat.get(ct, obis::DISCONNECT_CONTROL).is_none());
        assert!(cat.get(ct, ObisCode::must("1.0.0.4.2.255")).is_some());
        let dc = cat.get(one, obis::DISCONNECT_CONTROL).unwrap();
        assert_eq!((dc.class_id, dc.version), (70, 0));
    }

    #[test]
    fn access_rights_per_association() {
        let cat = Catalogue::builtin();
        let k = MeterKind::SinglePhaseWholeCurrent;
        let (public, reader, utility, push, fw) = (16, 32, 48, 64, 80);
        // public reads the clock and the name plate basics, not the block load profile
        assert!(cat.check_get(k, public, 8, obis::CLOCK, 2).is_ok());
        assert!(
            cat.check_get(k, public, 1, obis::METER_SERIAL_NUMBER, 2)
                .is_ok()
        );
        assert_eq!(
            cat.check_get(k, public, 7, obis::BLOCK_LOAD_PROFILE, 2)
                .unwrap_err(),
            DataAccessResult::ReadWriteDenied
        );
        // the meter reader reads everything but changes nothing
        for o in cat
            .for_kind(k)
            .filter(|o| o.class_id != 15 && o.class_id != 64)
        {
            assert!(
                cat.check_get(k, reader, o.class_id, o.logical_name, 2)
                    .is_ok(),
                "{}",
                o.name
            );
        }
        assert_eq!(
            cat.check_set(k, reader, 8, obis::CLOCK, 2).unwrap_err(),
            DataAccessResult::ReadWriteDenied
        );
        assert_eq!(
            cat.check_action(k, reader, 70, obis::DISCONNECT_CONTROL, 1)
                .unwrap_err(),
            ActionResult::ReadWriteDenied
        );
        // utility settings sets the clock, disconnects, resets MD, but no firmware upgrade
        assert!(cat.check_set(k, utility, 8, obis::CLOCK, 2).is_ok());
        assert!(
            cat.check_action(k, utility, 70, obis::DISCONNECT_CONTROL, 1)
                .is_ok()
        );
        assert!(
            cat.check_action(k, utility, 70, obis::DISCONNECT_CONTROL, 2)
                .is_ok()
        );
        assert!(
            cat.check_action(k, utility, 9, obis::MD_RESET_SCRIPT, 1)
                .is_ok()
        );
        assert!(
            cat.check_set(k, utility, 1, obis::PROFILE_CAPTURE_PERIOD, 2)
                .is_ok()
        );
        assert!(
            cat.check_action(k, utility, 18, obis::IMAGE_TRANSFER, 1)
                .is_err()
        );
        // firmware association: image transfer, nothing else
        assert!(cat.check_action(k, fw, 18, obis::IMAGE_TRANSFER, 2).is_ok());
        assert!(
            cat.check_action(k, fw, 70, obis::DISCONNECT_CONTROL, 1)
                .is_err()
        );
        // every client reads the current association; HLS clients answer the challenge on it
        let current = ObisCode::must("0.0.40.0.0.255");
        assert!(cat.check_get(k, public, 15, current, 2).is_ok());
        assert!(cat.check_action(k, utility, 15, current, 1).is_ok());
        assert!(cat.check_action(k, fw, 15, current, 1).is_ok());
        assert!(cat.check_action(k, public, 15, current, 1).is_err());
        // push reads what it pushes
        assert!(
            cat.check_get(k, push, 1, obis::EVENT_STATUS_WORD, 2)
                .is_ok()
        );
        // never the logical name, nor attributes or methods the class lacks, nor unknown SAPs
        assert!(cat.check_set(k, utility, 8, obis::CLOCK, 1).is_err());
        assert_eq!(
            cat.check_get(k, reader, 8, obis::CLOCK, 10).unwrap_err(),
            DataAccessResult::ObjectUndefined
        );
        assert_eq!(
            cat.check_action(k, utility, 70, obis::DISCONNECT_CONTROL, 3)
                .unwrap_err(),
            ActionResult::ObjectUndefined
        );
        assert_eq!(
            cat.check_get(k, 17, 8, obis::CLOCK, 2).unwrap_err(),
            DataAccessResult::ReadWriteDenied
        );
        assert_eq!(
            cat.check_get(k, reader, 3, obis::CLOCK, 2).unwrap_err(),
            DataAccessResult::ObjectClassInconsistent
        );
        assert_eq!(
            cat.check_get(k, reader, 1, ObisCode::must("9.9.9.9.9.9"), 2)
                .unwrap_err(),
            DataAccessResult::ObjectUndefined
        );
    }
}
