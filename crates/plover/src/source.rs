//! Migration files: name parsing, checksums, directives, and the ordered set.
//!
//! A [`Source`] is built from a directory on disk or from a set embedded at compile
//! time ([`Embedded`], through include_dir). Both go through [`Source::from_files`],
//! so an embedded set and the same directory on disk load identically.
//!
//! File names follow the Supabase CLI's rule, `<digits>_<name>.sql`. As the CLI does,
//! a `.sql` file that does not start with a version (`seed.sql`,
//! `local_20240101_x.sql`) is not a migration: it is skipped and listed in
//! [`Source::skipped`], for callers to warn about. A near miss, a name that starts
//! with digits but does not follow the rule (`20240101120000-init.sql`,
//! `20240101120000.sql`), is an error naming the file.
//!
//! Both follow symbolic links to files (include_dir resolves them at compile time,
//! [`Source::from_dir`] when it reads the directory), so the app and the developer
//! tools see one set. A link that leads nowhere is an error naming it: `from_dir`
//! returns [`Error::BrokenSymlink`], and include_dir fails the build.
//!
//! Architecture invariant: this module knows nothing of databases. It does no I/O
//! beyond reading the directory it is pointed at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub(crate) use crate::checksum::Checksum;
use crate::error::Error;

/// How a file is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transaction {
    /// The whole file and its history row in one transaction (the default).
    Wrapped,
    /// `-- plover:no-transaction`: statements one by one in autocommit, with
    /// progress recorded so a failure midway leaves a dirty history row.
    None,
}

/// One migration file.
#[derive(Clone, Debug)]
pub struct Migration {
    version: i64,
    version_text: String,
    name: String,
    file: String,
    sql: String,
    checksum: Checksum,
    transaction: Transaction,
}

impl Migration {
    /// Parses one file. `file` is the name shown in messages (usually the path).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Migration, Error> {
        let base = file.rsplit('/').next().unwrap_or(file);
        let (version_text, name) =
            parse_file_name(base).ok_or_else(|| Error::InvalidFileName { file: file.into() })?;
        let version: i64 = version_text
            .parse()
            .map_err(|_| Error::VersionOverflow { file: file.into() })?;
        let sql = match std::str::from_utf8(bytes) {
            // Windows editors may start a file with a byte-order mark; the server would
            // read it as part of the first statement. The checksum stays over the bytes.
            Ok(s) => s.strip_prefix(BOM).unwrap_or(s).to_owned(),
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                return Err(Error::NotUtf8 {
                    file: file.into(),
                    line,
                });
            }
        };
        let transaction = parse_directives(file, &sql)?;
        Ok(Migration {
            version,
            version_text: version_text.to_owned(),
            name: name.to_owned(),
            file: file.to_owned(),
            checksum: Checksum::of(bytes),
            sql,
            transaction,
        })
    }

    /// The version: the file name's leading digits, compared numerically.
    pub fn version(&self) -> i64 {
        self.version
    }
    /// The version digits exactly as in the file name (the Supabase CLI's key).
    pub fn version_text(&self) -> &str {
        &self.version_text
    }
    /// The part of the file name after `<version>_`, without `.sql`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The file as shown in messages, e.g. `supabase/migrations/20250101120000_init.sql`.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// The file's SQL, without a leading UTF-8 byte-order mark (lines and columns
    /// count from here, as editors show them).
    pub fn sql(&self) -> &str {
        &self.sql
    }
    /// SHA-256 of the file's bytes (a byte-order mark included).
    pub fn checksum(&self) -> Checksum {
        self.checksum
    }
    /// Whether the file runs in a transaction.
    pub fn transaction(&self) -> Transaction {
        self.transaction
    }
}

/// Splits `<digits>_<name>.sql` (the Supabase CLI's `^([0-9]+)_(.*)\.sql$`).
///
/// ```
/// assert_eq!(plover::parse_file_name("20250101120000_init.sql"), Some(("20250101120000", "init")));
/// assert_eq!(plover::parse_file_name("init.sql"), None);
/// ```
pub fn parse_file_name(base: &str) -> Option<(&str, &str)> {
    let stem = base.strip_suffix(".sql")?;
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits, name))
}

