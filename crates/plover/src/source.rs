//! Migration files: name parsing, checksums, directives, and the ordered set.
//!
//! A [`Source`] is built from a directory on disk or from a set embedded at compile
//! time ([`Embedded`]). The rules (names, directives, encoding, order, which files of
//! a directory count) are `files`, one implementation that `embed_migrations!` runs
//! at build time too, so an embedded set and the same directory on disk load
//! identically. An embedded set arrives checked, in order and with its history
//! digest; its [`Migration`]s are made on first use.
//!
//! File names follow the Supabase CLI's rule, `<digits>_<name>.sql`. As the CLI does,
//! a `.sql` file that does not start with a version (`seed.sql`,
//! `local_20240101_x.sql`) is not a migration: it is skipped and listed in
//! [`Source::skipped`], for callers to warn about. A near miss, a name that starts
//! with digits but does not follow the rule (`20240101120000-init.sql`,
//! `20240101120000.sql`), is an error naming the file.
//!
//! Both follow symbolic links to files (the macro at compile time,
//! [`Source::from_dir`] when it reads the directory, through one function), so the
//! app and the developer tools see one set. A link that leads nowhere is an error
//! naming it: `from_dir` returns [`Error::BrokenSymlink`], and the macro fails the
//! build with the same message.
//!
//! Architecture invariant: this module knows nothing of databases. It does no I/O
//! beyond reading the directory it is pointed at.

use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

pub(crate) use crate::checksum::Checksum;
use crate::error::Error;
use crate::files::{self, FileError, ListError, Parsed};
pub use crate::files::{
    DownStyle, Transaction, is_migration_name, parse_down_name, parse_file_name,
};

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
    down: Option<Box<Migration>>,
}

impl Migration {
    /// Parses one file. `file` is the name shown in messages (usually the path).
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Migration, Error> {
        Ok(Migration::from(files::parse(file, bytes)?))
    }

    /// A file the embedding macro checked at build time.
    fn embedded(f: &EmbeddedFile) -> Migration {
        Migration {
            version: f.version,
            version_text: f.version_text.to_owned(),
            name: f.name.to_owned(),
            file: f.file.to_owned(),
            sql: f.text.strip_prefix(files::BOM).unwrap_or(f.text).to_owned(),
            checksum: Checksum(f.checksum),
            transaction: f.transaction,
            down: f.down.map(|d| Box::new(Migration::embedded(d))),
        }
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
    /// The down file that undoes it (`<version>_<name>.down.sql`, or `_down.sql`
    /// beside a migration of that version): a `Migration` of the same version and
    /// name, with its own file, SQL, checksum and directives.
    pub fn down(&self) -> Option<&Migration> {
        self.down.as_deref()
    }
}

impl From<Parsed<'_>> for Migration {
    fn from(p: Parsed<'_>) -> Migration {
        Migration {
            sql: p.sql().to_owned(),
            version: p.version,
            version_text: p.version_text,
            name: p.name,
            file: p.file,
            checksum: Checksum(p.checksum),
            transaction: p.transaction,
            down: p.down.map(|d| Box::new(Migration::from(*d))),
        }
    }
}

impl From<FileError> for Error {
    fn from(e: FileError) -> Error {
        match e {
            FileError::InvalidFileName { file } => Error::InvalidFileName { file },
            FileError::VersionOverflow { file } => Error::VersionOverflow { file },
            FileError::DuplicateVersion {
                version,
                first,
                second,
            } => Error::DuplicateVersion {
                version,
                first,
                second,
            },
            FileError::NotUtf8 { file, line } => Error::NotUtf8 { file, line },
            FileError::UnknownDirective {
                file,
                line,
                directive,
            } => Error::UnknownDirective {
                file,
                line,
                directive,
            },
            FileError::DownFile { file, reason } => Error::DownFile { file, reason },
        }
    }
}

impl From<ListError> for Error {
    fn from(e: ListError) -> Error {
        match e {
            ListError::Io { path, source } => Error::Io { path, source },
            ListError::BrokenSymlink {
                path,
                target,
                source,
            } => Error::BrokenSymlink {
                path,
                target,
                source,
            },
        }
    }
}

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

/// An ordered, validated set of migrations.
#[derive(Clone, Debug, Default)]
pub struct Source {
    migrations: Migrations,
    skipped: Vec<String>,
    origin: String,
    /// Whether the set is a Supabase project's: decided once, when the set is built
    /// (see [`Source::is_supabase`]), never re-read from `origin`, which is for display.
    supabase: bool,
}

