//! Request values checked before they reach SQL: uuids, months, dates and amounts.
//!
//! Pure functions, no I/O. They check shape and give messages that name the field;
//! the database still has the last word (calendar dates, constraints), and values
//! cross to it as text.

/// Checks that `value` is a uuid written as 8-4-4-4-12 hex digits.
pub fn uuid(field: &str, value: &str) -> Result<(), String> {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} must be a uuid such as 11111111-1111-4111-8111-111111111111, not {value:?}"
        ))
    }
}

/// A calendar month, from `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    year: u32,
    month: u32,
}

impl Month {
    pub fn parse(field: &str, value: &str) -> Result<Month, String> {
        let err = || format!("{field} must be a month as YYYY-MM, e.g. 2025-03, not {value:?}");
        let (y, m) = value.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let year: u32 = y.parse().map_err(|_| err())?;
        let month: u32 = m.parse().map_err(|_| err())?;
        if year == 0 || !(1..=12).contains(&month) {
            return Err(err());
        }
        Ok(Month { year, month })
    }

    /// The first day, as `YYYY-MM-01`.
    pub fn first_day(self) -> String {
        format!("{:04}-{:02}-01", self.year, self.month)
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }
}

/// Checks that `value` looks like `YYYY-MM-DD`; the database checks the calendar.
pub fn date(field: &str, value: &str) -> Result<(), String> {
    let b = value.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} must be a date as YYYY-MM-DD, e.g. 2025-03-02, not {value:?}"
        ))
    }
}

/// Checks that `value` is a decimal that fits `numeric(12, 2)` exactly: up to 10
/// digits, optionally a point and 1 or 2 more. No sign, exponent, `NaN` or
/// `Infinity` (Postgres would accept those, or round silently). Zero passes here; the
/// table's `amount > 0` check refuses it.
pub fn amount(field: &str, value: &str) -> Result<(), String> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, "00"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (1..=10).contains(&whole.len())
        && (1..=2).contains(&fraction.len())
        && digits(whole)
        && digits(fraction)
    {
        Ok(())
    } else {
        Err(format!(
            "{field} must be a positive decimal string with at most 2 decimal places and 10 digits before the point, e.g. \"12.50\", not {value:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(uuid("id", "11111111-1111-4111-8111-111111111111").is_ok());
        assert!(uuid("id", "A0000000-0000-4000-8000-00000000000f").is_ok());
        for bad in [
            "",
            "x",
            "11111111111141118111111111111111",
            "11111111-1111-4111-8111-11111111111",
            "11111111-1111-4111-8111-1111111111111",
            "g1111111-1111-4111-8111-111111111111",
            "{11111111-1111-4111-8111-111111111111}",
        ] {
            let e = uuid("user_id", bad).expect_err(bad);
            assert!(e.starts_with("user_id must be a uuid"), "{e}");
        }
    }

    #[test]
    fn months() {
        let check = |input: &str, first: &str, next: &str| {
            let m = Month::parse("month", input).expect(input);
            assert_eq!(
                (m.first_day().as_str(), m.next().first_day().as_str()),
                (first, next)
            );
        };
        check("2025-03", "2025-03-01", "2025-04-01");
        check("2025-12", "2025-12-01", "2026-01-01");
        check("0001-01", "0001-01-01", "0001-02-01");
        for bad in [
            "",
            "2025",
            "2025-3",
            "2025-13",
            "2025-00",
            "0000-01",
            "25-03",
            "2025-03-01",
            "+025-03",
            "2025/03",
        ] {
            assert!(Month::parse("month", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert!(date("d", "2025-03-02").is_ok());
        assert!(
            date("d", "2025-02-30").is_ok(),
            "the calendar is the database's job"
        );
        for bad in [
            "",
            "today",
            "infinity",
            "2025-3-02",
            "20250302",
            "2025-03-02T00:00",
            "2025-03-0x",
        ] {
            assert!(date("d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts() {
        for good in ["12.50", "12.5", "12", "0", "0.00", "9999999999.99"] {
            assert!(amount("amount", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-5",
            "+5",
            "12.",
            ".5",
            "12.345",
            "1e3",
            "NaN",
            "Infinity",
            "12,50",
            " 12",
            "12 ",
            "10000000000",
        ] {
            assert!(amount("amount", bad).is_err(), "{bad}");
        }
    }
}
