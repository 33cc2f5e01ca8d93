//! `date` (SEARCH, e.g. `1-Feb-1994`) and `date-time` (INTERNALDATE, APPEND, e.g.
//! `"17-Jul-1996 02:44:25 -0700"`).

use std::fmt;

use super::ValidationError;

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A calendar date (`date-day "-" date-month "-" date-year`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Validates and builds a date: year 0..=9999, month 1..=12, a day that exists.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, ValidationError> {
        if year > 9999 {
            return Err(ValidationError::OutOfRange {
                what: "year",
                value: year.into(),
            });
        }
        if !(1..=12).contains(&month) {
            return Err(ValidationError::OutOfRange {
                what: "month",
                value: month.into(),
            });
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(ValidationError::OutOfRange {
                what: "day",
                value: day.into(),
            });
        }
        Ok(Self { year, month, day })
    }

    /// Year.
    #[must_use]
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Month, 1 to 12.
    #[must_use]
    pub fn month(&self) -> u8 {
        self.month
    }

    /// Day of the month, from 1.
    #[must_use]
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The three-letter month name (`Jan` ... `Dec`).
    #[must_use]
    pub fn month_name(&self) -> &'static str {
        MONTHS
            .get(usize::from(self.month).saturating_sub(1))
            .copied()
            .unwrap_or("Jan")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl fmt::Display for Date {
    /// The SEARCH form, e.g. `1-Feb-1994`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.day, self.month_name(), self.year)
    }
}

/// A date and time with a zone offset (INTERNALDATE, APPEND date).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    date: Date,
    hour: u8,
    minute: u8,
    second: u8,
    zone_minutes: i16,
}

impl DateTime {
    /// Validates and builds a date-time; `zone_minutes` is the offset east of UTC in
    /// minutes, within ±23:59 (written `+HHMM`/`-HHMM`).
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Result<Self, ValidationError> {
        if hour > 23 {
            return Err(ValidationError::OutOfRange {
                what: "hour",
                value: hour.into(),
            });
        }
        if minute > 59 {
            return Err(ValidationError::OutOfRange {
                what: "minute",
                value: minute.into(),
            });
        }
        if second > 60 {
            return Err(ValidationError::OutOfRange {
                what: "second",
                value: second.into(),
            });
        }
        if !(-1439..=1439).contains(&zone_minutes) {
            return Err(ValidationError::OutOfRange {
                what: "zone offset (minutes)",
                value: zone_minutes.into(),
            });
        }
        Ok(Self {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }

    /// The date part.
    #[must_use]
    pub fn date(&self) -> Date {
        self.date
    }

    /// Hour, 0 to 23.
    #[must_use]
    pub fn hour(&self) -> u8 {
        self.hour
    }

    /// Minute, 0 to 59.
    #[must_use]
    pub fn minute(&self) -> u8 {
        self.minute
    }

    /// Second, 0 to 60.
    #[must_use]
    pub fn second(&self) -> u8 {
        self.second
    }

    /// Offset east of UTC, in minutes.
    #[must_use]
    pub fn zone_minutes(&self) -> i16 {
        self.zone_minutes
    }

    /// Seconds since the Unix epoch (UTC), for storage and comparisons.
    #[must_use]
    pub fn unix_timestamp(&self) -> i64 {
        // Days from civil, Howard Hinnant's algorithm.
        let y = i64::from(self.date.year) - i64::from(self.date.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.date.month);
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.date.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.zone_minutes) * 60
    }
}

impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({self})")
    }
}

impl fmt::Display for DateTime {
    /// The wire form without quotes, e.g. `17-Jul-1996 02:44:25 -0700` (day padded with a
    /// space to two characters, as `date-day-fixed`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.zone_minutes < 0 { '-' } else { '+' };
        let z = self.zone_minutes.unsigned_abs();
        write!(
            f,
            "{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            self.date.day,
            self.date.month_name(),
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            sign,
            z / 60,
            z % 60
        )
    }
}