/// A set's migrations: parsed, or embedded and made into [`Migration`]s on first use,
/// so that a boot that finds nothing to do touches no file.
#[derive(Clone)]
enum Migrations {
    Parsed(Vec<Migration>),
    Embedded {
        files: &'static [EmbeddedFile],
        /// [`files::history_digest`] of `files`, computed by the macro from the very
        /// values in `files`.
        history_digest: [u8; 32],
        made: OnceLock<Vec<Migration>>,
    },
}

impl Default for Migrations {
    fn default() -> Migrations {
        Migrations::Parsed(Vec::new())
    }
}

impl Migrations {
    fn get(&self) -> &[Migration] {
        match self {
            Migrations::Parsed(migrations) => migrations,
            Migrations::Embedded { files, made, .. } => {
                made.get_or_init(|| files.iter().map(Migration::embedded).collect())
            }
        }
    }
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.get()).finish()
    }
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
        let set = files::set(files)?;
        let origin = origin.into();
        Ok(Source {
            migrations: Migrations::Parsed(
                set.migrations.into_iter().map(Migration::from).collect(),
            ),
            skipped: set.skipped,
            supabase: is_supabase_layout(Path::new(&origin)),
            origin,
        })
    }

    /// Loads every `.sql` file of a directory (not recursive, but for the down files of
    /// a `down/` folder in it). Messages name files as `<dir>/<file>`.
    ///
    /// Symbolic links are followed, as [`embed_migrations!`](crate::embed_migrations)
    /// follows them (one implementation): a link to a file is a migration under the
    /// link's name. A link that leads nowhere is an error (the embed fails to build on
    /// it), unless it is hidden (an editor's lock file such as Emacs' `.#1_a.sql`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Source, Error> {
        let dir = dir.as_ref();
        let listed = files::list_migrations(dir)?;
        Source::from_files(
            dir.display().to_string(),
            listed
                .iter()
                .map(|f| (f.path.display().to_string(), f.bytes.as_slice())),
        )
    }

    /// The migrations in version order. An embedded set makes them on the first call.
    pub fn migrations(&self) -> &[Migration] {
        self.migrations.get()
    }

    /// How many migrations the set holds (an embedded set counts them without making
    /// them).
    pub fn len(&self) -> usize {
        match &self.migrations {
            Migrations::Parsed(migrations) => migrations.len(),
            Migrations::Embedded { files, .. } => files.len(),
        }
    }

    /// Whether the set holds no migration.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The history digest of the set all applied, when the embedding macro computed
    /// it at build time; `None` for a set read at run time.
    pub(crate) fn embedded_history_digest(&self) -> Option<[u8; 32]> {
        match &self.migrations {
            Migrations::Parsed(_) => None,
            Migrations::Embedded { history_digest, .. } => Some(*history_digest),
        }
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
        let migrations = self.migrations();
        migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &migrations[i])
    }

    /// The newest version, if any.
    pub fn latest(&self) -> Option<i64> {
        match &self.migrations {
            Migrations::Parsed(migrations) => migrations.last().map(|m| m.version),
            Migrations::Embedded { files, .. } => files.last().map(|f| f.version),
        }
    }

    /// A digest of the whole set (versions, names and checksums), e.g. to name a
    /// template database after it.
    pub fn digest(&self) -> Checksum {
        let mut h = Sha256::new();
        for m in self.migrations() {
            h.update(m.version.to_be_bytes());
            h.update(m.name.as_bytes());
            h.update([0]);
            h.update(m.checksum.0);
        }
        Checksum(h.finalize().into())
    }
}

/// A migration directory embedded at compile time; made by
/// [`embed_migrations!`](crate::embed_migrations), which checked every file, ordered
/// the set and computed its history digest while building.
#[derive(Clone, Copy)]
pub struct Embedded {
    origin: &'static str,
    files: &'static [EmbeddedFile],
    skipped: &'static [&'static str],
    history_digest: [u8; 32],
}

/// One embedded migration, as `embed_migrations!` checked it: not an API.
#[doc(hidden)]
#[derive(Debug)]
pub struct EmbeddedFile {
    pub version: i64,
    pub version_text: &'static str,
    pub name: &'static str,
    /// As shown in messages: `<origin>/<base name>`.
    pub file: &'static str,
    /// The file's text, a leading byte-order mark included.
    pub text: &'static str,
    pub checksum: [u8; 32],
    pub transaction: Transaction,
    /// Its down file.
    pub down: Option<&'static EmbeddedFile>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("origin", &self.origin)
            .field("migrations", &self.files.len())
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Embedded {
    /// What `embed_migrations!` expands to: `files` in version order, checked, with
    /// their [`files::history_digest`]. Not an API.
    #[doc(hidden)]
    pub const fn __new(
        origin: &'static str,
        files: &'static [EmbeddedFile],
        skipped: &'static [&'static str],
        history_digest: [u8; 32],
    ) -> Embedded {
        Embedded {
            origin,
            files,
            skipped,
            history_digest,
        }
    }