/// Whether a `.sql` file is meant as a migration: its name starts with a digit. Other
/// `.sql` files are skipped, as the Supabase CLI skips them; a name that starts with
/// a digit must then follow [`parse_file_name`]'s rule.
///
/// ```
/// use plover::is_migration_name;
///
/// assert!(is_migration_name("20250101120000_init.sql"));
/// assert!(is_migration_name("20250101120000-init.sql")); // a near miss: an error later
/// assert!(!is_migration_name("seed.sql"));
/// assert!(!is_migration_name("local_20240101_x.sql"));
/// ```
pub fn is_migration_name(base: &str) -> bool {
    base.starts_with(|c: char| c.is_ascii_digit())
}

const DIRECTIVE: &str = "-- plover:";

/// The UTF-8 byte-order mark.
const BOM: char = '\u{FEFF}';

/// Whether `dir` ends in the Supabase CLI's layout, `supabase/migrations`.
fn is_supabase_layout(dir: &Path) -> bool {
    let mut last = dir
        .components()
        .rev()
        .filter(|c| !matches!(c, std::path::Component::CurDir));
    matches!(
        (last.next(), last.next()),
        (Some(m), Some(s)) if m.as_os_str() == "migrations" && s.as_os_str() == "supabase"
    )
}

/// Reads the leading `-- plover:` comments; the first line that is neither blank nor
/// a `--` comment ends the header. `lint-ignore` directives belong to the linter and
/// may stand anywhere.
fn parse_directives(file: &str, sql: &str) -> Result<Transaction, Error> {
    let mut transaction = Transaction::Wrapped;
    for (i, line) in sql.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let Some(rest) = t.strip_prefix(DIRECTIVE) else {
            if t.starts_with("--") {
                continue;
            }
            break;
        };
        let word = rest.split_whitespace().next().unwrap_or("");
        match word {
            "no-transaction" => transaction = Transaction::None,
            w if w.starts_with("lint-") => {}
            other => {
                return Err(Error::UnknownDirective {
                    file: file.into(),
                    line: i + 1,
                    directive: other.into(),
                });
            }
        }
    }
    Ok(transaction)
}

/// An ordered, validated set of migrations.
#[derive(Clone, Debug, Default)]
pub struct Source {
    migrations: Vec<Migration>,
    skipped: Vec<String>,
    origin: String,
    /// Whether the set is a Supabase project's: decided once, when the set is built
    /// (see [`Source::is_supabase`]), never re-read from `origin`, which is for display.
    supabase: bool,
}

impl Source {
    /// Builds a set from `(file, bytes)` pairs. Files whose base name does not end in
    /// `.sql`, and hidden files, are ignored; a `.sql` file whose name does not start
    /// with a digit is skipped (listed in [`Source::skipped`]); every other `.sql`
    /// file must parse.
    pub fn from_files<'a>(
        origin: impl Into<String>,
        files: impl IntoIterator<Item = (String, &'a [u8])>,
    ) -> Result<Source, Error> {
        let mut by_version: BTreeMap<i64, Migration> = BTreeMap::new();
        let mut skipped = Vec::new();
        for (file, bytes) in files {
            let base = file.rsplit('/').next().unwrap_or(&file);
            if base.starts_with('.') || !base.ends_with(".sql") {
                continue;
            }
            if !is_migration_name(base) {
                skipped.push(file);
                continue;
            }
            let m = Migration::parse(&file, bytes)?;
            if let Some(prev) = by_version.get(&m.version) {
                let (first, second) = if prev.file <= m.file {
                    (prev.file.clone(), m.file.clone())
                } else {
                    (m.file.clone(), prev.file.clone())
                };
                return Err(Error::DuplicateVersion {
                    version: m.version,
                    first,
                    second,
                });
            }
            by_version.insert(m.version, m);
        }
        skipped.sort();
        let origin = origin.into();
        Ok(Source {
            migrations: by_version.into_values().collect(),
            skipped,
            supabase: is_supabase_layout(Path::new(&origin)),
            origin,
        })
    }

