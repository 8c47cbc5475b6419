//! What a migration file is, in one implementation for the engine and the embedding
//! macro: `<digits>_<name>.sql` names, which entries of a directory count (hidden
//! files, `.sql`, symbolic links followed), UTF-8 and a leading byte-order mark, the
//! leading `-- plover:` directives, the set in version order (duplicates refused,
//! files without a version skipped), and the history digest of a set.
//!
//! `plover-macros` compiles this very file (`#[path]`) to check and digest an
//! embedded set at build time, so the build and the boot cannot disagree on a rule.
//!
//! Must not: import any plover module (the macro crate has none), or use any crate
//! but `std`, `sha2` and `hex`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How a file is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transaction {
    /// The whole file and its history row in one transaction (the default).
    Wrapped,
    /// `-- plover:no-transaction`: statements one by one in autocommit, with
    /// progress recorded so a failure midway leaves a dirty history row.
    None,
}

/// The UTF-8 byte-order mark.
pub const BOM: char = '\u{FEFF}';

const DIRECTIVE: &str = "-- plover:";

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

/// Whether a directory entry named `base` is looked at at all: `.sql` files that are
/// not hidden (an editor's `.#1_a.sql` lock file is not a migration).
pub fn is_sql_file(base: &str) -> bool {
    !base.starts_with('.') && base.ends_with(".sql")
}

/// How a down file names the migration it undoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownStyle {
    /// `<version>_<name>.down.sql`: always a down file.
    Dot,
    /// `<version>_<name>_down.sql`: a down file when a migration of the same version
    /// is there, else a migration whose name ends in `_down`.
    Underscore,
}

/// Splits a down file's name into the version and the name of the migration it undoes
/// (`20250101120000_init.down.sql` and `20250101120000_init_down.sql` both give
/// `("20250101120000", "init")`).
///
/// ```
/// use plover::parse_down_name as down;
///
/// assert_eq!(down("20250101120000_init.down.sql").map(|d| (d.0, d.1)), Some(("20250101120000", "init")));
/// assert_eq!(down("20250101120000_init_down.sql").map(|d| (d.0, d.1)), Some(("20250101120000", "init")));
/// assert_eq!(down("20250101120000_init.sql"), None);
/// ```
pub fn parse_down_name(base: &str) -> Option<(&str, &str, DownStyle)> {
    let (stem, style) = if let Some(stem) = base.strip_suffix(".down.sql") {
        (stem, DownStyle::Dot)
    } else {
        (base.strip_suffix("_down.sql")?, DownStyle::Underscore)
    };
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || name.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits, name, style))
}

/// Why a file or a set of files is not a valid migration set. The engine turns each
/// into its `Error` variant of the same name and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    InvalidFileName {
        file: String,
    },
    VersionOverflow {
        file: String,
    },
    DuplicateVersion {
        version: i64,
        first: String,
        second: String,
    },
    NotUtf8 {
        file: String,
        line: usize,
    },
    UnknownDirective {
        file: String,
        line: usize,
        directive: String,
    },
    /// A down file that undoes no migration of the set, or one already undone by
    /// another down file.
    DownFile {
        file: String,
        reason: String,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::InvalidFileName { file } => write!(
                f,
                "{file}: file name does not match <version>_<name>.sql (the Supabase CLI's rule, e.g. 20250101120000_add_budgets.sql); rename it"
            ),
            FileError::VersionOverflow { file } => write!(
                f,
                "{file}: version does not fit in a 64-bit integer; use a UTC timestamp (YYYYMMDDHHMMSS)"
            ),
            FileError::DuplicateVersion {
                version,
                first,
                second,
            } => write!(
                f,
                "{first} and {second} share version {version}; give one of them a new version (cargo xtask db new)"
            ),
            FileError::NotUtf8 { file, line } => {
                write!(
                    f,
                    "{file}:{line}: file is not valid UTF-8; save it as UTF-8"
                )
            }
            FileError::UnknownDirective {
                file,
                line,
                directive,
            } => write!(
                f,
                "{file}:{line}: unknown directive `-- plover:{directive}`; known: no-transaction"
            ),
            FileError::DownFile { file, reason } => write!(f, "{file}: {reason}"),
        }
    }
}

/// One migration file, checked: what the engine's `Migration` is made of.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub file: String,
    pub version: i64,
    pub version_text: String,
    pub name: String,
    /// The file's text, a leading byte-order mark included (the checksum's bytes).
    pub text: &'a str,
    pub checksum: [u8; 32],
    pub transaction: Transaction,
    /// The down file that undoes it (`<version>_<name>.down.sql` or `_down.sql`), if any.
    pub down: Option<Box<Parsed<'a>>>,
}

