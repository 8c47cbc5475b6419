//! `plover::embed_migrations!`, the work done at build time: reads the migration
//! directory, checks every file with the engine's own rules (`files.rs`, compiled
//! here from the engine's source), orders the set and computes its history digest,
//! and expands to a `plover::Embedded` holding all of it. A bad set fails the build
//! with the message the engine would give at boot, naming the file.
//!
//! Use it through `plover::embed_migrations!`, which passes its own crate path in.
//!
//! Must not: hold a rule of its own about files (they are all in `files.rs`), or
//! take the embedded text and the digest from two reads of a file (both come from
//! one; the `include_bytes!` it emits only make cargo track the files).

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

#[path = "../../plover/src/files.rs"]
mod files;

/// `embed_migrations!($crate, "path")`: see `plover::embed_migrations!`.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    let (krate, path) = match arguments(input) {
        Ok(parts) => parts,
        Err(message) => return compile_error(&message),
    };
    match expand(&path) {
        Ok((tracked, body)) => {
            // `{ use <plover>::__private as __plover; <tracked files> <body> }`
            let mut inner: TokenStream = parse("use ");
            inner.extend(krate);
            inner.extend(parse(&format!("::__private as __plover; {tracked} {body}")));
            TokenTree::Group(Group::new(Delimiter::Brace, inner)).into()
        }
        Err(message) => compile_error(&message),
    }
}

/// The crate path's tokens and the path literal's text.
fn arguments(input: TokenStream) -> Result<(TokenStream, String), String> {
    let usage = "embed_migrations! takes a string literal: the migration directory, e.g. \"$CARGO_MANIFEST_DIR/../supabase/migrations\"";
    let mut tokens = input.into_iter();
    let mut krate = TokenStream::new();
    for token in tokens.by_ref() {
        match &token {
            TokenTree::Punct(p) if p.as_char() == ',' => break,
            _ => krate.extend([token]),
        }
    }
    let literal = match (tokens.next().map(unwrap_none_group), tokens.next()) {
        (Some(TokenTree::Literal(l)), None) => l.to_string(),
        _ => return Err(usage.into()),
    };
    let text = literal
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .filter(|l| !l.contains('\\'))
        .or_else(|| {
            let raw = literal.strip_prefix('r')?;
            let hashes = raw.len() - raw.trim_start_matches('#').len();
            raw.get(hashes + 1..raw.len().checked_sub(hashes + 1)?)
        })
        .ok_or(usage)?;
    Ok((krate, text.to_owned()))
}

/// A `$fragment` passed through `macro_rules!` may arrive in an invisible group.
fn unwrap_none_group(token: TokenTree) -> TokenTree {
    match token {
        TokenTree::Group(g) if g.delimiter() == Delimiter::None => {
            let mut inner = g.stream().into_iter();
            match (inner.next(), inner.next()) {
                (Some(only), None) => unwrap_none_group(only),
                _ => TokenTree::Group(g),
            }
        }
        other => other,
    }
}

/// `$NAME` replaced by the variable's value (`$CARGO_MANIFEST_DIR`, `$OUT_DIR`); a
/// relative result is taken from the embedding crate's directory.
fn resolve(raw: &str) -> Result<std::path::PathBuf, String> {
    let mut resolved = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        resolved.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        let value = std::env::var(name).map_err(|_| {
            format!("embed_migrations!(\"{raw}\"): the environment variable {name} is not set; name the directory from $CARGO_MANIFEST_DIR")
        })?;
        resolved.push_str(&value);
        rest = &after[len..];
    }
    resolved.push_str(rest);
    let path = std::path::PathBuf::from(resolved);
    if path.is_absolute() {
        return Ok(path);
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        format!("embed_migrations!(\"{raw}\"): CARGO_MANIFEST_DIR is not set; build with cargo")
    })?;
    Ok(std::path::Path::new(&manifest).join(path))
}

/// The `include_bytes!` items that make cargo rebuild the crate when a file changes,
/// and the `Embedded` expression.
fn expand(raw: &str) -> Result<(String, String), String> {
    let dir = resolve(raw)?;
    let listed = files::list_migrations(&dir).map_err(|e| e.to_string())?;
    let origin = files::shown_origin(raw);
    let set = files::set(
        listed
            .iter()
            .map(|f| (format!("{origin}/{}", f.base), f.bytes.as_slice())),
    )
    .map_err(|e| e.to_string())?;

    let mut tracked = String::new();
    for f in &listed {
        let path = f.path.to_str().ok_or_else(|| {
            format!(
                "{}: the path is not UTF-8; move the migrations to a UTF-8 path",
                f.path.display()
            )
        })?;
        tracked.push_str(&format!(
            "const _: &[u8] = ::core::include_bytes!({});\n",
            string(path)
        ));
    }

    let digest = files::history_digest(
        set.migrations
            .iter()
            .map(|m| (m.version, m.name.as_str(), m.checksum)),
    );
    let mut body = format!("__plover::Embedded::__new({}, &[", string(origin));
    for m in &set.migrations {
        let down = match &m.down {
            Some(d) => format!(
                "::core::option::Option::Some(&{})",
                embedded_file(d, "::core::option::Option::None")
            ),
            None => "::core::option::Option::None".to_owned(),
        };
        body.push_str(&embedded_file(m, &down));
        body.push_str(",\n");
    }
    body.push_str("], &[");
    for skipped in &set.skipped {
        body.push_str(&string(skipped));
        body.push(',');
    }
    body.push_str(&format!("], {})", bytes(&digest)));
    Ok((tracked, body))
}

/// An `EmbeddedFile` expression for a checked file, with `down` (an `Option`
/// expression) as its down file.
fn embedded_file(m: &files::Parsed<'_>, down: &str) -> String {
    let transaction = match m.transaction {
        files::Transaction::Wrapped => "Wrapped",
        files::Transaction::None => "None",
    };
    format!(
        "__plover::EmbeddedFile {{ version: {}i64, version_text: {}, name: {}, file: {}, text: {}, checksum: {}, transaction: __plover::Transaction::{transaction}, down: {down} }}",
        m.version,
        string(&m.version_text),
        string(&m.name),
        string(&m.file),
        string(m.text),
        bytes(&m.checksum),
    )
}

/// A Rust string literal holding `s`.
fn string(s: &str) -> String {
    proc_macro::Literal::string(s).to_string()
}

/// A `[u8; 32]` array expression.
fn bytes(b: &[u8; 32]) -> String {
    let items: Vec<String> = b.iter().map(|x| format!("{x}u8")).collect();
    format!("[{}]", items.join(", "))
}

fn parse(code: &str) -> TokenStream {
    // Code built above from literals made by `Literal::string`: it always lexes.
    code.parse().unwrap_or_else(|_| {
        compile_error(
            "embed_migrations!: internal error: generated code does not lex; please report it",
        )
    })
}

fn compile_error(message: &str) -> TokenStream {
    format!("::core::compile_error!({})", string(message))
        .parse()
        .unwrap_or_default()
}
