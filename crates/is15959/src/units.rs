//! Physical units (the DLMS Blue Book unit enumeration) and scaler/unit: the `{integer scaler,
//! enum unit}` structure of a register's attribute 3, and applying it to a raw value exactly.
//!
//! A scaled value is `raw × 10^scaler`. [`ScalerUnit::apply`] keeps it exact as a [`Decimal`]
//! (an `i128` mantissa and a power-of-ten exponent); [`Decimal::to_i64`] gives an integer only
//! when no digit is lost, [`Decimal::to_f64`] gives the nearest float. Energies become integer
//! Wh/VAh/varh this way; a fractional energy is reported as an error, never rounded.

use std::fmt;

use dlms::Data;

/// A DLMS physical unit: the enumeration value of the Blue Book unit table. Values the table
/// does not name are kept (as `Unit(n)`), never rejected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit(pub u8);

/// Blue Book unit table: (value, symbol, name).
const UNITS: &[(u8, &str, &str)] = &[
    (1, "a", "year"),
    (2, "mo", "month"),
    (3, "wk", "week"),
    (4, "d", "day"),
    (5, "h", "hour"),
    (6, "min", "minute"),
    (7, "s", "second"),
    (8, "°", "phase angle"),
    (9, "°C", "temperature"),
    (10, "currency", "local currency"),
    (11, "m", "metre"),
    (12, "m/s", "speed"),
    (13, "m³", "volume"),
    (14, "m³", "corrected volume"),
    (15, "m³/h", "volume flux"),
    (16, "m³/h", "corrected volume flux"),
    (17, "m³/d", "volume flux"),
    (18, "m³/d", "corrected volume flux"),
    (19, "l", "litre"),
    (20, "kg", "kilogram"),
    (21, "N", "force"),
    (22, "Nm", "energy"),
    (23, "Pa", "pressure"),
    (24, "bar", "pressure"),
    (25, "J", "energy"),
    (26, "J/h", "thermal power"),
    (27, "W", "active power"),
    (28, "VA", "apparent power"),
    (29, "var", "reactive power"),
    (30, "Wh", "active energy"),
    (31, "VAh", "apparent energy"),
    (32, "varh", "reactive energy"),
    (33, "A", "current"),
    (34, "C", "electrical charge"),
    (35, "V", "voltage"),
    (36, "V/m", "electric field strength"),
    (37, "F", "capacitance"),
    (38, "Ω", "resistance"),
    (39, "Ωm²/m", "resistivity"),
    (40, "Wb", "magnetic flux"),
    (41, "T", "magnetic flux density"),
    (42, "A/m", "magnetic field strength"),
    (43, "H", "inductance"),
    (44, "Hz", "frequency"),
    (45, "1/(Wh)", "active energy meter constant"),
    (46, "1/(varh)", "reactive energy meter constant"),
    (47, "1/(VAh)", "apparent energy meter constant"),
    (48, "V²h", "volt-squared hours"),
    (49, "A²h", "ampere-squared hours"),
    (50, "kg/s", "mass flux"),
    (51, "S", "conductance"),
    (52, "K", "temperature"),
    (53, "1/(V²h)", "volt-squared hour meter constant"),
    (54, "1/(A²h)", "ampere-squared hour meter constant"),
    (55, "1/m³", "volume meter constant"),
    (56, "%", "percentage"),
    (57, "Ah", "ampere-hours"),
    (60, "Wh/m³", "energy per volume"),
    (61, "J/m³", "calorific value"),
    (62, "Mol %", "molar fraction"),
    (63, "g/m³", "mass density"),
    (64, "Pa s", "dynamic viscosity"),
    (65, "J/kg", "specific energy"),
    (66, "g/cm²", "pressure"),
    (67, "atm", "pressure"),
    (70, "dBm", "signal strength"),
    (71, "dBµV", "signal strength"),
    (72, "dB", "logarithmic unit"),
    (254, "", "other unit"),
    (255, "", "count (no unit)"),
];