impl Parsed<'_> {
    /// The SQL, without a leading byte-order mark.
    #[allow(dead_code, reason = "the engine's; the macro embeds the text")]
    pub fn sql(&self) -> &str {
        self.text.strip_prefix(BOM).unwrap_or(self.text)
    }
}

/// Checks one file. `file` is the name shown in messages (usually the path).
pub fn parse<'a>(file: &str, bytes: &'a [u8]) -> Result<Parsed<'a>, FileError> {
    let base = file.rsplit('/').next().unwrap_or(file);
    let (version_text, name) =
        parse_file_name(base).ok_or_else(|| FileError::InvalidFileName { file: file.into() })?;
    let version: i64 = version_text
        .parse()
        .map_err(|_| FileError::VersionOverflow { file: file.into() })?;
    let text = std::str::from_utf8(bytes).map_err(|e| FileError::NotUtf8 {
        file: file.into(),
        line: bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
    })?;
    // Windows editors may start a file with a byte-order mark; the server would read
    // it as part of the first statement. The checksum stays over the bytes.
    let sql = text.strip_prefix(BOM).unwrap_or(text);
    let transaction = parse_directives(file, sql)?;
    Ok(Parsed {
        file: file.to_owned(),
        version,
        version_text: version_text.to_owned(),
        name: name.to_owned(),
        text,
        checksum: Sha256::digest(bytes).into(),
        transaction,
        down: None,
    })
}

/// Reads the leading `-- plover:` comments; the first line that is neither blank nor
/// a `--` comment ends the header. `lint-ignore` directives belong to the linter and
/// may stand anywhere.
fn parse_directives(file: &str, sql: &str) -> Result<Transaction, FileError> {
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
                return Err(FileError::UnknownDirective {
                    file: file.into(),
                    line: i + 1,
                    directive: other.into(),
                });
            }
        }
    }
    Ok(transaction)
}

/// A set of files in version order, and the `.sql` files skipped for want of a
/// version (sorted).
#[derive(Debug, Default)]
pub struct Set<'a> {
    pub migrations: Vec<Parsed<'a>>,
    pub skipped: Vec<String>,
}

/// Orders `(file, bytes)` pairs into a set. Entries that are not [`is_sql_file`] are
/// ignored; a `.sql` file whose name does not start with a digit is skipped; every
/// other `.sql` file must parse, and no two may share a version. A down file
/// ([`parse_down_name`]) goes with the migration of its version, whose name it must
/// bear; a `.down.sql` file without one is an error, a `_down.sql` file without one is
/// a migration of its own.
pub fn set<'a>(files: impl IntoIterator<Item = (String, &'a [u8])>) -> Result<Set<'a>, FileError> {
    let mut by_version: BTreeMap<i64, Parsed<'a>> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut downs = Vec::new();
    for (file, bytes) in files {
        let base = file.rsplit('/').next().unwrap_or(&file);
        if !is_sql_file(base) {
            continue;
        }
        if !is_migration_name(base) {
            skipped.push(file);
            continue;
        }
        if let Some((_, _, style)) = down_key(&file) {
            downs.push((file, bytes, style));
            continue;
        }
        let m = parse(&file, bytes)?;
        insert(&mut by_version, m)?;
    }
    // `_down.sql` files that undo no migration are migrations themselves.
    downs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut paired = Vec::new();
    for (file, bytes, style) in downs {
        let version = down_key(&file).and_then(|(v, _, _)| v.parse::<i64>().ok());
        let has_up = version.is_some_and(|v| by_version.contains_key(&v));
        if style == DownStyle::Underscore && !has_up {
            insert(&mut by_version, parse(&file, bytes)?)?;
        } else {
            paired.push((file, bytes));
        }
    }
    for (file, bytes) in paired {
        let name = down_key(&file).map_or_else(String::new, |(_, n, _)| n.to_owned());
        let mut down = parse(&file, bytes)?;
        down.name = name;
        let Some(up) = by_version.get_mut(&down.version) else {
            return Err(FileError::DownFile {
                reason: format!(
                    "a down file, but no migration has version {}; name it after the file it undoes (<version>_<name>.down.sql)",
                    down.version
                ),
                file,
            });
        };
        if up.name != down.name {
            return Err(FileError::DownFile {
                reason: format!(
                    "undoes version {}, which is {}; name it {}_{}.down.sql",
                    down.version, up.file, up.version_text, up.name
                ),
                file,
            });
        }
        if let Some(other) = &up.down {
            return Err(FileError::DownFile {
                reason: format!(
                    "{} undoes {} already; keep one of them",
                    other.file, up.file
                ),
                file,
            });
        }
        up.down = Some(Box::new(down));
    }
    skipped.sort();
    Ok(Set {
        migrations: by_version.into_values().collect(),
        skipped,
    })
}

