//! API keys written into a migration file: a JWT whose `role` claim is not `anon` (the
//! `service_role` key, or any other role's token) or a secret key (`sb_secret_…`),
//! anywhere in the text (string constants, function bodies, comments). The public
//! `anon` key and publishable keys are meant to be shipped and are not reported.
//! Findings never show the key: only its kind and the prefix every such key shares.

use serde_json::Value;

use super::ahead::Parsed;
use super::{Linter, Pos, RuleId};

/// The first bytes of every JWT: base64url of `{"`.
const JWT_PREFIX: &str = "eyJ";

/// The prefix of Supabase's secret API keys.
const SECRET_KEY_PREFIX: &str = "sb_secret_";

/// Characters after [`SECRET_KEY_PREFIX`] that make a key rather than a placeholder
/// such as `sb_secret_...` or `sb_secret_your_key`.
const SECRET_KEY_MIN: usize = 20;

impl Linter<'_> {
    /// Reports every key written in the file `index` (its text `sql`, split into
    /// `statements`); a key is placed in the statement that holds it, for
    /// `lint-ignore`.
    pub(super) fn secrets(&mut self, index: usize, sql: &str, statements: &[Parsed<'_>]) {
        // The fast path: most files hold neither prefix.
        if !sql.contains(JWT_PREFIX) && !sql.contains(SECRET_KEY_PREFIX) {
            return;
        }
        let mut found = Vec::new();
        for (start, _) in sql.match_indices(JWT_PREFIX) {
            let token = key_at(sql, start, true);
            if let Some(role) = jwt_role(token)
                && role != "anon"
            {
                let local = if jwt_issuer(token).as_deref() == Some("supabase-demo") {
                    " (the local development key: the function cannot work on a hosted project)"
                } else {
                    ""
                };
                found.push((
                    start,
                    format!(
                        "a JWT for the {role} role ({JWT_PREFIX}…) is written in the file{local}"
                    ),
                ));
            }
        }
        for (start, _) in sql.match_indices(SECRET_KEY_PREFIX) {
            let key = key_at(sql, start, false);
            if key.len() >= SECRET_KEY_PREFIX.len() + SECRET_KEY_MIN {
                found.push((
                    start,
                    format!("a secret API key ({SECRET_KEY_PREFIX}…) is written in the file"),
                ));
            }
        }
        for (offset, message) in found {
            let stmt = statements
                .iter()
                .map(|p| &p.statement)
                .position(|s| s.offset <= offset && offset < s.offset + s.sql.len());
            self.report(
                RuleId::SecretKeyInSql,
                Pos {
                    file: index,
                    stmt,
                    offset,
                    inner: None,
                },
                message,
            );
        }
    }
}

/// The run of key characters (base64url, and `.` between a JWT's parts) at `start`.
fn key_at(sql: &str, start: usize, jwt: bool) -> &str {
    let rest = &sql[start..];
    let end = rest
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (jwt && b == b'.')))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The claims of a JWT (`header.payload.signature`), if it is one.
fn jwt_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if signature.is_empty() || parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&base64url(payload)?).ok()
}

/// The `role` claim of a JWT.
fn jwt_role(token: &str) -> Option<String> {
    jwt_claims(token)?.get("role")?.as_str().map(str::to_owned)
}

/// The `iss` claim of a JWT.
fn jwt_issuer(token: &str) -> Option<String> {
    jwt_claims(token)?.get("iss")?.as_str().map(str::to_owned)
}

/// Decodes unpadded base64url (RFC 4648 §5); `None` on any other character.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut bits = 0u32;
    let mut count = 0;
    for b in text.bytes() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        bits = ((bits << 6) | u32::from(value)) & 0xffff;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes_unpadded_text() {
        assert_eq!(base64url("eyJhIjoxfQ").as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(base64url("_-8").as_deref(), Some(&[0xff, 0xef][..]));
        assert_eq!(base64url("a+b"), None);
    }
}
