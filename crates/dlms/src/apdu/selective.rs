//! Selective access to a profile generic (IC 7) buffer: the range descriptor (selector 1, by
//! restricting-object value, usually the clock) and the entry descriptor (selector 2, by row and
//! column numbers), their builders for a client and their parsers for a server, and
//! [`CaptureColumn`], the capture-object definition both use.

use crate::codec::DecodeError;
use crate::data::Data;
use crate::datetime::DateTime;
use crate::obis::ObisCode;

use super::SelectiveAccess;

/// Access selector of the range descriptor.
pub const RANGE_DESCRIPTOR: u8 = 1;
/// Access selector of the entry descriptor.
pub const ENTRY_DESCRIPTOR: u8 = 2;

/// One capture object of a profile (Blue Book IC 7 `capture_object_definition`): which
/// attribute of which object fills a column, and which element of it (`data_index`, 0 = all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CaptureColumn {
    pub class_id: u16,
    pub logical_name: ObisCode,
    pub attribute_index: i8,
    pub data_index: u16,
}

impl CaptureColumn {
    /// The clock's time attribute (class 8, 0.0.1.0.0.255, attribute 2): the restricting object
    /// of a range read and the first column of most profiles.
    pub const CLOCK: CaptureColumn = CaptureColumn {
        class_id: 8,
        logical_name: ObisCode::new(0, 0, 1, 0, 0, 255),
        attribute_index: 2,
        data_index: 0,
    };

    pub const fn new(class_id: u16, logical_name: ObisCode, attribute_index: i8) -> Self {
        CaptureColumn {
            class_id,
            logical_name,
            attribute_index,
            data_index: 0,
        }
    }

    /// `structure { long-unsigned class_id, octet-string(6) logical_name, integer attribute_index,
    /// long-unsigned data_index }`.
    pub fn to_data(&self) -> Data {
        Data::Structure(vec![
            Data::LongUnsigned(self.class_id),
            Data::OctetString(self.logical_name.0.to_vec()),
            Data::Integer(self.attribute_index),
            Data::LongUnsigned(self.data_index),
        ])
    }

    /// Parses a capture object definition. Integer fields are accepted in any integer type that
    /// holds their value, since meters are not all strict about it.
    pub fn from_data(data: &Data) -> Result<Self, DecodeError> {
        let what = "capture object definition";
        let [class_id, logical_name, attribute_index, data_index] = data.as_items().unwrap_or(&[])
        else {
            return Err(DecodeError::invalid(
                what,
                "expected a structure of 4 elements",
            ));
        };
        let logical_name = logical_name
            .as_octets()
            .and_then(|b| ObisCode::try_from(b).ok())
            .ok_or_else(|| {
                DecodeError::invalid(what, "logical name is not a 6-byte octet string")
            })?;
        Ok(CaptureColumn {
            class_id: integer(class_id, what, "class id")?,
            logical_name,
            attribute_index: integer(attribute_index, what, "attribute index")?,
            data_index: integer(data_index, what, "data index")?,
        })
    }
}

fn integer<T: TryFrom<i64>>(d: &Data, what: &'static str, field: &str) -> Result<T, DecodeError> {
    d.as_i64().and_then(|v| T::try_from(v).ok()).ok_or_else(|| {
        DecodeError::invalid(what, format!("{field} out of range or not an integer"))
    })
}

/// A parsed range descriptor (selector 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeDescriptor {
    /// The column the range applies to; the clock for every IS 15959 profile.
    pub restricting_object: CaptureColumn,
    pub from: DateTime,
    pub to: DateTime,
    /// Columns to return; empty means all.
    pub selected_values: Vec<CaptureColumn>,
}

/// A parsed entry descriptor (selector 2). Entries and columns count from 1; a `to` of 0 means
/// "to the last".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryDescriptor {
    pub from_entry: u32,
    pub to_entry: u32,
    pub from_selected_value: u16,
    pub to_selected_value: u16,
}

impl SelectiveAccess {
    /// Rows whose clock column lies in `from ..= to`, restricted to `columns` (empty = all
    /// columns). The date-times travel as 12-byte octet strings, as profile buffers carry them.
    pub fn by_range(from: &DateTime, to: &DateTime, columns: &[CaptureColumn]) -> Self {
        SelectiveAccess {
            selector: RANGE_DESCRIPTOR,
            parameters: Data::Structure(vec![
                CaptureColumn::CLOCK.to_data(),
                Data::OctetString(from.to_bytes().to_vec()),
                Data::OctetString(to.to_bytes().to_vec()),
                Data::Array(columns.iter().map(CaptureColumn::to_data).collect()),
            ]),
        }
    }