impl Unit {
    pub const MINUTE: Unit = Unit(6);
    pub const SECOND: Unit = Unit(7);
    pub const CURRENCY: Unit = Unit(10);
    pub const WATT: Unit = Unit(27);
    pub const VOLT_AMPERE: Unit = Unit(28);
    pub const VAR: Unit = Unit(29);
    pub const WATT_HOUR: Unit = Unit(30);
    pub const VOLT_AMPERE_HOUR: Unit = Unit(31);
    pub const VAR_HOUR: Unit = Unit(32);
    pub const AMPERE: Unit = Unit(33);
    pub const VOLT: Unit = Unit(35);
    pub const HERTZ: Unit = Unit(44);
    pub const PERCENT: Unit = Unit(56);
    pub const OTHER: Unit = Unit(254);
    /// "count": a number without a unit (power factor, counters).
    pub const COUNT: Unit = Unit(255);

    fn entry(self) -> Option<&'static (u8, &'static str, &'static str)> {
        UNITS.iter().find(|(v, _, _)| *v == self.0)
    }

    /// The display symbol (`"Wh"`, `"V"`); empty for count; `None` for values the table lacks.
    pub fn symbol(self) -> Option<&'static str> {
        self.entry().map(|(_, s, _)| *s)
    }

    /// What the unit measures, in words.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|(_, _, n)| *n)
    }

    /// Whether the unit is an energy counted by a meter (Wh, VAh, varh), which must stay exact.
    pub fn is_energy(self) -> bool {
        matches!(self.0, 30..=32)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(s) => f.write_str(s),
            None => write!(f, "unit {}", self.0),
        }
    }
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Unit({} {})", self.0, self)
    }
}

/// A register's scaler and unit (attribute 3 of IC 3, 4, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScalerUnit {
    pub scaler: i8,
    pub unit: Unit,
}

/// Why a value could not be read or scaled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    #[error("a scaler/unit is a structure {{integer, enum}}, found {0}")]
    NotScalerUnit(String),
    #[error("expected a number, found {0}")]
    NotANumber(String),
    #[error("{value} {unit} is not a whole number: energies are kept exact")]
    NotWhole { value: String, unit: Unit },
    #[error("{0} does not fit in 64 bits")]
    Overflow(String),
}

impl ScalerUnit {
    pub const fn new(scaler: i8, unit: Unit) -> Self {
        ScalerUnit { scaler, unit }
    }

    /// Unit only, scaler 0.
    pub const fn unscaled(unit: Unit) -> Self {
        ScalerUnit { scaler: 0, unit }
    }

    /// Parses `structure {integer scaler, enum unit}`. Lenient on the integer type of the scaler
    /// (some meters send unsigned or long) so long as the value fits an `i8`.
    pub fn from_data(d: &Data) -> Result<Self, ScaleError> {
        let bad = || ScaleError::NotScalerUnit(describe(d));
        let Data::Structure(items) = d else {
            return Err(bad());
        };
        let [scaler, unit] = items.as_slice() else {
            return Err(bad());
        };
        let scaler = match scaler {
            Data::Integer(v) => *v,
            other => other
                .as_i64()
                .and_then(|v| i8::try_from(v).ok())
                .ok_or_else(bad)?,
        };
        let unit = match unit {
            Data::Enum(u) | Data::Unsigned(u) => Unit(*u),
            _ => return Err(bad()),
        };
        Ok(ScalerUnit { scaler, unit })
    }

    pub fn to_data(&self) -> Data {
        Data::Structure(vec![Data::Integer(self.scaler), Data::Enum(self.unit.0)])
    }

    /// `raw × 10^scaler`, exactly.
    pub fn apply(&self, raw: i128) -> Decimal {
        Decimal {
            mantissa: raw,
            exponent: self.scaler,
        }
    }