    /// Loads every `.sql` file of a directory (not recursive). Messages name files as
    /// `<dir>/<file>`.
    ///
    /// Symbolic links are followed, as [`embed_migrations!`](crate::embed_migrations)
    /// follows them: a link to a file is a migration under the link's name. A link that
    /// leads nowhere is an error, whatever its name (the embed fails to build on it),
    /// unless it is hidden (an editor's lock file such as Emacs' `.#1_a.sql`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Source, Error> {
        let dir = dir.as_ref();
        let io = |path: PathBuf| move |source| Error::Io { path, source };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir.into()))? {
            let entry = entry.map_err(io(dir.into()))?;
            let path = entry.path();
            let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if base.starts_with('.') {
                continue;
            }
            let mut kind = entry.file_type().map_err(io(path.clone()))?;
            if kind.is_symlink() {
                kind = match std::fs::metadata(&path) {
                    Ok(target) => target.file_type(),
                    Err(source) => {
                        return Err(Error::BrokenSymlink {
                            target: std::fs::read_link(&path).unwrap_or_default(),
                            path,
                            source,
                        });
                    }
                };
            }
            if !kind.is_file() || !base.ends_with(".sql") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(path.clone()))?;
            files.push((path.display().to_string(), bytes));
        }
        Source::from_files(
            dir.display().to_string(),
            files.iter().map(|(f, b)| (f.clone(), b.as_slice())),
        )
    }

    /// The migrations in version order.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The `.sql` files that are not migrations because their name does not start with
    /// a version (e.g. `supabase/migrations/seed.sql`), sorted; the Supabase CLI skips
    /// them too, with a warning. Shown as in messages.
    ///
    /// ```
    /// let files = [("m/1_a.sql", ""), ("m/seed.sql", "")];
    /// let source = plover::Source::from_files("m", files.map(|(f, s)| (f.to_owned(), s.as_bytes())))?;
    /// assert_eq!(source.skipped(), ["m/seed.sql"]);
    /// assert_eq!(source.migrations().len(), 1);
    /// # Ok::<(), plover::Error>(())
    /// ```
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// One warning line per [skipped](Source::skipped) file, worded as the Supabase
    /// CLI's.
    pub fn skipped_warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.skipped.iter().map(|file| {
            format!(
                "skipping {file}: not a migration (file name must match <version>_<name>.sql, e.g. 20250101120000_add_budgets.sql)"
            )
        })
    }

    /// Where the set came from: a directory, or the path given to [`embed_migrations!`](crate::embed_migrations).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the set is a Supabase project's, so that runs keep the Supabase CLI's
    /// history in step ([`SupabaseHistory::Auto`](crate::SupabaseHistory::Auto)): by
    /// default, whether the directory it was built from is `<...>/supabase/migrations`
    /// (its last two path components); [`Source::with_supabase`] says so explicitly.
    pub fn is_supabase(&self) -> bool {
        self.supabase
    }

    /// The set, marked as a Supabase project's (`true`) or not, whatever its path.
    ///
    /// ```
    /// let source = plover::Source::from_files("db/migrations", [])?;
    /// assert!(!source.is_supabase());
    /// assert!(source.with_supabase(true).is_supabase());
    /// # Ok::<(), plover::Error>(())
    /// ```
    pub fn with_supabase(mut self, supabase: bool) -> Source {
        self.supabase = supabase;
        self
    }

    /// The migration with this version.
    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }

    /// The newest version, if any.
    pub fn latest(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version)
    }

    /// A digest of the whole set (versions, names and checksums), e.g. to name a
    /// template database after it.
    pub fn digest(&self) -> Checksum {
        let mut h = Sha256::new();
        for m in &self.migrations {
            h.update(m.version.to_be_bytes());
            h.update(m.name.as_bytes());
            h.update([0]);
            h.update(m.checksum.0);
        }
        Checksum(h.finalize().into())
    }
}

