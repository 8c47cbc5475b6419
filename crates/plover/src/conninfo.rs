//! Connection strings, parsed once: by tokio-postgres's [`Config`], the parser the
//! connection itself uses.
//!
//! Everything that shows a database or hands it to another program derives from that
//! one parse: [`ConnInfo::redacted`] and [`ConnInfo::server`] for output,
//! [`ConnInfo::connect`] for plover, [`ConnInfo::libpq_env`] for child tools (pg_dump,
//! psql), which take the connection from libpq's environment variables so nothing
//! secret reaches their command line. A password may hold any character.
//!
//! This module must never put a connection string's text, or any part of a password,
//! into an error: a value that does not parse may be a bare password.
//!
//! ```
//! use plover::ConnInfo;
//!
//! let c = ConnInfo::parse("postgres://app:s3/cr?t#@db.example.com/money").unwrap();
//! assert_eq!(c.redacted(), "postgres://app:****@db.example.com:5432/money");
//! assert_eq!(c.server(), "db.example.com:5432/money");
//! assert_eq!(c.config().get_password(), Some(&b"s3/cr?t#"[..]));
//! ```

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use tokio_postgres::Config;
use tokio_postgres::config::{ChannelBinding, Host, SslMode, TargetSessionAttrs};

/// The libpq variables [`ConnInfo::libpq_env`] may set, and those that would override
/// them (`PGSERVICE`): clear them all in a child before setting the connection's own.
pub const LIBPQ_ENV_VARS: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGSSLMODE",
    "PGCONNECT_TIMEOUT",
    "PGTARGETSESSIONATTRS",
    "PGCHANNELBINDING",
    "PGSERVICE",
];

/// Options whose name an error may show (they are the parser's own, never the input's).
const KNOWN_OPTIONS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// libpq options tokio-postgres does not take: named in the error when present.
const LIBPQ_ONLY_OPTIONS: &[&str] = &[
    "passfile",
    "service",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslpassword",
    "sslcompression",
    "requiressl",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "requirepeer",
    "require_auth",
    "client_encoding",
    "fallback_application_name",
    "replication",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
];

/// Why a text is not a usable connection string. Messages never hold the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnInfoError {
    /// Neither a `postgres://` URL nor `key=value` pairs (e.g. a bare password).
    #[error(
        "does not parse as a connection string; write postgres://USER:PASSWORD@HOST:PORT/DATABASE or key=value pairs (the value is not shown)"
    )]
    NotAConnectionString,
    /// A known option with a value the parser refuses, e.g. `port=abc`.
    #[error("has an invalid value for `{option}` (the value is not shown)")]
    InvalidValue { option: &'static str },
    /// A libpq option that plover's driver does not take.
    #[error("uses `{option}`, which plover's driver (tokio-postgres) does not support; remove it")]
    Unsupported { option: &'static str },
    /// A URL whose password holds a character that ends the password early.
    #[error(
        "does not parse: its password seems to hold an unencoded `@`; percent-encode the password (`@` as %40, `#` as %23, `/` as %2F, `?` as %3F, `%` as %25, a space as %20) (the value is not shown)"
    )]
    NeedsEncoding,
    /// Neither `host` nor `hostaddr`.
    #[error("names no host; add one, e.g. postgres://USER:PASSWORD@127.0.0.1:5432/postgres")]
    NoHost,
}

/// A parsed connection string. `Display` and `Debug` show [`ConnInfo::redacted`].
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    config: Config,
}

