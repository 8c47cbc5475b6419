//! Connection strings with their password hidden, for logs and errors.
//!
//! Every place that shows a connection string shows [`redact`]'s output.

/// Replaces the password of a `postgres://` URL or a `key=value` connection string
/// with `****`.
///
/// ```
/// use plover::redact::redact;
/// assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:****@db:5432/x");
/// assert_eq!(redact("host=db password=s3cret user=app"), "host=db password=**** user=app");
/// assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
/// ```
pub fn redact(conn: &str) -> String {
    if let Some(scheme_end) = conn.find("://") {
        let rest = &conn[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut out = conn[..scheme_end + 3].to_owned();
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":****");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        } else {
            out.push_str(authority);
        }
        out.push_str(&redact_query(&rest[authority_end..]));
        return out;
    }
    redact_key_values(conn)
}

fn redact_query(rest: &str) -> String {
    let Some(q) = rest.find('?') else {
        return rest.to_owned();
    };
    let params = rest[q + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
            _ => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{}?{params}", &rest[..q])
}

fn redact_key_values(conn: &str) -> String {
    let mut out = String::with_capacity(conn.len());
    let mut rest = conn;
    while let Some(i) = rest.find("password") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "password".len()..];
        let trimmed = after.trim_start();
        if let Some(value) = trimmed.strip_prefix('=') {
            let value = value.trim_start();
            out.push_str("password=****");
            let end = if let Some(quoted) = value.strip_prefix('\'') {
                quoted.find('\'').map_or(value.len(), |e| e + 2)
            } else {
                value.find(char::is_whitespace).unwrap_or(value.len())
            };
            rest = &value[end..];
        } else {
            out.push_str("password");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_survive() {
        for (input, expected) in [
            (
                "postgresql://u:p%40ss@h/db?sslmode=disable",
                "postgresql://u:****@h/db?sslmode=disable",
            ),
            (
                "postgres://u:pw@h:1/db?password=x&a=b",
                "postgres://u:****@h:1/db?password=****&a=b",
            ),
            ("postgres://h/db", "postgres://h/db"),
            (
                "host=h password='a b' user=u",
                "host=h password=**** user=u",
            ),
            ("password = x", "password=****"),
        ] {
            assert_eq!(redact(input), expected, "{input}");
        }
    }
}