/// A migration directory embedded at compile time; made by [`embed_migrations!`](crate::embed_migrations).
#[derive(Debug, Clone)]
pub struct Embedded {
    dir: include_dir::Dir<'static>,
    origin: &'static str,
}

impl Embedded {
    #[doc(hidden)]
    pub const fn new(dir: include_dir::Dir<'static>, origin: &'static str) -> Embedded {
        Embedded { dir, origin }
    }

    /// Parses and validates the embedded files.
    pub fn load(&self) -> Result<Source, Error> {
        // Shown relative to the workspace, as people name the folder:
        // "$CARGO_MANIFEST_DIR/../supabase/migrations" reads "supabase/migrations".
        let mut origin = self.origin.trim_start_matches("$CARGO_MANIFEST_DIR");
        while let Some(rest) = origin
            .strip_prefix('/')
            .or_else(|| origin.strip_prefix("./"))
            .or_else(|| origin.strip_prefix("../"))
        {
            origin = rest;
        }
        Source::from_files(
            origin,
            self.dir
                .files()
                .map(|f| (format!("{origin}/{}", f.path().display()), f.contents())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> Result<Source, Error> {
        Source::from_files(
            "supabase/migrations",
            files.iter().map(|(f, s)| (f.to_string(), s.as_bytes())),
        )
    }

    #[test]
    fn file_names_follow_the_supabase_rule() {
        let check = |name, expected| assert_eq!(parse_file_name(name), expected, "{name}");
        check("20250101120000_init.sql", Some(("20250101120000", "init")));
        check("1_a_b.sql", Some(("1", "a_b")));
        check("0001_.sql", Some(("0001", "")));
        check("20250101120000-init.sql", None);
        check("V1__init.sql", None);
        check("_init.sql", None);
        check("20250101120000_init.SQL", None);
        check("20250101120000_init.sql.bak", None);
    }

    #[test]
    fn versions_sort_numerically_and_checksums_are_sha256() {
        let s = load(&[("10_b.sql", "select 2;"), ("9_a.sql", "select 1;")]).unwrap();
        let v: Vec<i64> = s.migrations().iter().map(|m| m.version()).collect();
        assert_eq!(v, [9, 10]);
        assert_eq!(
            s.get(9).unwrap().checksum().to_hex(),
            "354b7196c9ba5fb4b21cf615bb6ec4cd5c07503c34229feef033fc081a8c03f4"
        );
        assert_eq!(s.latest(), Some(10));
    }

    #[test]
    fn bad_names_duplicates_and_non_utf8_name_the_file() {
        for near_miss in ["20240101120000-init.sql", "20240101120000.sql", "1.sql"] {
            let e = load(&[("1_a.sql", ""), (near_miss, "")]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "{near_miss}: file name does not match <version>_<name>.sql (the Supabase CLI's rule, e.g. 20250101120000_add_budgets.sql); rename it"
                )
            );
        }

        let e = load(&[("001_a.sql", ""), ("1_b.sql", "")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "001_a.sql and 1_b.sql share version 1; give one of them a new version (cargo xtask db new)"
        );

        let e = load(&[("99999999999999999999_a.sql", "")]).unwrap_err();
        assert!(matches!(e, Error::VersionOverflow { .. }), "{e}");

        let e = Source::from_files(
            "x",
            [("1_a.sql".to_string(), &b"select 1;\nselect '\xff';"[..])],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "1_a.sql:2: file is not valid UTF-8; save it as UTF-8"
        );
    }

    #[test]
    fn other_files_are_ignored() {
        let s = load(&[("README.md", "x"), (".1_hidden.sql", ""), ("1_a.sql", "")]).unwrap();
        assert_eq!(s.migrations().len(), 1);
        assert!(s.skipped().is_empty());
    }

    #[test]
    fn sql_files_without_a_version_are_skipped_as_the_supabase_cli_does() {
        let s = load(&[
            ("m/seed.sql", "insert into t values (1);"),
            ("m/1_a.sql", "select 1;"),
            ("m/local_20240101_x.sql", "select 2;"),
            ("m/_init.sql", ""),
            ("m/add_users.sql", ""),
        ])
        .unwrap();
        let versions: Vec<i64> = s.migrations().iter().map(|m| m.version()).collect();
        assert_eq!(versions, [1]);
        assert_eq!(
            s.skipped(),
            [
                "m/_init.sql",
                "m/add_users.sql",
                "m/local_20240101_x.sql",
                "m/seed.sql"
            ]
        );
        assert_eq!(
            s.skipped_warnings().next().unwrap(),
            "skipping m/_init.sql: not a migration (file name must match <version>_<name>.sql, e.g. 20250101120000_add_budgets.sql)"
        );
        // Skipped files are not part of the set's digest.
        assert_eq!(
            s.digest(),
            load(&[("m/1_a.sql", "select 1;")]).unwrap().digest()
        );
    }

    #[test]
    fn directives_are_read_from_the_header() {
        let t = |sql| load(&[("1_a.sql", sql)]).map(|s| s.migrations()[0].transaction());
        assert_eq!(t("select 1;").unwrap(), Transaction::Wrapped);
        assert_eq!(
            t("-- plover:no-transaction\ncreate index concurrently i on t (a);").unwrap(),
            Transaction::None
        );
        assert_eq!(
            t("-- a comment\n\n  -- plover:no-transaction\nselect 1;").unwrap(),
            Transaction::None
        );
        // After the first statement, it is an ordinary comment.
        assert_eq!(
            t("select 1;\n-- plover:no-transaction\n").unwrap(),
            Transaction::Wrapped
        );
        let e = t("-- plover:no-transactions\nselect 1;").unwrap_err();
        assert_eq!(
            e.to_string(),
            "1_a.sql:1: unknown directive `-- plover:no-transactions`; known: no-transaction"
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_sql_but_counts_in_the_checksum() {
        let bytes = "\u{FEFF}-- plover:no-transaction\ncreate table t (id int);\n";
        let source = load(&[("1_a.sql", bytes)]).unwrap();
        let m = &source.migrations()[0];
        assert_eq!(
            m.sql(),
            "-- plover:no-transaction\ncreate table t (id int);\n"
        );
        assert_eq!(m.transaction(), Transaction::None);
        assert_eq!(m.checksum(), Checksum::of(bytes.as_bytes()));
        assert_ne!(m.checksum(), Checksum::of(m.sql().as_bytes()));
        // Only a leading mark is removed.
        let inner = load(&[("1_a.sql", "select '\u{FEFF}';")]).unwrap();
        assert_eq!(inner.migrations()[0].sql(), "select '\u{FEFF}';");
    }

    #[test]
    fn digest_changes_with_any_file() {
        let a = load(&[("1_a.sql", "select 1;")]).unwrap().digest();
        let b = load(&[("1_a.sql", "select 2;")]).unwrap().digest();
        let c = load(&[("1_b.sql", "select 1;")]).unwrap().digest();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, load(&[("1_a.sql", "select 1;")]).unwrap().digest());
    }

    #[test]
    fn supabase_projects_are_recognised() {
        assert!(load(&[]).unwrap().is_supabase());
        assert!(
            !Source::from_files("db/migrations", [])
                .unwrap()
                .is_supabase()
        );
        // Decided on path components, not on the text's ending.
        let is = |origin: &str| Source::from_files(origin, []).unwrap().is_supabase();
        assert!(is("/work/app/supabase/migrations/"));
        assert!(is("./supabase/./migrations"));
        assert!(!is("/work/app/my-supabase/migrations"));
        assert!(!is("supabase/migrations/old"));
        // An explicit say wins over the path.
        let plain = Source::from_files("db/migrations", []).unwrap();
        assert!(plain.with_supabase(true).is_supabase());
    }
}