    /// Rows `from_entry ..= to_entry` and columns `from_col ..= to_col` (1-based; 0 as the upper
    /// bound means "to the last").
    pub fn by_entry(from_entry: u32, to_entry: u32, from_col: u16, to_col: u16) -> Self {
        SelectiveAccess {
            selector: ENTRY_DESCRIPTOR,
            parameters: Data::Structure(vec![
                Data::DoubleLongUnsigned(from_entry),
                Data::DoubleLongUnsigned(to_entry),
                Data::LongUnsigned(from_col),
                Data::LongUnsigned(to_col),
            ]),
        }
    }

    /// The range descriptor, for a server. From/to may be octet strings or tagged date-times.
    pub fn as_range(&self) -> Result<RangeDescriptor, DecodeError> {
        let what = "range descriptor";
        if self.selector != RANGE_DESCRIPTOR {
            return Err(DecodeError::invalid(
                what,
                format!("selector {}", self.selector),
            ));
        }
        let [restricting, from, to, selected] = self.parameters.as_items().unwrap_or(&[]) else {
            return Err(DecodeError::invalid(
                what,
                "expected a structure of 4 elements",
            ));
        };
        let date_time = |d: &Data| {
            d.as_datetime()
                .ok_or_else(|| DecodeError::invalid(what, "from/to value is not a date-time"))
        };
        let selected_values = match selected {
            Data::Null => Vec::new(),
            other => other
                .as_items()
                .ok_or_else(|| DecodeError::invalid(what, "selected values is not an array"))?
                .iter()
                .map(CaptureColumn::from_data)
                .collect::<Result<_, _>>()?,
        };
        Ok(RangeDescriptor {
            restricting_object: CaptureColumn::from_data(restricting)?,
            from: date_time(from)?,
            to: date_time(to)?,
            selected_values,
        })
    }

    /// The entry descriptor, for a server.
    pub fn as_entry(&self) -> Result<EntryDescriptor, DecodeError> {
        let what = "entry descriptor";
        if self.selector != ENTRY_DESCRIPTOR {
            return Err(DecodeError::invalid(
                what,
                format!("selector {}", self.selector),
            ));
        }
        let [from_entry, to_entry, from_col, to_col] = self.parameters.as_items().unwrap_or(&[])
        else {
            return Err(DecodeError::invalid(
                what,
                "expected a structure of 4 elements",
            ));
        };
        Ok(EntryDescriptor {
            from_entry: integer(from_entry, what, "from entry")?,
            to_entry: integer(to_entry, what, "to entry")?,
            from_selected_value: integer(from_col, what, "from selected value")?,
            to_selected_value: integer(to_col, what, "to selected value")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::{ClockStatus, Date, Time};

    fn at(hour: u8) -> DateTime {
        DateTime {
            date: Date {
                year: 2026,
                month: 3,
                day: 1,
                weekday: 7,
            },
            time: Time {
                hour,
                minute: 0,
                second: 0,
                hundredths: 0,
            },
            deviation: -330,
            clock_status: ClockStatus::OK,
        }
    }

    #[test]
    fn range_builder_and_parser_agree() {
        let kwh = CaptureColumn::new(3, ObisCode::new(1, 0, 1, 29, 0, 255), 2);
        let access = SelectiveAccess::by_range(&at(0), &at(6), &[CaptureColumn::CLOCK, kwh]);
        let range = access.as_range().unwrap();
        assert_eq!(range.restricting_object, CaptureColumn::CLOCK);
        assert_eq!((range.from, range.to), (at(0), at(6)));
        assert_eq!(range.selected_values, vec![CaptureColumn::CLOCK, kwh]);
        assert!(access.as_entry().is_err());
    }

    #[test]
    fn entry_builder_and_parser_agree() {
        let access = SelectiveAccess::by_entry(1, 96, 1, 0);
        assert_eq!(
            access.as_entry().unwrap(),
            EntryDescriptor {
                from_entry: 1,
                to_entry: 96,
                from_selected_value: 1,
                to_selected_value: 0
            }
        );
        assert!(access.as_range().is_err());
    }

    #[test]
    fn capture_column_rejects_wrong_shapes() {
        assert!(CaptureColumn::from_data(&Data::Null).is_err());
        let short_ln = Data::Structure(vec![
            Data::LongUnsigned(8),
            Data::OctetString(vec![0, 0, 1, 0, 0]),
            Data::Integer(2),
            Data::LongUnsigned(0),
        ]);
        assert!(CaptureColumn::from_data(&short_ln).is_err());
        let big_attr = Data::Structure(vec![
            Data::LongUnsigned(8),
            Data::OctetString(vec![0, 0, 1, 0, 0, 255]),
            Data::Long(300),
            Data::LongUnsigned(0),
        ]);
        assert!(CaptureColumn::from_data(&big_attr).is_err());
        let c = CaptureColumn::CLOCK;
        assert_eq!(CaptureColumn::from_data(&c.to_data()), Ok(c));
    }
}