impl ConnInfo {
    /// Parses a `postgres://` (or `postgresql://`) URL or libpq `key=value` pairs.
    ///
    /// ```
    /// use plover::{ConnInfo, ConnInfoError};
    ///
    /// let c = ConnInfo::parse("host=db port=6543 user=app password='a b' dbname=x").unwrap();
    /// assert_eq!(c.redacted(), "postgres://app:****@db:6543/x");
    /// assert_eq!(ConnInfo::parse("hunter2").unwrap_err(), ConnInfoError::NotAConnectionString);
    /// assert_eq!(
    ///     ConnInfo::parse("postgres://app:p@ss@db/x").unwrap_err(),
    ///     ConnInfoError::NeedsEncoding
    /// );
    /// ```
    pub fn parse(text: &str) -> Result<ConnInfo, ConnInfoError> {
        let url = text.starts_with("postgres://") || text.starts_with("postgresql://");
        // More than one `@` in a URL: a password's `@` moved the host's start.
        let extra_at = url && text.matches('@').count() > 1;
        if text.trim().is_empty() {
            return Err(ConnInfoError::NotAConnectionString);
        }
        let config = Config::from_str(text).map_err(|e| {
            if extra_at {
                ConnInfoError::NeedsEncoding
            } else {
                classify(&e)
            }
        })?;
        let odd_host = config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Tcp(name) if name.contains('@')));
        if odd_host {
            return Err(ConnInfoError::NeedsEncoding);
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            return Err(ConnInfoError::NoHost);
        }
        Ok(ConnInfo { config })
    }

    /// A connection built in code, e.g. from a host and a password kept apart.
    ///
    /// ```
    /// let mut config = tokio_postgres::Config::new();
    /// config.host("db.abc.supabase.co").port(5432).user("postgres").password("p@ss/w:rd").dbname("postgres");
    /// let c = plover::ConnInfo::from_config(config);
    /// assert_eq!(c.redacted(), "postgres://postgres:****@db.abc.supabase.co:5432/postgres");
    /// ```
    pub fn from_config(config: Config) -> ConnInfo {
        ConnInfo { config }
    }

    /// The parsed settings, password included: never print them field by field.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same connection to another database on the server.
    pub fn with_dbname(&self, dbname: &str) -> ConnInfo {
        let mut config = self.config.clone();
        config.dbname(dbname);
        ConnInfo { config }
    }

    /// Where it points, for prompts: `host:port/database`, hosts comma-separated.
    pub fn server(&self) -> String {
        let mut s = self.hosts();
        if let Some(db) = self.config.get_dbname() {
            s.push('/');
            s.push_str(db);
        }
        s
    }

    /// A `postgres://` URL of the parsed fields, the password as `****`: hosts, ports,
    /// user, database, and `sslmode` (when not the default), `application_name`,
    /// `options`, `hostaddr`, `target_session_attrs`.
    pub fn redacted(&self) -> String {
        self.url(false)
    }

    /// The connection as a `postgres://` URL with its password (percent-encoded), for
    /// a program or library that takes a URL (sqlx, a test's own pool). It holds the
    /// secret: never print or log it; show [`ConnInfo::redacted`] instead.
    ///
    /// ```
    /// let c = plover::ConnInfo::parse("host=db user=app password='p@ss w' dbname=x").unwrap();
    /// assert_eq!(c.to_url(), "postgres://app:p%40ss%20w@db:5432/x");
    /// let again = plover::ConnInfo::parse(&c.to_url()).unwrap();
    /// assert_eq!(again.config().get_password(), Some(&b"p@ss w"[..]));
    /// ```
    pub fn to_url(&self) -> String {
        self.url(true)
    }

    /// The one URL writer: [`redacted`](ConnInfo::redacted) and
    /// [`to_url`](ConnInfo::to_url) differ only in the password.
    fn url(&self, with_password: bool) -> String {
        let c = &self.config;
        let password = c.get_password().map(|p| {
            if with_password {
                escape_bytes(p)
            } else {
                "****".to_owned()
            }
        });
        let mut s = String::from("postgres://");
        match (c.get_user(), password) {
            (Some(user), password) => {
                s.push_str(&escape(user));
                if let Some(p) = password {
                    s.push(':');
                    s.push_str(&p);
                }
                s.push('@');
            }
            (None, Some(p)) => {
                s.push(':');
                s.push_str(&p);
                s.push('@');
            }
            (None, None) => {}
        }
        s.push_str(&self.url_hosts());
        if let Some(db) = c.get_dbname() {
            s.push('/');
            s.push_str(&escape(db));
        }
        let mut query: Vec<(&str, String)> = Vec::new();
        if !c.get_hostaddrs().is_empty() {
            let addrs: Vec<String> = c.get_hostaddrs().iter().map(|a| a.to_string()).collect();
            query.push(("hostaddr", addrs.join(",")));
        }
        if let Some(mode) = ssl_mode(c.get_ssl_mode()).filter(|m| *m != "prefer") {
            query.push(("sslmode", mode.to_owned()));
        }
        if let Some(name) = c.get_application_name() {
            query.push(("application_name", name.to_owned()));
        }
        if let Some(options) = c.get_options() {
            query.push(("options", options.to_owned()));
        }
        if let Some(attrs) = session_attrs(c.get_target_session_attrs()).filter(|a| *a != "any") {
            query.push(("target_session_attrs", attrs.to_owned()));
        }
        for (i, (key, value)) in query.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(key);
            s.push('=');
            s.push_str(&escape(value));
        }
        s
    }

    /// The connection as libpq environment variables (`PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGAPPNAME`, ...), for a child tool:
    /// remove [`LIBPQ_ENV_VARS`] from its environment, then set these. Only the
    /// settings present are returned.
    ///
    /// ```
    /// let c = plover::ConnInfo::parse("postgres://app:p%40ss@db:6543/x?sslmode=disable").unwrap();
    /// let env: Vec<(&str, String)> = c
    ///     .libpq_env()
    ///     .into_iter()
    ///     .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
    ///     .collect();
    /// assert!(env.contains(&("PGPASSWORD", "p@ss".to_owned())));
    /// assert!(env.contains(&("PGHOST", "db".to_owned())));
    /// assert!(env.contains(&("PGPORT", "6543".to_owned())));
    /// assert!(env.contains(&("PGSSLMODE", "disable".to_owned())));
    /// ```
    pub fn libpq_env(&self) -> Vec<(&'static str, OsString)> {
        let c = &self.config;
        let mut env: Vec<(&'static str, OsString)> = Vec::new();
        if !c.get_hosts().is_empty() {
            let hosts: Vec<OsString> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    Host::Tcp(name) => OsString::from(name),
                    #[cfg(unix)]
                    Host::Unix(path) => path.clone().into_os_string(),
                })
                .collect();
            env.push(("PGHOST", join_os(&hosts)));
        }
        if !c.get_hostaddrs().is_empty() {
            let addrs: Vec<String> = c.get_hostaddrs().iter().map(|a| a.to_string()).collect();
            env.push(("PGHOSTADDR", addrs.join(",").into()));
        }
        if !c.get_ports().is_empty() {
            let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
            env.push(("PGPORT", ports.join(",").into()));
        }
        if let Some(user) = c.get_user() {
            env.push(("PGUSER", user.into()));
        }
        if let Some(password) = c.get_password() {
            env.push(("PGPASSWORD", os_from_bytes(password)));
        }
        if let Some(db) = c.get_dbname() {
            env.push(("PGDATABASE", db.into()));
        }
        if let Some(options) = c.get_options() {
            env.push(("PGOPTIONS", options.into()));
        }
        if let Some(name) = c.get_application_name() {
            env.push(("PGAPPNAME", name.into()));
        }
        if let Some(mode) = ssl_mode(c.get_ssl_mode()) {
            env.push(("PGSSLMODE", mode.into()));
        }
        if let Some(timeout) = c.get_connect_timeout() {
            env.push((
                "PGCONNECT_TIMEOUT",
                timeout.as_secs().max(1).to_string().into(),
            ));
        }
        if let Some(attrs) = session_attrs(c.get_target_session_attrs()).filter(|a| *a != "any") {
            env.push(("PGTARGETSESSIONATTRS", attrs.into()));
        }
        let binding = match c.get_channel_binding() {
            ChannelBinding::Disable => Some("disable"),
            ChannelBinding::Require => Some("require"),
            _ => None,
        };
        if let Some(binding) = binding {
            env.push(("PGCHANNELBINDING", binding.into()));
        }
        env
    }

    /// `host:port` of every host, comma-separated, as libpq pairs them: one port for
    /// all, or one per host; 5432 when none is given.
    fn host_ports(&self) -> Vec<(String, u16)> {
        let c = &self.config;
        let ports = c.get_ports();
        let port = |i: usize| match ports {
            [] => 5432,
            [one] => *one,
            many => many.get(i).copied().unwrap_or(5432),
        };
        let mut out: Vec<(String, u16)> = c
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let name = match h {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.to_string_lossy().into_owned(),
                };
                (name, port(i))
            })
            .collect();
        if out.is_empty() {
            out = c
                .get_hostaddrs()
                .iter()
                .enumerate()
                .map(|(i, a)| (a.to_string(), port(i)))
                .collect();
        }
        out
    }

    fn hosts(&self) -> String {
        self.host_ports()
            .iter()
            .map(|(h, p)| {
                if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn url_hosts(&self) -> String {
        if self.config.get_hosts().is_empty() {
            return String::new();
        }
        self.host_ports()
            .iter()
            .map(|(h, p)| {
                if h.starts_with('/') {
                    format!("{}:{p}", escape(h))
                } else if h.contains(':') {
                    format!("[{h}]:{p}")
                } else {
                    format!("{}:{p}", escape(h))
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl FromStr for ConnInfo {
    type Err = ConnInfoError;
    fn from_str(s: &str) -> Result<ConnInfo, ConnInfoError> {
        ConnInfo::parse(s)
    }
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ConnInfo").field(&self.redacted()).finish()
    }
}

/// A parse error as one of ours: only option names from fixed lists are kept.
fn classify(e: &tokio_postgres::Error) -> ConnInfoError {
    let cause = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_default();
    let named = |prefix: &str, list: &[&'static str]| -> Option<&'static str> {
        let rest = cause.strip_prefix(prefix)?.strip_suffix('`')?;
        list.iter().copied().find(|o| *o == rest)
    };
    if let Some(option) = named("invalid value for option `", KNOWN_OPTIONS) {
        ConnInfoError::InvalidValue { option }
    } else if let Some(option) = named("unknown option `", LIBPQ_ONLY_OPTIONS) {
        ConnInfoError::Unsupported { option }
    } else {
        ConnInfoError::NotAConnectionString
    }
}

fn ssl_mode(mode: SslMode) -> Option<&'static str> {
    match mode {
        SslMode::Disable => Some("disable"),
        SslMode::Prefer => Some("prefer"),
        SslMode::Require => Some("require"),
        _ => None,
    }
}

fn session_attrs(attrs: TargetSessionAttrs) -> Option<&'static str> {
    match attrs {
        TargetSessionAttrs::Any => Some("any"),
        TargetSessionAttrs::ReadWrite => Some("read-write"),
        TargetSessionAttrs::ReadOnly => Some("read-only"),
        _ => None,
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters, for display in a URL.
fn escape(s: &str) -> String {
    escape_bytes(s.as_bytes())
}

/// Percent-encodes what a URL's userinfo, path or query value cannot hold as is.
fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn join_os(parts: &[OsString]) -> OsString {
    let mut out = OsString::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(",");
        }
        out.push(p);
    }
    out
}

#[cfg(unix)]
fn os_from_bytes(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes.to_vec())
}

#[cfg(not(unix))]
fn os_from_bytes(bytes: &[u8]) -> OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}

/// A `postgres://` URL or `key=value` connection string as a URL of its parsed
/// fields, the password as `****`; text that does not parse as a connection string
/// is hidden entirely.
///
/// ```
/// use plover::redact;
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
    use super::*;

    /// Passwords with every character that broke hand parsing.
    const PASSWORDS: &[&str] = &[
        "s3cr/et",
        "s3cr?et",
        "s3cr#et",
        "s3cr et",
        "s3cr'et\"",
        "s3cr:et",
        "s3cr&et=",
        "s3cr%et",
    ];

    fn env_of(c: &ConnInfo) -> Vec<(&'static str, String)> {
        c.libpq_env()
            .into_iter()
            .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn any_password_parses_and_never_shows() {
        for pw in PASSWORDS {
            // Unencoded in a URL (but `%`, which would be read as an escape).
            let raw = if pw.contains('%') {
                pw.replace('%', "%25")
            } else {
                (*pw).to_owned()
            };
            let url = format!("postgres://app:{raw}@db.example.com:6543/money?sslmode=disable");
            let c = ConnInfo::parse(&url).unwrap_or_else(|e| panic!("{pw}: {e}"));
            assert_eq!(c.config().get_password(), Some(pw.as_bytes()), "{pw}");
            assert_eq!(
                c.redacted(),
                "postgres://app:****@db.example.com:6543/money?sslmode=disable"
            );
            assert_eq!(c.server(), "db.example.com:6543/money");
            assert!(!format!("{c} {c:?}").contains(pw), "{pw}");
            assert!(env_of(&c).contains(&("PGPASSWORD", (*pw).to_owned())));
            // Percent-encoded, the way it should be written.
            let encoded = escape(pw);
            let c = ConnInfo::parse(&format!("postgresql://app:{encoded}@db/money")).unwrap();
            assert_eq!(c.config().get_password(), Some(pw.as_bytes()), "{pw}");
            // key=value, quoted.
            let quoted = pw.replace('\\', "\\\\").replace('\'', "\\'");
            let c =
                ConnInfo::parse(&format!("host=db user=app password='{quoted}' dbname=m")).unwrap();
            assert_eq!(c.config().get_password(), Some(pw.as_bytes()), "{pw}");
            assert_eq!(c.redacted(), "postgres://app:****@db:5432/m");
        }
    }

    #[test]
    fn errors_never_show_the_text() {
        for (text, expected) in [
            ("hunter2", ConnInfoError::NotAConnectionString),
            ("correct horse battery", ConnInfoError::NotAConnectionString),
            ("hunter=2", ConnInfoError::NotAConnectionString),
            ("   ", ConnInfoError::NotAConnectionString),
            ("postgres://u:p@ss@h/db", ConnInfoError::NeedsEncoding),
            (
                "postgres://u:p@ss:w@h:5432/db",
                ConnInfoError::NeedsEncoding,
            ),
            (
                "postgres://u:pw@h:port/db",
                ConnInfoError::InvalidValue { option: "port" },
            ),
            (
                "postgres://u:pw@h/db?sslmode=verify-full",
                ConnInfoError::InvalidValue { option: "sslmode" },
            ),
            (
                "host=h sslrootcert=/x",
                ConnInfoError::Unsupported {
                    option: "sslrootcert",
                },
            ),
            ("user=u password=p", ConnInfoError::NoHost),
        ] {
            let e = ConnInfo::parse(text).unwrap_err();
            assert_eq!(e, expected, "{text}");
            for part in ["hunter", "horse", "ss@h", "ss:w"] {
                assert!(!e.to_string().contains(part), "{text}: {e}");
            }
        }
        assert!(ConnInfoError::NeedsEncoding.to_string().contains("%40"));
    }

    #[test]
    fn redacted_shows_the_parsed_fields() {
        for (text, shown) in [
            ("postgres://h/db", "postgres://h:5432/db"),
            (
                "postgres://u@h1,h2:5433/db",
                "postgres://u@h1:5432,h2:5433/db",
            ),
            ("host=h1,h2 port=7 user=u", "postgres://u@h1:7,h2:7"),
            (
                "postgresql://u:pw@[::1]:5/d?application_name=my%20app",
                "postgres://u:****@[::1]:5/d?application_name=my%20app",
            ),
            (
                "postgres://u:pw@%2Fvar%2Frun%2Fpostgresql/d",
                "postgres://u:****@%2Fvar%2Frun%2Fpostgresql:5432/d",
            ),
            (
                "postgres://u:x@h/d?password=y&sslmode=require",
                "postgres://u:****@h:5432/d?sslmode=require",
            ),
        ] {
            let c = ConnInfo::parse(text).unwrap();
            assert_eq!(c.redacted(), shown, "{text}");
            // What is shown parses back to the same place.
            let back = ConnInfo::parse(shown).unwrap();
            assert_eq!(back.server(), c.server(), "{text}");
        }
    }

    #[test]
    fn child_tools_get_the_same_fields() {
        let c = ConnInfo::parse(
            "postgres://u:p%20w@h1:1,h2:2/d?application_name=a&options=-c%20x%3Dy&connect_timeout=7",
        )
        .unwrap();
        assert_eq!(
            env_of(&c),
            [
                ("PGHOST", "h1,h2"),
                ("PGPORT", "1,2"),
                ("PGUSER", "u"),
                ("PGPASSWORD", "p w"),
                ("PGDATABASE", "d"),
                ("PGOPTIONS", "-c x=y"),
                ("PGAPPNAME", "a"),
                ("PGSSLMODE", "prefer"),
                ("PGCONNECT_TIMEOUT", "7"),
            ]
            .map(|(k, v)| (k, v.to_owned()))
        );
        for (k, _) in env_of(&c) {
            assert!(LIBPQ_ENV_VARS.contains(&k), "{k}");
        }
    }

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