/// The version and name of the migration a down file undoes: a file of a `down/`
/// folder inside the migrations folder (`down/<version>_<name>.sql`, the layout the
/// Supabase CLI does not read), or a [`parse_down_name`] file beside the migrations.
fn down_key(file: &str) -> Option<(&str, &str, DownStyle)> {
    let mut parts = file.rsplit('/');
    let base = parts.next().unwrap_or(file);
    if parts.next() == Some(DOWN_DIR) {
        let (version, name) = parse_file_name(base)?;
        return Some((version, name, DownStyle::Dot));
    }
    parse_down_name(base)
}

/// The folder inside the migrations folder that may hold the down files.
pub const DOWN_DIR: &str = "down";

fn insert<'a>(by_version: &mut BTreeMap<i64, Parsed<'a>>, m: Parsed<'a>) -> Result<(), FileError> {
    if let Some(prev) = by_version.get(&m.version) {
        let (first, second) = if prev.file <= m.file {
            (prev.file.clone(), m.file.clone())
        } else {
            (m.file.clone(), prev.file.clone())
        };
        return Err(FileError::DuplicateVersion {
            version: m.version,
            first,
            second,
        });
    }
    by_version.insert(m.version, m);
    Ok(())
}

/// Why a directory could not be listed.
#[derive(Debug)]
pub enum ListError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    BrokenSymlink {
        path: PathBuf,
        target: PathBuf,
        source: std::io::Error,
    },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            ListError::BrokenSymlink {
                path,
                target,
                source,
            } => write!(
                f,
                "{}: symbolic link to {} leads nowhere ({source}); point it at an existing migration file or remove it",
                path.display(),
                target.display()
            ),
        }
    }
}

/// One file of a directory: its base name, its path and its bytes.
#[derive(Debug)]
pub struct Listed {
    #[allow(dead_code, reason = "the macro's; the engine names files by path")]
    pub base: String,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// The [`is_sql_file`] files of `dir` (not recursive), in no particular order.
/// Symbolic links are followed: a link to a file is a file under the link's name; a
/// link that leads nowhere is an error, unless it is hidden. Names that are not
/// UTF-8 are passed over.
pub fn list_dir(dir: &Path) -> Result<Vec<Listed>, ListError> {
    let io = |path: PathBuf| move |source| ListError::Io { path, source };
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
                    return Err(ListError::BrokenSymlink {
                        target: std::fs::read_link(&path).unwrap_or_default(),
                        path,
                        source,
                    });
                }
            };
        }
        if !kind.is_file() || !is_sql_file(base) {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(io(path.clone()))?;
        files.push(Listed {
            base: base.to_owned(),
            path,
            bytes,
        });
    }
    Ok(files)
}

/// The files of a migrations folder: [`list_dir`] of it, and of its `down/` folder if
/// there is one (their `base` then starts with `down/`).
pub fn list_migrations(dir: &Path) -> Result<Vec<Listed>, ListError> {
    let mut files = list_dir(dir)?;
    let down = dir.join(DOWN_DIR);
    if down.is_dir() {
        for mut f in list_dir(&down)? {
            f.base = format!("{DOWN_DIR}/{}", f.base);
            files.push(f);
        }
    }
    Ok(files)
}

/// How a directory named in `embed_migrations!` is shown (in messages, as a set's
/// origin): relative to the workspace, as people name the folder.
/// `$CARGO_MANIFEST_DIR/../supabase/migrations` reads `supabase/migrations`.
#[allow(dead_code, reason = "the macro's: the engine gets the origin from it")]
pub fn shown_origin(path: &str) -> &str {
    let mut origin = path.trim_start_matches("$CARGO_MANIFEST_DIR");
    while let Some(rest) = origin
        .strip_prefix('/')
        .or_else(|| origin.strip_prefix("./"))
        .or_else(|| origin.strip_prefix("../"))
    {
        origin = rest;
    }
    origin
}

/// The history digest of a set all applied: what the engine compares at boot
/// (`history::digest_of` calls this) and the server stores
/// (`history::REMEMBER_DIGEST`), and what the macro computes at build time. SHA-256
/// of one line per migration in version order,
/// `<version> applied <checksum hex> <name as UTF-8 hex>`, joined by newlines.
pub fn history_digest<'m>(
    migrations: impl IntoIterator<Item = (i64, &'m str, [u8; 32])>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut checksum_hex = [0u8; 64];
    let mut name_hex = Vec::new();
    for (i, (version, name, checksum)) in migrations.into_iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(version.to_string().as_bytes());
        h.update(b" applied ");
        // 32 bytes into 64 hex digits: the encoding cannot fail.
        let _ = hex::encode_to_slice(checksum, &mut checksum_hex);
        h.update(checksum_hex);
        h.update(b" ");
        name_hex.resize(name.len() * 2, 0);
        let _ = hex::encode_to_slice(name.as_bytes(), &mut name_hex);
        h.update(&name_hex);
    }
    h.finalize().into()
}