    /// The embedded set. The files were checked when the crate was built (a bad name,
    /// a shared version, a file that is not UTF-8 or an unknown directive fails the
    /// build, naming the file), so nothing is parsed or hashed here: the
    /// [`Migration`]s are made on first use, which a boot with nothing to do never
    /// reaches. It returns a `Result` for the errors a set read at run time has.
    pub fn load(&self) -> Result<Source, Error> {
        Ok(Source {
            migrations: Migrations::Embedded {
                files: self.files,
                history_digest: self.history_digest,
                made: OnceLock::new(),
            },
            skipped: self.skipped.iter().map(|f| (*f).to_owned()).collect(),
            origin: self.origin.to_owned(),
            supabase: is_supabase_layout(Path::new(self.origin)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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

    /// A set embedded by the macro at build time: every kind of entry the rules tell
    /// apart (a byte-order mark, a directive, a non-ASCII name, a symbolic link, a
    /// file without a version, a hidden file, another extension, numeric order).
    static FIXTURE: Embedded = crate::embed_migrations!("$CARGO_MANIFEST_DIR/fixtures/embedded");

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/embedded")
    }

    fn history_digest(source: &Source) -> [u8; 32] {
        crate::history::digest_of(
            source
                .migrations()
                .iter()
                .map(|m| (m.version(), m.name(), m.checksum())),
        )
    }

    #[test]
    fn the_build_time_history_digest_is_the_runtime_one() {
        let embedded = FIXTURE.load().unwrap();
        let on_disk = Source::from_dir(fixture_dir()).unwrap();
        assert_eq!(on_disk.migrations().len(), 6);
        assert_eq!(
            embedded.embedded_history_digest(),
            Some(history_digest(&on_disk))
        );
        // And the migrations it makes are the ones the digest describes.
        assert_eq!(
            embedded.embedded_history_digest(),
            Some(history_digest(&embedded))
        );
    }

    #[test]
    fn an_embedded_set_is_the_directory_read_at_run_time() {
        let embedded = FIXTURE.load().unwrap();
        let on_disk = Source::from_dir(fixture_dir()).unwrap();
        let seen = |s: &Source| -> Vec<_> {
            s.migrations()
                .iter()
                .map(|m| {
                    let base = m.file().rsplit('/').next().unwrap_or("").to_owned();
                    let parts = (m.version_text().to_owned(), m.name().to_owned());
                    (
                        m.version(),
                        parts,
                        base,
                        m.sql().to_owned(),
                        m.checksum(),
                        m.transaction(),
                        m.down().map(|d| {
                            let base: Vec<String> =
                                d.file().rsplit('/').take(2).map(str::to_owned).collect();
                            (base, d.sql().to_owned(), d.checksum(), d.name().to_owned())
                        }),
                    )
                })
                .collect()
        };
        assert_eq!(seen(&embedded), seen(&on_disk));
        assert_eq!(
            embedded
                .get(2)
                .and_then(Migration::down)
                .map(Migration::file),
            Some("fixtures/embedded/down/2_index_a.sql")
        );
        assert_eq!(embedded.origin(), "fixtures/embedded");
        assert_eq!(
            embedded.migrations()[0].file(),
            "fixtures/embedded/1_create_a.sql"
        );
        assert_eq!(embedded.skipped(), ["fixtures/embedded/seed.sql"]);
        assert_eq!(embedded.latest(), Some(10));
        assert_eq!(embedded.digest(), on_disk.digest());
        assert_eq!(embedded.get(4).map(|m| m.name()), Some("caf\u{e9}"));
    }

    #[test]
    fn loading_an_embedded_set_makes_no_migration_until_one_is_asked_for() {
        let source = FIXTURE.load().unwrap();
        let made = |s: &Source| match &s.migrations {
            Migrations::Embedded { made, .. } => made.get().is_some(),
            Migrations::Parsed(_) => panic!("an embedded set is made on first use"),
        };
        // What a boot with nothing to do asks of the set.
        assert_eq!(source.len(), 6);
        assert_eq!(source.latest(), Some(10));
        assert!(source.embedded_history_digest().is_some());
        assert_eq!(source.skipped_warnings().count(), 1);
        assert!(!made(&source));
        assert_eq!(source.migrations().len(), 6);
        assert!(made(&source));
    }

    #[test]
    fn the_rules_messages_are_the_errors_messages() {
        // The macro fails the build with the rules' messages: they must read as the
        // errors a load gives.
        let errors = [
            FileError::InvalidFileName {
                file: "m/1.sql".into(),
            },
            FileError::VersionOverflow {
                file: "m/99999999999999999999_a.sql".into(),
            },
            FileError::DuplicateVersion {
                version: 1,
                first: "m/01_a.sql".into(),
                second: "m/1_b.sql".into(),
            },
            FileError::NotUtf8 {
                file: "m/1_a.sql".into(),
                line: 2,
            },
            FileError::UnknownDirective {
                file: "m/1_a.sql".into(),
                line: 1,
                directive: "x".into(),
            },
        ];
        for e in errors {
            assert_eq!(e.to_string(), Error::from(e.clone()).to_string());
        }
        let broken = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let listed = ListError::BrokenSymlink {
            path: "m/2_b.sql".into(),
            target: "b.sql".into(),
            source: broken(),
        };
        let shown = listed.to_string();
        assert_eq!(shown, Error::from(listed).to_string());
        let io = ListError::Io {
            path: "m".into(),
            source: broken(),
        };
        let shown_io = io.to_string();
        assert_eq!(shown_io, Error::from(io).to_string());
        assert!(
            shown.starts_with("m/2_b.sql: symbolic link to b.sql leads nowhere"),
            "{shown}"
        );
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

    #[test]
    fn down_files_go_with_the_migration_they_undo() {
        let s = load(&[
            ("1_a.sql", "create table a ();"),
            ("1_a.down.sql", "drop table a;"),
            ("2_b.sql", "create table b ();"),
            ("2_b_down.sql", "drop table b;"),
            ("3_slow_down.sql", "select 3;"),
        ])
        .unwrap();
        let files: Vec<(&str, Option<&str>)> = s
            .migrations()
            .iter()
            .map(|m| (m.file(), m.down().map(Migration::file)))
            .collect();
        assert_eq!(
            files,
            [
                ("1_a.sql", Some("1_a.down.sql")),
                ("2_b.sql", Some("2_b_down.sql")),
                // `_down.sql` with no migration of its version is a migration.
                ("3_slow_down.sql", None),
            ]
        );
        let down = s.get(1).unwrap().down().unwrap();
        assert_eq!(
            (down.version(), down.name(), down.sql()),
            (1, "a", "drop table a;")
        );
        // Down files are no part of what is applied: the set's digest is the ups'.
        let ups = load(&[
            ("1_a.sql", "create table a ();"),
            ("2_b.sql", "create table b ();"),
            ("3_slow_down.sql", "select 3;"),
        ])
        .unwrap();
        assert_eq!(s.digest(), ups.digest());
    }

    #[test]
    fn a_down_folder_holds_down_files_under_the_migrations_names() {
        let on_disk = Source::from_dir(fixture_dir()).unwrap();
        let downs: Vec<(i64, String)> = on_disk
            .migrations()
            .iter()
            .filter_map(|m| Some((m.version(), m.down()?.file().to_owned())))
            .collect();
        let dir = fixture_dir().display().to_string();
        assert_eq!(
            downs,
            [
                (1, format!("{dir}/1_create_a.down.sql")),
                (2, format!("{dir}/down/2_index_a.sql")),
            ]
        );
        let e = load(&[("1_a.sql", ""), ("down/2_b.sql", "")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("down/2_b.sql: a down file, but no migration has version 2"),
            "{e}"
        );
    }

    #[test]
    fn a_down_file_must_undo_one_migration_by_its_name() {
        let message = |files: &[(&str, &str)]| load(files).unwrap_err().to_string();
        assert_eq!(
            message(&[("1_a.sql", ""), ("2_b.down.sql", "")]),
            "2_b.down.sql: a down file, but no migration has version 2; name it after the file it undoes (<version>_<name>.down.sql)"
        );
        assert_eq!(
            message(&[("1_a.sql", ""), ("1_b.down.sql", "")]),
            "1_b.down.sql: undoes version 1, which is 1_a.sql; name it 1_a.down.sql"
        );
        assert_eq!(
            message(&[("1_a.sql", ""), ("1_a.down.sql", ""), ("1_a_down.sql", "")]),
            "1_a_down.sql: 1_a.down.sql undoes 1_a.sql already; keep one of them"
        );
        assert_eq!(
            message(&[("1_a.sql", ""), ("1_a.down.sql", "-- plover:sometimes\n")]),
            "1_a.down.sql:1: unknown directive `-- plover:sometimes`; known: no-transaction"
        );
    }
}