    /// Scales a COSEM integer value exactly. Floats are refused here (see [`Self::apply_f64`]).
    pub fn apply_data(&self, raw: &Data) -> Result<Decimal, ScaleError> {
        let raw = match raw {
            Data::Long64Unsigned(v) => *v as i128,
            Data::Float32(_) | Data::Float64(_) | Data::Boolean(_) => {
                return Err(ScaleError::NotANumber(describe(raw)));
            }
            other => other
                .as_i64()
                .ok_or_else(|| ScaleError::NotANumber(describe(other)))?
                as i128,
        };
        Ok(self.apply(raw))
    }

    /// Scales any numeric value (integers and floats) to the nearest `f64`.
    pub fn apply_f64(&self, raw: &Data) -> Result<f64, ScaleError> {
        match raw {
            Data::Float32(_) | Data::Float64(_) => {
                let v = raw
                    .as_f64()
                    .ok_or_else(|| ScaleError::NotANumber(describe(raw)))?;
                Ok(v * 10f64.powi(self.scaler as i32))
            }
            _ => Ok(self.apply_data(raw)?.to_f64()),
        }
    }

    /// Scales an integer value into a whole number of the unit (Wh for energies), failing
    /// rather than losing a digit.
    pub fn apply_exact_i64(&self, raw: &Data) -> Result<i64, ScaleError> {
        let d = self.apply_data(raw)?;
        d.to_i64().ok_or_else(|| {
            if d.is_whole() {
                ScaleError::Overflow(d.to_string())
            } else {
                ScaleError::NotWhole {
                    value: d.to_string(),
                    unit: self.unit,
                }
            }
        })
    }
}

impl fmt::Display for ScalerUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "×10^{} {}", self.scaler, self.unit)
    }
}

/// An exact decimal number: `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub mantissa: i128,
    pub exponent: i8,
}

impl Decimal {
    /// Whether the value has no fractional part.
    pub fn is_whole(&self) -> bool {
        if self.exponent >= 0 || self.mantissa == 0 {
            return true;
        }
        match 10i128.checked_pow(self.exponent.unsigned_abs() as u32) {
            Some(p) => self.mantissa % p == 0,
            None => false,
        }
    }

    /// The value as an integer, when it is whole and fits; `None` otherwise.
    pub fn to_i64(&self) -> Option<i64> {
        if self.mantissa == 0 {
            return Some(0);
        }
        let p = 10i128.checked_pow(self.exponent.unsigned_abs() as u32);
        let v = if self.exponent >= 0 {
            self.mantissa.checked_mul(p?)?
        } else {
            let p = p?;
            if self.mantissa % p != 0 {
                return None;
            }
            self.mantissa / p
        };
        i64::try_from(v).ok()
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        // When the mantissa and 10^|e| are both exact in an f64 (|m| ≤ 2^53, |e| ≤ 22), one
        // multiplication or division rounds once, correctly (Clinger's fast path): the same
        // result as parsing the text, without making it. Meter values always take this path.
        const EXACT: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
            1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
        ];
        let e = self.exponent.unsigned_abs() as usize;
        if self.mantissa.unsigned_abs() <= 1 << 53 && e < EXACT.len() {
            let m = self.mantissa as f64;
            return if self.exponent >= 0 {
                m * EXACT[e]
            } else {
                m / EXACT[e]
            };
        }
        // Otherwise parsing the exact decimal text rounds once, correctly; multiplying by 10^e
        // would not.
        self.to_string().parse().unwrap_or(f64::NAN)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.exponent >= 0 {
            let zeros = if self.mantissa == 0 {
                0
            } else {
                self.exponent as usize
            };
            return write!(f, "{sign}{digits}{}", "0".repeat(zeros));
        }
        let frac = self.exponent.unsigned_abs() as usize;
        let padded = format!("{digits:0>width$}", width = frac + 1);
        let (int, fraction) = padded.split_at(padded.len() - frac);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{fraction}")
        }
    }
}

