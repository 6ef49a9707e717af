//! Money: integer paise (1 rupee = 100 paise), never floats. Sums are checked: an amount beyond
//! ±9.2 × 10^16 rupees is an error, not a wrapped number.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in paise; negative for a debt.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Paise(pub i64);

impl Paise {
    pub const ZERO: Paise = Paise(0);

    pub fn from_rupees(rupees: i64) -> Option<Paise> {
        rupees.checked_mul(100).map(Paise)
    }

    pub fn checked_add(self, other: Paise) -> Option<Paise> {
        self.0.checked_add(other.0).map(Paise)
    }

    pub fn checked_sub(self, other: Paise) -> Option<Paise> {
        self.0.checked_sub(other.0).map(Paise)
    }

    /// An amount in rupees as people write it: `500`, `499.5`, `499.50` (no sign, no
    /// grouping, at most two decimals).
    pub fn parse_rupees(s: &str) -> Result<Paise, String> {
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let bad = || format!("{s:?} is not an amount in rupees (e.g. 500 or 499.50)");
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        if frac.len() > 2 || whole.is_empty() || !digits(whole) || !digits(frac) {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<2}").parse().map_err(|_| bad())?
        };
        whole
            .checked_mul(100)
            .and_then(|p| p.checked_add(frac))
            .map(Paise)
            .ok_or_else(bad)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The amount for text that has no ₹ (an SMS in GSM-7, a PDF's built-in fonts):
    /// `Rs 1,23,456.78`, `-Rs 300.00`.
    pub fn ascii(self) -> String {
        self.to_string().replacen('₹', "Rs ", 1)
    }
}

impl fmt::Display for Paise {
    /// `₹1,23,456.78` in the Indian grouping (lakhs and crores), `-₹300.00` for a debt.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (rupees, paise) = (abs / 100, abs % 100);
        let digits = rupees.to_string();
        let grouped = if digits.len() <= 3 {
            digits
        } else {
            let (head, last3) = digits.split_at(digits.len() - 3);
            let mut parts: Vec<&str> = Vec::new();
            let mut rest = head;
            while rest.len() > 2 {
                let (h, t) = rest.split_at(rest.len() - 2);
                parts.push(t);
                rest = h;
            }
            if !rest.is_empty() {
                parts.push(rest);
            }
            parts.reverse();
            format!("{},{last3}", parts.join(","))
        };
        write!(f, "{sign}₹{grouped}.{paise:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_whole_rupees_and_paise() {
        assert_eq!(Paise::parse_rupees("500"), Ok(Paise(50_000)));
        assert_eq!(Paise::parse_rupees("499.5"), Ok(Paise(49_950)));
        assert_eq!(Paise::parse_rupees("0.05"), Ok(Paise(5)));
        for bad in ["", ".5", "5.-1", "5.123", "-5", "5,00", "1e3"] {
            assert!(Paise::parse_rupees(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_print_in_indian_grouping() {
        assert_eq!(Paise(12_345_678).to_string(), "₹1,23,456.78");
        assert_eq!(Paise(-30_000).to_string(), "-₹300.00");
        assert_eq!(Paise(5).to_string(), "₹0.05");
        assert_eq!(Paise(100_000_000_000).to_string(), "₹1,00,00,00,000.00");
        assert_eq!(Paise(i64::MIN).to_string(), "-₹92,23,37,20,36,85,47,758.08");
    }

    #[test]
    fn sums_are_checked() {
        assert_eq!(Paise(i64::MAX).checked_add(Paise(1)), None);
        assert_eq!(Paise::from_rupees(300), Some(Paise(30_000)));
        assert_eq!(Paise::from_rupees(i64::MAX), None);
    }
}
