//! COSEM date, time and date-time (Blue Book 4.1.6.1), with their "not specified" wildcards,
//! deviation and clock status, and conversion to and from chrono.
//!
//! Deviation follows the Blue Book: minutes from local time to UTC, so `UTC = local + deviation`
//! and India (UTC+05:30) is `-330`.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use crate::codec::{DecodeError, Reader};

/// Date: year (0xFFFF = not specified), month (0xFF n/s, 0xFD DST end, 0xFE DST begin), day of
/// month (0xFF n/s, 0xFD second last, 0xFE last), day of week (1 = Monday … 7, 0xFF n/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub weekday: u8,
}

/// Time of day; each field 0xFF when not specified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Time {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub hundredths: u8,
}

/// Clock status bits (Blue Book: invalid, doubtful, different clock base, invalid status, DST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockStatus(pub u8);

impl ClockStatus {
    pub const OK: ClockStatus = ClockStatus(0);
    pub const INVALID_VALUE: u8 = 0x01;
    pub const DOUBTFUL_VALUE: u8 = 0x02;
    pub const DIFFERENT_CLOCK_BASE: u8 = 0x04;
    pub const INVALID_CLOCK_STATUS: u8 = 0x08;
    pub const DAYLIGHT_SAVING_ACTIVE: u8 = 0x80;
    pub const NOT_SPECIFIED: ClockStatus = ClockStatus(0xFF);
}

/// Date-time: 12 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub time: Time,
    /// Minutes, `UTC = local + deviation`; `0x8000` (as i16: `i16::MIN`) when not specified.
    pub deviation: i16,
    pub clock_status: ClockStatus,
}

/// Deviation "not specified".
pub const DEVIATION_NOT_SPECIFIED: i16 = i16::MIN;

impl Date {
    pub const LEN: usize = 5;
    pub const NOT_SPECIFIED: Date = Date {
        year: 0xFFFF,
        month: 0xFF,
        day: 0xFF,
        weekday: 0xFF,
    };

    pub fn to_bytes(&self) -> [u8; 5] {
        let y = self.year.to_be_bytes();
        [y[0], y[1], self.month, self.day, self.weekday]
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let d = Self::read(&mut r)?;
        r.finish("date")?;
        Ok(d)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [y0, y1, month, day, weekday] = r.array("date")?;
        Ok(Date {
            year: u16::from_be_bytes([y0, y1]),
            month,
            day,
            weekday,
        })
    }

    pub fn from_naive(d: NaiveDate) -> Self {
        Date {
            year: d.year() as u16,
            month: d.month() as u8,
            day: d.day() as u8,
            weekday: d.weekday().number_from_monday() as u8,
        }
    }

    /// The calendar date, when year, month and day are all specified and valid.
    pub fn to_naive(&self) -> Option<NaiveDate> {
        if self.year == 0xFFFF || self.month > 12 || self.day > 31 {
            return None;
        }
        NaiveDate::from_ymd_opt(self.year as i32, self.month as u32, self.day as u32)
    }
}

impl Time {
    pub const LEN: usize = 4;
    pub const NOT_SPECIFIED: Time = Time {
        hour: 0xFF,
        minute: 0xFF,
        second: 0xFF,
        hundredths: 0xFF,
    };

    pub fn to_bytes(&self) -> [u8; 4] {
        [self.hour, self.minute, self.second, self.hundredths]
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let t = Self::read(&mut r)?;
        r.finish("time")?;
        Ok(t)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let [hour, minute, second, hundredths] = r.array("time")?;
        Ok(Time {
            hour,
            minute,
            second,
            hundredths,
        })
    }
}

impl DateTime {
    pub const LEN: usize = 12;

    pub fn to_bytes(&self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..5].copy_from_slice(&self.date.to_bytes());
        out[5..9].copy_from_slice(&self.time.to_bytes());
        out[9..11].copy_from_slice(&self.deviation.to_be_bytes());
        out[11] = self.clock_status.0;
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(b);
        let dt = Self::read(&mut r)?;
        r.finish("date-time")?;
        Ok(dt)
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let date = Date::read(r)?;
        let time = Time::read(r)?;
        let deviation = r.u16("date-time deviation")? as i16;
        let clock_status = ClockStatus(r.u8("date-time clock status")?);
        Ok(DateTime {
            date,
            time,
            deviation,
            clock_status,
        })
    }

    /// Local time at the given UTC offset, deviation set accordingly, clock status OK.
    pub fn from_utc(t: chrono::DateTime<Utc>, offset: FixedOffset) -> Self {
        let local = t.with_timezone(&offset).naive_local();
        let mut dt = Self::from_naive_local(local);
        dt.deviation = -(offset.local_minus_utc() / 60) as i16;
        dt
    }

    /// A local date-time with deviation not specified and clock status OK.
    pub fn from_naive_local(local: NaiveDateTime) -> Self {
        DateTime {
            date: Date::from_naive(local.date()),
            time: Time {
                hour: local.hour() as u8,
                minute: local.minute() as u8,
                second: local.second() as u8,
                hundredths: (local.nanosecond() / 10_000_000).min(99) as u8,
            },
            deviation: DEVIATION_NOT_SPECIFIED,
            clock_status: ClockStatus::OK,
        }
    }

    /// The local wall-clock time, if date and time are fully specified. Unspecified hundredths
    /// count as zero.
    pub fn to_naive_local(&self) -> Option<NaiveDateTime> {
        let t = self.time;
        let hundredths = if t.hundredths == 0xFF {
            0
        } else {
            t.hundredths
        };
        if t.hour > 23 || t.minute > 59 || t.second > 59 || hundredths > 99 {
            return None;
        }
        self.date.to_naive()?.and_hms_milli_opt(
            t.hour as u32,
            t.minute as u32,
            t.second as u32,
            hundredths as u32 * 10,
        )
    }

    /// The instant this names. When the deviation is not specified, `assumed_offset` (the
    /// meter's configured zone, IST for Indian meters) is used.
    pub fn to_utc(&self, assumed_offset: FixedOffset) -> Option<chrono::DateTime<Utc>> {
        let local = self.to_naive_local()?;
        let offset = if self.deviation == DEVIATION_NOT_SPECIFIED {
            assumed_offset
        } else {
            FixedOffset::west_opt(self.deviation as i32 * 60)?
        };
        offset
            .from_local_datetime(&local)
            .single()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Indian Standard Time, UTC+05:30.
pub fn ist() -> FixedOffset {
    FixedOffset::east_opt(5 * 3600 + 30 * 60).expect("IST is a valid offset")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ist_instant() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 18, 45, 0).unwrap();
        let dt = DateTime::from_utc(t, ist());
        assert_eq!(dt.deviation, -330);
        assert_eq!((dt.time.hour, dt.time.minute), (0, 15));
        assert_eq!(dt.date.day, 27);
        assert_eq!(dt.date.weekday, 5); // Friday
        let back = DateTime::from_bytes(&dt.to_bytes()).unwrap();
        assert_eq!(back, dt);
        assert_eq!(back.to_utc(ist()), Some(t));
    }

    #[test]
    fn wildcards_do_not_convert() {
        let mut dt = DateTime::from_utc(Utc::now(), ist());
        dt.date.year = 0xFFFF;
        assert_eq!(dt.to_utc(ist()), None);
        assert!(DateTime::from_bytes(&[0; 11]).is_err());
    }
}
