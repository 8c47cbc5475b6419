//! Connection strings with their password hidden, for logs and errors.
//!
//! [`redact`] shows a connection string as [`ConnInfo::redacted`] does: rebuilt from
//! the one parse, never by editing the text. Code that keeps a connection should
//! keep the [`ConnInfo`] and show that; this function is for text at hand.

use crate::conninfo::ConnInfo;

/// A `postgres://` URL or `key=value` connection string as a URL of its parsed
/// fields, the password as `****`; text that does not parse as a connection string
/// is hidden entirely.
///
/// ```
/// use plover::redact::redact;
/// assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:****@db:5432/x");
/// assert_eq!(redact("host=db password=s3cret user=app"), "postgres://app:****@db:5432");
/// assert_eq!(redact("postgres://app@db/x"), "postgres://app@db:5432/x");
/// assert_eq!(redact("postgres://app:p/ss?w#rd@db/x"), "postgres://app:****@db:5432/x");
/// assert_eq!(redact("just-a-password"), "****");
/// ```
pub fn redact(conn: &str) -> String {
    match ConnInfo::parse(conn) {
        Ok(info) => info.redacted(),
        Err(_) => "****".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_survive() {
        for (input, expected) in [
            (
                "postgresql://u:p%40ss@h/db?sslmode=disable",
                "postgres://u:****@h:5432/db?sslmode=disable",
            ),
            (
                "postgres://u:pw@h:1/db?password=x&application_name=b",
                "postgres://u:****@h:1/db?application_name=b",
            ),
            ("postgres://h/db", "postgres://h:5432/db"),
            ("host=h password='a b' user=u", "postgres://u:****@h:5432"),
            ("password = x", "****"),
            ("postgres://u:p@ss@h/db", "****"),
            ("s3cr3t", "****"),
        ] {
            assert_eq!(redact(input), expected, "{input}");
        }
    }
}
