//! Migration file names for new files: the snake-case name and the UTC timestamp
//! version the Supabase CLI writes.

use std::time::SystemTime;

/// A migration name as it goes into a file name: lower snake case, runs of anything
/// but ASCII letters and digits folded into one `_`. `None` when nothing is left.
///
/// ```
/// use plover::project::snake_name;
/// assert_eq!(snake_name("Add budgets!").as_deref(), Some("add_budgets"));
/// assert_eq!(snake_name("addBudgetLines").as_deref(), Some("add_budget_lines"));
/// assert_eq!(snake_name(" -- "), None);
/// ```
pub fn snake_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower && !out.ends_with('_') {
                out.push('_');
            }
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    Some(out).filter(|s| !s.is_empty())
}

/// The version for a new migration: the UTC time as `YYYYMMDDHHMMSS`, or one past the
/// newest existing version when the clock is not past it (never reuses or goes below
/// a version).
///
/// ```
/// use plover::project::next_version;
/// assert_eq!(next_version(20250101120000, Some(20240101000000)), 20250101120000);
/// assert_eq!(next_version(20250101120000, Some(20250101120000)), 20250101120001);
/// assert_eq!(next_version(20250101120000, Some(20990101000000)), 20990101000001);
/// ```
pub fn next_version(now: i64, newest: Option<i64>) -> i64 {
    match newest {
        Some(n) if n >= now => n.saturating_add(1),
        _ => now,
    }
}

/// UTC date and time of `t`: (year, month, day, hour, minute, second).
pub(super) fn utc_parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = rem as u32;
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `t` as a migration version, `YYYYMMDDHHMMSS` in UTC (the Supabase CLI's format).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_736_847_012);
/// assert_eq!(plover::project::utc_version(t), 20250114093012);
/// ```
pub fn utc_version(t: SystemTime) -> i64 {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    ((((y * 100 + i64::from(mo)) * 100 + i64::from(d)) * 100 + i64::from(h)) * 100 + i64::from(mi))
        * 100
        + i64::from(s)
}

/// `t` for people and JSON: `2025-01-14T09:30:12Z`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_736_847_012);
/// assert_eq!(plover::project::utc_rfc3339(t), "2025-01-14T09:30:12Z");
/// ```
pub fn utc_rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}