/// A short description of a value for error messages.
pub(crate) fn describe(d: &Data) -> String {
    let s = format!("{d:?}");
    if s.chars().count() > 60 {
        let short: String = s.chars().take(57).collect();
        format!("{short}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_to_f64_matches_parsing_its_text() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200_000 {
            let bits = next() % 64;
            let mantissa =
                (next() >> (63 - bits.min(62))) as i128 * if next() % 2 == 0 { 1 } else { -1 };
            let exponent = (next() % 61) as i8 - 30;
            let d = Decimal { mantissa, exponent };
            let parsed: f64 = d.to_string().parse().unwrap();
            assert_eq!(d.to_f64().to_bits(), parsed.to_bits(), "{d}");
        }
        for (mantissa, exponent) in [(1 << 53, -22), ((1 << 53) + 1, -3), (i64::MAX as i128, 5)] {
            let d = Decimal { mantissa, exponent };
            assert_eq!(d.to_f64(), d.to_string().parse::<f64>().unwrap(), "{d}");
        }
    }

    #[test]
    fn unit_symbols() {
        assert_eq!(Unit::WATT_HOUR.to_string(), "Wh");
        assert_eq!(Unit(35).to_string(), "V");
        assert_eq!(Unit(44).symbol(), Some("Hz"));
        assert_eq!(Unit(6).to_string(), "min");
        assert_eq!(Unit(255).name(), Some("count (no unit)"));
        assert_eq!(Unit(200).to_string(), "unit 200");
        assert!(Unit::VAR_HOUR.is_energy() && !Unit::WATT.is_energy());
    }

    #[test]
    fn scaler_unit_parses_and_round_trips() {
        let d = Data::Structure(vec![Data::Integer(-2), Data::Enum(35)]);
        let su = ScalerUnit::from_data(&d).unwrap();
        assert_eq!(su, ScalerUnit::new(-2, Unit::VOLT));
        assert_eq!(su.to_data(), d);
        assert!(ScalerUnit::from_data(&Data::Structure(vec![Data::Integer(0)])).is_err());
        assert!(ScalerUnit::from_data(&Data::Long(3)).is_err());
        assert!(
            ScalerUnit::from_data(&Data::Structure(vec![Data::Long(300), Data::Enum(1)])).is_err()
        );
    }

    #[test]
    fn applying_keeps_digits() {
        let kwh = ScalerUnit::new(3, Unit::WATT_HOUR);
        assert_eq!(
            kwh.apply_exact_i64(&Data::DoubleLongUnsigned(12_345)),
            Ok(12_345_000)
        );
        let wh = ScalerUnit::new(0, Unit::WATT_HOUR);
        assert_eq!(
            wh.apply_exact_i64(&Data::Long64Unsigned(u32::MAX as u64 + 7)),
            Ok(4_294_967_302)
        );
        let tenth = ScalerUnit::new(-1, Unit::WATT_HOUR);
        assert_eq!(tenth.apply_exact_i64(&Data::DoubleLong(-1230)), Ok(-123));
        assert!(matches!(
            tenth.apply_exact_i64(&Data::DoubleLong(1234)),
            Err(ScaleError::NotWhole { .. })
        ));
        assert!(matches!(
            ScalerUnit::new(100, Unit::WATT_HOUR).apply_exact_i64(&Data::Unsigned(1)),
            Err(ScaleError::Overflow(_))
        ));
        assert_eq!(
            ScalerUnit::new(-1, Unit::VOLT).apply_f64(&Data::LongUnsigned(2305)),
            Ok(230.5)
        );
        assert_eq!(
            ScalerUnit::new(-3, Unit::AMPERE).apply_f64(&Data::Float32(1500.0)),
            Ok(1.5)
        );
        assert!(wh.apply_data(&Data::OctetString(vec![1])).is_err());
    }

    #[test]
    fn decimals_print_exactly() {
        let d = |mantissa, exponent| Decimal { mantissa, exponent }.to_string();
        assert_eq!(d(12345, -2), "123.45");
        assert_eq!(d(-5, -3), "-0.005");
        assert_eq!(d(1200, -2), "12");
        assert_eq!(d(7, 2), "700");
        assert_eq!(d(0, 5), "0");
        assert_eq!(
            Decimal {
                mantissa: 2305,
                exponent: -1
            }
            .to_f64(),
            230.5
        );
    }
}
