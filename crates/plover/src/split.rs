//! Splits a SQL script into statements the way psql does, so a migration file can be
//! run statement by statement and a failure reported as `file:line:column`.
//!
//! The lexer follows psql's `psqlscan.l` (with `standard_conforming_strings` on): a `;`
//! ends a statement unless it is inside a comment (`--`, nesting `/* */`), a quoted
//! string (`'…'`, `E'…'`, `U&'…'`, `B'…'`, `X'…'`, `N'…'`), a quoted identifier
//! (`"…"`, `U&"…"`), a dollar quote (`$tag$…$tag$`), parentheses, or the `BEGIN … END`
//! of a SQL-standard body in `CREATE [OR REPLACE] {FUNCTION | PROCEDURE}`.
//!
//! Architecture invariant: this module is pure. It does no I/O, never talks to a
//! database, and does not interpret psql meta-commands (`\i`, `\set`, `:var`); a
//! backslash is ordinary text to it. It makes one pass over the bytes, allocates
//! nothing per character, and hands back slices of the script it was given.

/// One statement of a SQL script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text, from its first non-blank, non-comment character up to and
    /// including its terminating `;` (if any; the last statement may lack one).
    pub sql: &'a str,
    /// Byte offset of `sql` in the script.
    pub offset: usize,
    /// 1-based line and column (column in characters) of the statement's first character.
    pub line: usize,
    /// 1-based column, in characters, of the statement's first character.
    pub column: usize,
}

/// Error for unterminated constructs, carrying 1-based line/column where the construct started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// A comment, quoted string, quoted identifier or dollar quote runs to the end of
    /// the script. `what` names the construct, e.g. `"block comment"`.
    #[error("unterminated {what} starting at line {line}, column {column}")]
    Unterminated {
        /// `"block comment"`, `"quoted string"`, `"quoted identifier"` or
        /// `"dollar-quoted string"`.
        what: &'static str,
        /// 1-based line of the opening delimiter.
        line: usize,
        /// 1-based column, in characters, of the opening delimiter.
        column: usize,
    },
}

/// Splits `script` into its statements, skipping empty ones (only `;`, whitespace and
/// comments).
///
/// Comments before a statement are not part of it, and a comment after a statement's
/// `;` belongs to no statement. A last statement without `;` ends at its last token,
/// so trailing whitespace and comments are left out.
///
/// # Errors
///
/// [`SplitError::Unterminated`] when a block comment, quoted string, quoted identifier
/// or dollar quote is still open at the end of the script.
///
/// # Examples
pub fn split(script: &str) -> Result<Vec<Statement<'_>>, SplitError> {
    let mut statements = Vec::new();
    let mut position = Position::START;
    // Start of the statement being read, once its first token has been seen.
    let mut current: Option<usize> = None;
    // End of the last token that was neither whitespace nor a comment.
    let mut last_end = 0;
    let mut nesting = Nesting::default();

    for token in Lexer::new(script) {
        let token = token?;
        match token.kind {
            Kind::Space | Kind::Comment => continue,
            Kind::Semicolon if nesting.at_top_level() => {
                if let Some(start) = current.take() {
                    statements.push(position.statement(script, start, token.end));
                }
                nesting = Nesting::default();
                continue;
            }
            Kind::OpenParen => nesting.open_paren(),
            Kind::CloseParen => nesting.close_paren(),
            Kind::Word => nesting.word(&script.as_bytes()[token.start..token.end]),
            Kind::Semicolon | Kind::Literal | Kind::Other => {}
        }
        current.get_or_insert(token.start);
        last_end = token.end;
    }
    if let Some(start) = current {
        statements.push(position.statement(script, start, last_end));
    }
    Ok(statements)
}

/// 1-based (line, column-in-chars) of a byte offset in `text`.
///
/// Lines end at `\n` (so `\r\n` works too). An offset past the end is clamped to the
/// end; an offset inside a multi-byte character points at that character.
pub fn line_col(text: &str, byte_offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let mut position = Position::START;
    position.advance(bytes, byte_offset);
    let mut column = position.column;
    if bytes
        .get(position.offset)
        .is_some_and(|&b| is_continuation(b))
    {
        // Inside a character: the character it belongs to was already counted.
        column -= 1;
    }
    (position.line, column)
}

/// The first `n` keywords of a statement, uppercased, skipping leading comments and
/// whitespace, e.g. `"BEGIN"`, `"COMMIT"`, `"START TRANSACTION"`, `"CREATE INDEX"`.
///
/// Stops early at the first token that is not a bare word (a quote, `(`, `;`, …).
/// Used to detect transaction control statements.
pub fn leading_keywords(sql: &str, n: usize) -> Vec<String> {
    let mut keywords = Vec::new();
    if n == 0 {
        return keywords;
    }
    for token in Lexer::new(sql) {
        let Ok(token) = token else { break };
        match token.kind {
            Kind::Space | Kind::Comment => {}
            Kind::Word => {
                keywords.push(sql[token.start..token.end].to_ascii_uppercase());
                if keywords.len() == n {
                    break;
                }
            }
            _ => break,
        }
    }
    keywords
}

/// Whether a statement is transaction control: `BEGIN`, `START TRANSACTION`, `COMMIT`
/// (incl. `COMMIT PREPARED`), `END`, `ROLLBACK` (any form, incl. `ROLLBACK TO` and
/// `ROLLBACK PREPARED`), `ABORT`, `SAVEPOINT`, `RELEASE` and `PREPARE TRANSACTION`.
///
/// Only the statement's leading keywords count, so the `BEGIN` of a
/// `CREATE FUNCTION … BEGIN ATOMIC … END` body or of a `DO` block is not transaction
/// control, and neither is `PREPARE name AS …`.
pub fn is_transaction_control(sql: &str) -> bool {
    let keywords = leading_keywords(sql, 2);
    let first = keywords.first().map(String::as_str);
    let second = keywords.get(1).map(String::as_str);
    matches!(
        (first, second),
        (
            Some("BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE"),
            _
        ) | (Some("START" | "PREPARE"), Some("TRANSACTION"))
    )
}

/// The statements inside a file's `BEGIN; … COMMIT;` wrapper, when the whole file is
/// one: its first statement opens a transaction (`BEGIN`, `BEGIN WORK`,
/// `BEGIN TRANSACTION` or `START TRANSACTION`, any case, without modes), its last
/// commits it (`COMMIT` or `END`, optionally with `WORK` or `TRANSACTION`), and no
/// statement between is transaction control. `None` otherwise, e.g. for a file with
/// a `COMMIT` in the middle, two wrapped blocks, or a `ROLLBACK`.
///
/// psql and the Supabase CLI run such a file as one transaction; plover runs the
/// inner statements in its own, with the history row.
pub fn unwrap_transaction<'s, 'a>(statements: &'s [Statement<'a>]) -> Option<&'s [Statement<'a>]> {
    let [first, inner @ .., last] = statements else {
        return None;
    };
    let opens = matches!(
        bare_words(first.sql)?.as_slice(),
        [w] if w == "BEGIN"
    ) || matches!(
        bare_words(first.sql)?.as_slice(),
        [a, b] if (a == "BEGIN" && (b == "WORK" || b == "TRANSACTION")) || (a == "START" && b == "TRANSACTION")
    );
    let closes = matches!(
        bare_words(last.sql)?.as_slice(),
        [a] if a == "COMMIT" || a == "END"
    ) || matches!(
        bare_words(last.sql)?.as_slice(),
        [a, b] if (a == "COMMIT" || a == "END") && (b == "WORK" || b == "TRANSACTION")
    );
    let clean = !inner.iter().any(|s| is_transaction_control(s.sql));
    (opens && closes && clean).then_some(inner)
}

/// A file's statements without its plain transaction control, and the lines of the
/// statements left out: every `BEGIN`, `START TRANSACTION`, `COMMIT` and `END`
/// (optionally with `WORK` or `TRANSACTION`, without modes), when the file has at
/// least one and no other transaction control (`ROLLBACK`, `SAVEPOINT`, `BEGIN
/// ISOLATION LEVEL …`, `PREPARE TRANSACTION`…). `None` otherwise.
///
/// Such a file manages its own transactions, as psql and the Supabase CLI run it:
/// plover runs it statement by statement ([`apply`](crate::apply)); the Supabase
/// CLI's history comparison leaves these statements out on both sides.
pub fn without_transaction_blocks<'a>(
    statements: &[Statement<'a>],
) -> Option<(Vec<Statement<'a>>, Vec<usize>)> {
    let mut kept = Vec::with_capacity(statements.len());
    let mut lines = Vec::new();
    for st in statements {
        if !is_transaction_control(st.sql) {
            kept.push(st.clone());
        } else if is_plain_begin_or_commit(st.sql) {
            lines.push(st.line);
        } else {
            return None;
        }
    }
    (!lines.is_empty()).then_some((kept, lines))
}

/// The first `BEGIN` (or `START TRANSACTION`) that no later `COMMIT`/`END` closes:
/// run as written, the file would end inside a transaction.
pub fn unclosed_begin<'s, 'a>(statements: &'s [Statement<'a>]) -> Option<&'s Statement<'a>> {
    let mut open = None;
    for st in statements {
        if !is_plain_begin_or_commit(st.sql) {
            continue;
        }
        let opens = matches!(
            bare_words(st.sql)
                .as_deref()
                .and_then(<[String]>::first)
                .map(String::as_str),
            Some("BEGIN" | "START")
        );
        if opens {
            // A BEGIN inside an open block only warns on the server.
            open = open.or(Some(st));
        } else {
            open = None;
        }
    }
    open
}

/// For each statement, whether a transaction the file opened with a plain `BEGIN` is
/// still open after it runs (a `COMMIT` or `END` closes it).
pub fn open_after(statements: &[Statement<'_>]) -> Vec<bool> {
    let mut open = false;
    statements
        .iter()
        .map(|st| {
            if is_plain_begin_or_commit(st.sql) {
                open = matches!(
                    bare_words(st.sql)
                        .as_deref()
                        .and_then(<[String]>::first)
                        .map(String::as_str),
                    Some("BEGIN" | "START")
                );
            }
            open
        })
        .collect()
}

/// `BEGIN`, `BEGIN WORK|TRANSACTION`, `START TRANSACTION`, `COMMIT`, `END`,
/// `COMMIT|END WORK|TRANSACTION`, and nothing else.
pub fn is_plain_begin_or_commit(sql: &str) -> bool {
    let Some(words) = bare_words(sql) else {
        return false;
    };
    match words.as_slice() {
        [a] => a == "BEGIN" || a == "COMMIT" || a == "END",
        [a, b] => {
            ((a == "BEGIN" || a == "COMMIT" || a == "END") && (b == "WORK" || b == "TRANSACTION"))
                || (a == "START" && b == "TRANSACTION")
        }
        _ => false,
    }
}

/// A statement's words, upper-cased, when it holds nothing else (comments, blanks and
/// its `;` aside).
fn bare_words(sql: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    for token in Lexer::new(sql) {
        let token = token.ok()?;
        match token.kind {
            Kind::Space | Kind::Comment | Kind::Semicolon => {}
            Kind::Word => words.push(sql[token.start..token.end].to_ascii_uppercase()),
            _ => return None,
        }
    }
    Some(words)
}

/// The kind of statement that PostgreSQL refuses inside a transaction block
/// (`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`,
/// `REINDEX SCHEMA|DATABASE|SYSTEM`, `VACUUM`, `ALTER SYSTEM`, `CREATE`/`DROP DATABASE`,
/// `CREATE`/`DROP TABLESPACE`, `DISCARD ALL`), or `None`.
///
/// Only leading keywords count (a parenthesised option list such as
/// `REINDEX (VERBOSE)` is passed over), so comments and quoted or dollar-quoted text
/// never match. `ALTER TYPE … ADD VALUE` runs in a transaction since PostgreSQL 12
/// and is not one.
pub fn outside_transaction(sql: &str) -> Option<&'static str> {
    let words = keywords_past_options(sql, 4);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    Some(match w.as_slice() {
        ["VACUUM", ..] => "VACUUM",
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => "CREATE INDEX CONCURRENTLY",
        ["DROP", "INDEX", "CONCURRENTLY", ..] => "DROP INDEX CONCURRENTLY",
        ["REINDEX", _, "CONCURRENTLY", ..] => "REINDEX CONCURRENTLY",
        ["REINDEX", "SCHEMA", ..] => "REINDEX SCHEMA",
        ["REINDEX", "DATABASE", ..] => "REINDEX DATABASE",
        ["REINDEX", "SYSTEM", ..] => "REINDEX SYSTEM",
        ["ALTER", "SYSTEM", ..] => "ALTER SYSTEM",
        ["CREATE", "DATABASE", ..] => "CREATE DATABASE",
        ["DROP", "DATABASE", ..] => "DROP DATABASE",
        ["CREATE", "TABLESPACE", ..] => "CREATE TABLESPACE",
        ["DROP", "TABLESPACE", ..] => "DROP TABLESPACE",
        ["DISCARD", "ALL", ..] => "DISCARD ALL",
        _ => return None,
    })
}

/// Up to `n` leading keywords, upper-cased, passing over parenthesised groups (option
/// lists) between them; stops at anything else.
fn keywords_past_options(sql: &str, n: usize) -> Vec<String> {
    let mut keywords = Vec::new();
    let mut depth = 0usize;
    for token in Lexer::new(sql) {
        let Ok(token) = token else { break };
        match token.kind {
            Kind::Space | Kind::Comment => {}
            Kind::OpenParen => depth += 1,
            Kind::CloseParen if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            Kind::Word => {
                keywords.push(sql[token.start..token.end].to_ascii_uppercase());
                if keywords.len() == n {
                    break;
                }
            }
            _ => break,
        }
    }
    keywords
}

/// A `COPY` that streams its rows through the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCopy {
    /// `COPY … FROM STDIN`: the client sends the rows after the statement.
    FromStdin,
    /// `COPY … TO STDOUT`: the client receives the rows.
    ToStdout,
}

/// Whether a statement is a `COPY` whose data goes through the client (`FROM STDIN`,
/// `TO STDOUT`, any case), rather than to or from a file or program on the server.
///
/// `STDIN` and `STDOUT` count only as bare words after `FROM` or `TO` outside
/// parentheses, so a `COPY (SELECT … FROM stdin_log) TO '/tmp/x'` is not one.
pub fn client_copy(sql: &str) -> Option<ClientCopy> {
    let mut words = Lexer::new(sql)
        .map_while(Result::ok)
        .filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment));
    let first = words.next()?;
    if first.kind != Kind::Word || !sql[first.start..first.end].eq_ignore_ascii_case("copy") {
        return None;
    }
    let mut depth = 0_usize;
    let mut previous: Option<&str> = None;
    for token in words {
        let word = (token.kind == Kind::Word).then(|| &sql[token.start..token.end]);
        match token.kind {
            Kind::OpenParen => depth += 1,
            Kind::CloseParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0
            && let (Some(direction), Some(word)) = (previous, word)
            && (word.eq_ignore_ascii_case("stdin") || word.eq_ignore_ascii_case("stdout"))
        {
            if direction.eq_ignore_ascii_case("from") {
                return Some(ClientCopy::FromStdin);
            }
            if direction.eq_ignore_ascii_case("to") {
                return Some(ClientCopy::ToStdout);
            }
        }
        previous = word.filter(|_| depth == 0);
    }
    None
}

/// A line and column reached by walking the script from its start, so that positions
/// of successive statements cost one pass in total.
#[derive(Debug, Clone, Copy)]
struct Position {
    offset: usize,
    line: usize,
    column: usize,
}

impl Position {
    const START: Position = Position {
        offset: 0,
        line: 1,
        column: 1,
    };

    /// Moves to byte offset `to` (clamped to the text), counting lines and characters.
    fn advance(&mut self, bytes: &[u8], to: usize) {
        let to = to.min(bytes.len());
        if to < self.offset {
            *self = Position::START;
        }
        for &b in &bytes[self.offset..to] {
            if b == b'\n' {
                self.line += 1;
                self.column = 1;
            } else if !is_continuation(b) {
                self.column += 1;
            }
        }
        self.offset = to;
    }

    /// The statement `script[start..end]`, positioned by advancing to `start`.
    ///
    /// `start` and `end` are token bounds, which always fall on character boundaries.
    fn statement<'a>(&mut self, script: &'a str, start: usize, end: usize) -> Statement<'a> {
        self.advance(script.as_bytes(), start);
        Statement {
            sql: &script[start..end],
            offset: start,
            line: self.line,
            column: self.column,
        }
    }
}

/// psql's heuristic for what a `;` may not end: open parentheses, and the
/// `BEGIN … END` of a SQL-standard routine body.
///
/// Only in a statement whose first identifiers are `CREATE [OR REPLACE] FUNCTION` or
/// `… PROCEDURE` are `BEGIN`, `CASE` (once inside a `BEGIN`) and `END` at paren depth 0
/// counted, exactly as `psqlscan.l` does, so scripts split the same under psql and here.
#[derive(Debug, Default)]
struct Nesting {
    paren_depth: usize,
    begin_depth: usize,
    /// Identifiers seen in this statement (saturating).
    words: usize,
    /// The statement's first four identifiers, as far as the heuristic cares.
    head: [HeadWord; 4],
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum HeadWord {
    #[default]
    Other,
    Create,
    Or,
    Replace,
    Function,
    Procedure,
}

impl Nesting {
    fn at_top_level(&self) -> bool {
        self.paren_depth == 0 && self.begin_depth == 0
    }

    fn open_paren(&mut self) {
        self.paren_depth += 1;
    }

    fn close_paren(&mut self) {
        self.paren_depth = self.paren_depth.saturating_sub(1);
    }

    fn word(&mut self, word: &[u8]) {
        if let Some(slot) = self.head.get_mut(self.words) {
            *slot = HeadWord::of(word);
        }
        self.words = self.words.saturating_add(1);

        if !self.defines_routine() || self.paren_depth != 0 {
            return;
        }
        if word.eq_ignore_ascii_case(b"begin") {
            self.begin_depth += 1;
        } else if word.eq_ignore_ascii_case(b"case") {
            // CASE also ends with END; it only matters inside a BEGIN.
            if self.begin_depth > 0 {
                self.begin_depth += 1;
            }
        } else if word.eq_ignore_ascii_case(b"end") {
            self.begin_depth = self.begin_depth.saturating_sub(1);
        }
    }

    /// Whether the statement began `CREATE [OR REPLACE] {FUNCTION | PROCEDURE}`.
    fn defines_routine(&self) -> bool {
        use HeadWord::{Create, Function, Or, Procedure, Replace};
        matches!(
            self.head,
            [Create, Function | Procedure, _, _] | [Create, Or, Replace, Function | Procedure]
        )
    }
}

impl HeadWord {
    fn of(word: &[u8]) -> HeadWord {
        const WORDS: [(&[u8], HeadWord); 5] = [
            (b"create", HeadWord::Create),
            (b"or", HeadWord::Or),
            (b"replace", HeadWord::Replace),
            (b"function", HeadWord::Function),
            (b"procedure", HeadWord::Procedure),
        ];
        WORDS
            .iter()
            .find(|(text, _)| word.eq_ignore_ascii_case(text))
            .map_or(HeadWord::Other, |&(_, head)| head)
    }
}

/// What a token is, as far as splitting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A run of whitespace.
    Space,
    /// A `--` or (nesting) `/* */` comment.
    Comment,
    /// An unquoted identifier or keyword.
    Word,
    /// A quoted string, quoted identifier or dollar-quoted string.
    Literal,
    Semicolon,
    OpenParen,
    CloseParen,
    /// Anything else: one byte of an operator, number, `$1` parameter, ….
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    kind: Kind,
    /// Byte range of the token; both ends are character boundaries.
    start: usize,
    end: usize,
}

/// A construct left open at the end of the text: its name and where it started.
struct Open {
    what: &'static str,
    start: usize,
}

/// Tokenizes a script one token at a time; after an error it yields nothing more.
struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    /// The kind and end of the token starting at `i`, whose first byte is `b`.
    fn token_at(&self, i: usize, b: u8) -> Result<(Kind, usize), Open> {
        let next = self.at(i + 1);
        Ok(match b {
            _ if is_space(b) => (Kind::Space, self.skip_while(i + 1, is_space)),
            b'-' if next == Some(b'-') => (
                Kind::Comment,
                self.skip_while(i + 2, |c| c != b'\n' && c != b'\r'),
            ),
            b'/' if next == Some(b'*') => (Kind::Comment, self.block_comment_end(i)?),
            b'\'' | b'"' => (Kind::Literal, self.quoted_end(i, i, Escapes::Standard)?),
            b'$' => self.dollar(i)?,
            b';' => (Kind::Semicolon, i + 1),
            b'(' => (Kind::OpenParen, i + 1),
            b')' => (Kind::CloseParen, i + 1),
            // Prefixed strings: the prefix only counts at the start of a token, which
            // is why whole words are consumed below (`abe'x'` is `abe` then `'x'`).
            b'e' | b'E' if next == Some(b'\'') => (
                Kind::Literal,
                self.quoted_end(i, i + 1, Escapes::Backslash)?,
            ),
            b'b' | b'B' | b'x' | b'X' | b'n' | b'N' if next == Some(b'\'') => {
                (Kind::Literal, self.quoted_end(i, i + 1, Escapes::Standard)?)
            }
            b'u' | b'U' if next == Some(b'&') => match self.at(i + 2) {
                Some(b'\'' | b'"') => {
                    (Kind::Literal, self.quoted_end(i, i + 2, Escapes::Standard)?)
                }
                // psql lexes a lone `U&` as the letter, then `&`.
                _ => (Kind::Other, i + 1),
            },
            _ if is_ident_start(b) => (Kind::Word, self.skip_while(i + 1, is_ident_cont)),
            // Every byte from 0x80 up starts a word, so this is one ASCII character.
            _ => (Kind::Other, i + 1),
        })
    }

    /// The first offset from `i` whose byte fails `keep`, or the end of the text.
    fn skip_while(&self, i: usize, keep: impl Fn(u8) -> bool) -> usize {
        self.bytes
            .get(i..)
            .and_then(|rest| rest.iter().position(|&c| !keep(c)))
            .map_or(self.bytes.len(), |n| i + n)
    }

    /// End of the block comment opening at `start`; comments nest.
    fn block_comment_end(&self, start: usize) -> Result<usize, Open> {
        let mut depth = 1_usize;
        let mut i = start + 2;
        loop {
            match (self.at(i), self.at(i + 1)) {
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    i += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        return Ok(i);
                    }
                }
                (Some(_), _) => i += 1,
                (None, _) => {
                    return Err(Open {
                        what: "block comment",
                        start,
                    });
                }
            }
        }
    }

    /// End of the string or quoted identifier whose opening quote is at `quote_at` (the
    /// token itself starts at `start`, before any prefix). A doubled quote is part of
    /// the text; with [`Escapes::Backslash`] so is any character after a backslash.
    fn quoted_end(&self, start: usize, quote_at: usize, escapes: Escapes) -> Result<usize, Open> {
        let quote = self.bytes[quote_at];
        let mut i = quote_at + 1;
        while let Some(c) = self.at(i) {
            if c == quote {
                if self.at(i + 1) != Some(quote) {
                    return Ok(i + 1);
                }
                i += 2;
            } else if c == b'\\' && escapes == Escapes::Backslash {
                i += 2;
            } else {
                i += 1;
            }
        }
        let what = if quote == b'"' {
            "quoted identifier"
        } else {
            "quoted string"
        };
        Err(Open { what, start })
    }

    /// A `$` at `start`: a dollar quote if it opens `$$` or `$tag$`, else one character
    /// (as in the parameter `$1`).
    fn dollar(&self, start: usize) -> Result<(Kind, usize), Open> {
        let tag_end = match self.at(start + 1) {
            Some(c) if is_ident_start(c) => self.skip_while(start + 2, is_tag_cont),
            _ => start + 1,
        };
        if self.at(tag_end) != Some(b'$') {
            return Ok((Kind::Other, start + 1));
        }
        let delimiter = &self.bytes[start..=tag_end];
        let body = &self.bytes[tag_end + 1..];
        match body
            .windows(delimiter.len())
            .position(|window| window == delimiter)
        {
            Some(n) => Ok((Kind::Literal, tag_end + 1 + n + delimiter.len())),
            None => Err(Open {
                what: "dollar-quoted string",
                start,
            }),
        }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Result<Token, SplitError>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.pos;
        let b = self.at(start)?;
        match self.token_at(start, b) {
            Ok((kind, end)) => {
                self.pos = end;
                Some(Ok(Token { kind, start, end }))
            }
            Err(open) => {
                self.pos = self.bytes.len();
                let (line, column) = line_col(self.text, open.start);
                Some(Err(SplitError::Unterminated {
                    what: open.what,
                    line,
                    column,
                }))
            }
        }
    }
}

/// Whether a backslash escapes the next character inside a quoted string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// `'…'` with standard_conforming_strings on: a backslash is just a character.
    Standard,
    /// `E'…'`: a backslash escapes the next character.
    Backslash,
}

/// Whitespace as the Postgres lexer sees it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// First byte of an unquoted identifier; every non-ASCII byte qualifies.
fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// Later bytes of an unquoted identifier, which include `$` (so `a$b` is one word).
fn is_ident_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit() || b == b'$'
}

/// Later bytes of a dollar-quote tag: like an identifier, but without `$`.
fn is_tag_cont(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// Whether `b` continues a multi-byte UTF-8 character.
fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the script holds nothing but whitespace and comments.
    fn is_blank(sql: &str) -> bool {
        Lexer::new(sql).all(|token| {
            matches!(
                token,
                Ok(Token {
                    kind: Kind::Space | Kind::Comment,
                    ..
                })
            )
        })
    }

    /// Splits `input` and compares the statements' text.
    #[track_caller]
    fn check(input: &str, expected: &[&str]) {
        let statements = split(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        let got: Vec<&str> = statements.iter().map(|s| s.sql).collect();
        assert_eq!(got, expected, "input: {input:?}");
        for s in &statements {
            assert_eq!(&input[s.offset..s.offset + s.sql.len()], s.sql);
            assert_eq!(line_col(input, s.offset), (s.line, s.column));
        }
    }

    /// Splits `input` and compares the statements' text, line and column.
    #[track_caller]
    fn check_at(input: &str, expected: &[(&str, usize, usize)]) {
        let got: Vec<(&str, usize, usize)> = split(input)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
            .iter()
            .map(|s| (s.sql, s.line, s.column))
            .collect();
        assert_eq!(got, expected, "input: {input:?}");
    }

    /// Splits `input` expecting an unterminated `what` that starts at `line`:`column`.
    #[track_caller]
    fn check_err(input: &str, what: &str, line: usize, column: usize) {
        match split(input) {
            Err(SplitError::Unterminated {
                what: w,
                line: l,
                column: c,
            }) => assert_eq!((w, l, c), (what, line, column), "input: {input:?}"),
            Ok(statements) => panic!("{input:?}: expected an error, got {statements:?}"),
        }
    }

    // Statement boundaries.

    #[test]
    fn splits_on_semicolons() {
        check("SELECT 1; SELECT 2;", &["SELECT 1;", "SELECT 2;"]);
        check("SELECT 1;\nSELECT 2;\n", &["SELECT 1;", "SELECT 2;"]);
    }

    #[test]
    fn last_statement_may_lack_semicolon() {
        check("SELECT 1;\nSELECT 2", &["SELECT 1;", "SELECT 2"]);
        check("SELECT 1", &["SELECT 1"]);
        check("SELECT 1;\nSELECT 2  \n\n", &["SELECT 1;", "SELECT 2"]);
    }

    #[test]
    fn trailing_comments_of_last_statement_are_dropped() {
        check("SELECT 2 -- note\n", &["SELECT 2"]);
        check("SELECT 2 /* note */ \n-- more", &["SELECT 2"]);
    }

    #[test]
    fn empty_statements_are_skipped() {
        check("", &[]);
        check(" \n\t ", &[]);
        check(";", &[]);
        check(";;  ; -- c\n; /* d */ ;", &[]);
        check(";SELECT 1;;SELECT 2;;", &["SELECT 1;", "SELECT 2;"]);
    }

    #[test]
    fn leading_comments_are_skipped() {
        check_at(
            "-- header\n/* block */\n  SELECT 1;",
            &[("SELECT 1;", 3, 3)],
        );
    }

    #[test]
    fn comment_after_semicolon_belongs_to_nothing() {
        check(
            "SELECT 1; -- first\nSELECT 2; /* second */\n",
            &["SELECT 1;", "SELECT 2;"],
        );
    }

    #[test]
    fn comments_inside_a_statement_are_kept() {
        check(
            "SELECT /* ; */ 1 -- ;\n + 2;",
            &["SELECT /* ; */ 1 -- ;\n + 2;"],
        );
    }

    // Comments.

    #[test]
    fn line_comment_hides_semicolon() {
        check(
            "SELECT 1 -- a; b\n, 2; SELECT 3;",
            &["SELECT 1 -- a; b\n, 2;", "SELECT 3;"],
        );
    }

    #[test]
    fn line_comment_without_trailing_newline() {
        check("SELECT 1; -- the end", &["SELECT 1;"]);
        check("-- only; a comment", &[]);
    }

    #[test]
    fn line_comment_ends_at_carriage_return() {
        check("SELECT 1 -- x\r, 2;", &["SELECT 1 -- x\r, 2;"]);
    }

    #[test]
    fn block_comment_hides_semicolon() {
        check(
            "SELECT /* ; */ 1; SELECT 2;",
            &["SELECT /* ; */ 1;", "SELECT 2;"],
        );
    }

    #[test]
    fn block_comments_nest() {
        check(
            "/* a /* b; */ c; */ SELECT 1; SELECT 2;",
            &["SELECT 1;", "SELECT 2;"],
        );
        check(
            "SELECT /* a /* b */ ; */ 1;",
            &["SELECT /* a /* b */ ; */ 1;"],
        );
    }

    #[test]
    fn block_comment_edge_delimiters() {
        check("/**/SELECT 1;", &["SELECT 1;"]);
        check("/*/ ; */SELECT 1;", &["SELECT 1;"]);
        check("/* ; **/SELECT 1;", &["SELECT 1;"]);
        check("SELECT 2 +/* ; */ 1;", &["SELECT 2 +/* ; */ 1;"]);
    }

    #[test]
    fn minus_and_slash_are_operators() {
        check(
            "SELECT 1-1; SELECT 4 / 2;",
            &["SELECT 1-1;", "SELECT 4 / 2;"],
        );
        check("SELECT -1;", &["SELECT -1;"]);
    }

    // Strings and identifiers.

    #[test]
    fn standard_string_hides_semicolon() {
        check("SELECT 'a;b'; SELECT 2;", &["SELECT 'a;b';", "SELECT 2;"]);
        check("SELECT '--;', '/*;';", &["SELECT '--;', '/*;';"]);
    }

    #[test]
    fn standard_string_doubled_quote() {
        check(
            "SELECT 'it''s; ok'; SELECT 2;",
            &["SELECT 'it''s; ok';", "SELECT 2;"],
        );
        check("SELECT ''; SELECT '''';", &["SELECT '';", "SELECT '''';"]);
    }

    #[test]
    fn standard_string_backslash_is_literal() {
        check(r"SELECT 'C:\'; SELECT 2;", &[r"SELECT 'C:\';", "SELECT 2;"]);
    }

    #[test]
    fn escape_string_backslash_escapes() {
        check(
            r"SELECT E'it\'s; ok'; SELECT 2;",
            &[r"SELECT E'it\'s; ok';", "SELECT 2;"],
        );
        check(
            r"SELECT e'a\\'; SELECT 2;",
            &[r"SELECT e'a\\';", "SELECT 2;"],
        );
        check(
            r"SELECT E'it''s;\n'; SELECT 2;",
            &[r"SELECT E'it''s;\n';", "SELECT 2;"],
        );
    }

    #[test]
    fn escape_prefix_only_at_word_start() {
        // `abe'…'` is the identifier `abe` and then a standard string.
        check(
            r"SELECT abe'C:\'; SELECT 2;",
            &[r"SELECT abe'C:\';", "SELECT 2;"],
        );
    }

    #[test]
    fn unicode_escape_string_and_identifier() {
        check(
            r"SELECT U&'d\0061t\+000061; x'; SELECT 2;",
            &[r"SELECT U&'d\0061t\+000061; x';", "SELECT 2;"],
        );
        check(
            r#"SELECT u&"a;b" FROM t; SELECT 2;"#,
            &[r#"SELECT u&"a;b" FROM t;"#, "SELECT 2;"],
        );
        check("SELECT U & 1;", &["SELECT U & 1;"]);
    }

    #[test]
    fn bit_hex_and_national_strings() {
        check(
            "SELECT B'1;0', X'1;F', N'a;b'; SELECT 2;",
            &["SELECT B'1;0', X'1;F', N'a;b';", "SELECT 2;"],
        );
    }

    #[test]
    fn quoted_identifier_hides_semicolon() {
        check(
            r#"CREATE TABLE "a;b" (id int); SELECT 2;"#,
            &[r#"CREATE TABLE "a;b" (id int);"#, "SELECT 2;"],
        );
        check(
            r#"SELECT 1 AS "x"";y"; SELECT 2;"#,
            &[r#"SELECT 1 AS "x"";y";"#, "SELECT 2;"],
        );
        check(r#"SELECT 1 AS "it's;";"#, &[r#"SELECT 1 AS "it's;";"#]);
    }

    // Dollar quotes.

    #[test]
    fn dollar_quote_hides_semicolon() {
        check(
            "DO $$ BEGIN PERFORM 1; END $$; SELECT 2;",
            &["DO $$ BEGIN PERFORM 1; END $$;", "SELECT 2;"],
        );
    }

    #[test]
    fn tagged_dollar_quote() {
        check(
            "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$;$$ || ';' $fn$ LANGUAGE sql; SELECT 2;",
            &[
                "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$;$$ || ';' $fn$ LANGUAGE sql;",
                "SELECT 2;",
            ],
        );
        check(
            "SELECT $_t1$ ; $_t1$; SELECT 2;",
            &["SELECT $_t1$ ; $_t1$;", "SELECT 2;"],
        );
    }

    #[test]
    fn dollar_quote_tags_are_case_sensitive() {
        check(
            "SELECT $a$ ; $A$ ; $a$; SELECT 2;",
            &["SELECT $a$ ; $A$ ; $a$;", "SELECT 2;"],
        );
    }

    #[test]
    fn dollar_quote_closes_at_first_matching_delimiter() {
        // `$x$a$` holds the closing `$a$` after a failed `$x$`.
        check(
            "SELECT $a$ ; $x$a$; SELECT 2;",
            &["SELECT $a$ ; $x$a$;", "SELECT 2;"],
        );
        check("SELECT $a$$a$; SELECT 2;", &["SELECT $a$$a$;", "SELECT 2;"]);
    }

    #[test]
    fn dollar_quote_body_ignores_other_quotes() {
        check(
            "SELECT $$ ' \" /* -- $$; SELECT 2;",
            &["SELECT $$ ' \" /* -- $$;", "SELECT 2;"],
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes() {
        check(
            "PREPARE q (int) AS SELECT $1; SELECT $2 + $10;",
            &["PREPARE q (int) AS SELECT $1;", "SELECT $2 + $10;"],
        );
    }

    #[test]
    fn dollar_inside_identifier_is_not_a_quote() {
        check(
            "SELECT a$b$c; SELECT 2; SELECT x$$ FROM t;",
            &["SELECT a$b$c;", "SELECT 2;", "SELECT x$$ FROM t;"],
        );
    }

    #[test]
    fn dollar_quote_tag_cannot_start_with_digit() {
        check("SELECT $1a$; SELECT 2;", &["SELECT $1a$;", "SELECT 2;"]);
    }

    #[test]
    fn lone_dollar_sign() {
        check(
            "SELECT $; SELECT $abc; SELECT 3",
            &["SELECT $;", "SELECT $abc;", "SELECT 3"],
        );
    }

    // Parentheses.

    #[test]
    fn semicolon_inside_parentheses_does_not_split() {
        check(
            "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 3;",
            &[
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));",
                "SELECT 3;",
            ],
        );
    }

    #[test]
    fn unbalanced_close_paren_does_not_go_negative() {
        check("SELECT 1); SELECT (2);", &["SELECT 1);", "SELECT (2);"]);
    }

    #[test]
    fn unclosed_paren_runs_to_end() {
        check("SELECT (1; SELECT 2;", &["SELECT (1; SELECT 2;"]);
    }

    // SQL-standard routine bodies.

    #[test]
    fn begin_atomic_body_is_one_statement() {
        check(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END; SELECT 3;",
            &[
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;",
                "SELECT 3;",
            ],
        );
    }

    #[test]
    fn begin_atomic_in_create_or_replace_procedure() {
        check(
            "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql\nBEGIN ATOMIC\n  INSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (2);\nEND;\nCALL p();",
            &[
                "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql\nBEGIN ATOMIC\n  INSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (2);\nEND;",
                "CALL p();",
            ],
        );
        check(
            "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; END; SELECT 2;",
            &[
                "CREATE PROCEDURE p() BEGIN ATOMIC SELECT 1; END;",
                "SELECT 2;",
            ],
        );
        check(
            "CREATE OR REPLACE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; SELECT 2;",
            &[
                "CREATE OR REPLACE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END;",
                "SELECT 2;",
            ],
        );
    }

    #[test]
    fn case_inside_begin_atomic_does_not_close_it() {
        check(
            "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END; SELECT 4;",
            &[
                "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END; SELECT 3; END;",
                "SELECT 4;",
            ],
        );
    }

    #[test]
    fn routine_keywords_are_case_insensitive() {
        check(
            "cReAtE oR rEpLaCe FuNcTiOn f() returns int language sql bEgIn AtOmIc select 1; eNd; select 2;",
            &[
                "cReAtE oR rEpLaCe FuNcTiOn f() returns int language sql bEgIn AtOmIc select 1; eNd;",
                "select 2;",
            ],
        );
    }

    #[test]
    fn routine_keywords_inside_parentheses_are_not_counted() {
        check(
            "CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN (begin + 1); SELECT 2;",
            &[
                "CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN (begin + 1);",
                "SELECT 2;",
            ],
        );
    }

    #[test]
    fn routine_keywords_in_quotes_are_not_counted() {
        check(
            "CREATE FUNCTION f() RETURNS int AS 'begin' LANGUAGE sql; SELECT 2;",
            &[
                "CREATE FUNCTION f() RETURNS int AS 'begin' LANGUAGE sql;",
                "SELECT 2;",
            ],
        );
        check(
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$; SELECT 2;",
            &[
                "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$;",
                "SELECT 2;",
            ],
        );
    }

    #[test]
    fn begin_and_case_outside_routines_split_normally() {
        check(
            "BEGIN; SELECT 1; COMMIT;",
            &["BEGIN;", "SELECT 1;", "COMMIT;"],
        );
        check(
            "SELECT CASE WHEN true THEN 1 END; SELECT 2;",
            &["SELECT CASE WHEN true THEN 1 END;", "SELECT 2;"],
        );
        check(
            "CREATE TABLE t (begin int); SELECT 1;",
            &["CREATE TABLE t (begin int);", "SELECT 1;"],
        );
        check(
            "CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION begin(); SELECT 1;",
            &[
                "CREATE TRIGGER tr AFTER INSERT ON t EXECUTE FUNCTION begin();",
                "SELECT 1;",
            ],
        );
    }

    #[test]
    fn routine_detection_resets_after_each_statement() {
        check(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1; BEGIN; SELECT 1; END;",
            &[
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1;",
                "BEGIN;",
                "SELECT 1;",
                "END;",
            ],
        );
    }

    #[test]
    fn leading_comment_does_not_hide_create_function() {
        check(
            "-- f\nCREATE /* x */ FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; SELECT 2;",
            &[
                "CREATE /* x */ FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END;",
                "SELECT 2;",
            ],
        );
    }

    // Positions.

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        check_at(
            "SELECT 1;\n  SELECT 2; SELECT 3;\n\n\tSELECT 4",
            &[
                ("SELECT 1;", 1, 1),
                ("SELECT 2;", 2, 3),
                ("SELECT 3;", 2, 13),
                ("SELECT 4", 4, 2),
            ],
        );
    }

    #[test]
    fn offsets_point_into_the_script() {
        let script = "-- x\nSELECT 1;  SELECT 2";
        let statements = split(script).unwrap();
        assert_eq!(statements[0].offset, 5);
        assert_eq!(statements[1].offset, 16);
        assert_eq!(&script[16..], "SELECT 2");
    }

    #[test]
    fn crlf_line_endings() {
        check_at(
            "SELECT 1;\r\n-- c\r\nSELECT 2;\r\n  SELECT\r\n 3;\r\n",
            &[
                ("SELECT 1;", 1, 1),
                ("SELECT 2;", 3, 1),
                ("SELECT\r\n 3;", 4, 3),
            ],
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        check_at(
            "-- héllo wörld ☃\nSELECT 'ü'; SELECT 2;\n/* 日本 */ SELECT 3;",
            &[
                ("SELECT 'ü';", 2, 1),
                ("SELECT 2;", 2, 13),
                ("SELECT 3;", 3, 10),
            ],
        );
    }

    #[test]
    fn non_ascii_identifiers() {
        check(
            "SELECT ünïcödé$1 FROM tâble; SELECT 2;",
            &["SELECT ünïcödé$1 FROM tâble;", "SELECT 2;"],
        );
        check(
            "SELECT $é$ ; $é$; SELECT 2;",
            &["SELECT $é$ ; $é$;", "SELECT 2;"],
        );
    }

    #[test]
    fn line_col_of_offsets() {
        let text = "ab\nçd\r\nef";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (1, 3)); // the '\n'
        assert_eq!(line_col(text, 3), (2, 1)); // 'ç'
        assert_eq!(line_col(text, 4), (2, 1)); // inside 'ç'
        assert_eq!(line_col(text, 5), (2, 2)); // 'd'
        assert_eq!(line_col(text, 8), (3, 1)); // 'e'
        assert_eq!(line_col(text, text.len()), (3, 3));
        assert_eq!(line_col(text, 1000), (3, 3));
        assert_eq!(line_col("", 0), (1, 1));
    }

    // Errors.

    #[test]
    fn unterminated_string() {
        check_err("SELECT 1;\n  SELECT 'abc;", "quoted string", 2, 10);
        check_err("SELECT 'it''", "quoted string", 1, 8);
    }

    #[test]
    fn unterminated_escape_string() {
        check_err(r"SELECT E'abc\'", "quoted string", 1, 8);
        check_err(r"SELECT E'abc\", "quoted string", 1, 8);
    }

    #[test]
    fn unterminated_prefixed_strings() {
        check_err("SELECT U&'x", "quoted string", 1, 8);
        check_err("SELECT U&\"x", "quoted identifier", 1, 8);
        check_err("SELECT X'1", "quoted string", 1, 8);
    }

    #[test]
    fn unterminated_quoted_identifier() {
        check_err("SELECT \"a\"\"b;", "quoted identifier", 1, 8);
    }

    #[test]
    fn unterminated_dollar_quote() {
        check_err("SELECT 1;\nDO $$ BEGIN", "dollar-quoted string", 2, 4);
        check_err("SELECT $tag$ x $TAG$ $tag", "dollar-quoted string", 1, 8);
    }

    #[test]
    fn unterminated_block_comment() {
        check_err("SELECT 1; /* x", "block comment", 1, 11);
        check_err("/* a /* b */ c", "block comment", 1, 1);
        check_err("-- é\n  ü /* x", "block comment", 2, 5);
    }

    #[test]
    fn error_message_names_construct_and_position() {
        let err = split("\n  'x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unterminated quoted string starting at line 2, column 3"
        );
    }

    // Keywords and classification.

    #[test]
    fn leading_keywords_skip_comments_and_uppercase() {
        assert_eq!(
            leading_keywords("-- c\n/* d */ start\ttransaction;", 2),
            ["START", "TRANSACTION"]
        );
        assert_eq!(
            leading_keywords("create index i on t (a);", 2),
            ["CREATE", "INDEX"]
        );
        assert_eq!(leading_keywords("create index i on t (a);", 1), ["CREATE"]);
        assert_eq!(
            leading_keywords("create index i on t (a);", 0),
            Vec::<String>::new()
        );
        assert_eq!(leading_keywords("SELECT 'x'", 2), ["SELECT"]);
        assert_eq!(leading_keywords("", 2), Vec::<String>::new());
        assert_eq!(leading_keywords("/* open", 2), Vec::<String>::new());
        assert_eq!(leading_keywords("(SELECT 1)", 2), Vec::<String>::new());
    }

    #[test]
    fn transaction_control_statements() {
        for sql in [
            "BEGIN;",
            "begin",
            "BEGIN WORK;",
            "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE;",
            "START TRANSACTION;",
            "COMMIT;",
            "commit and chain",
            "COMMIT PREPARED 'x';",
            "END;",
            "ROLLBACK;",
            "ROLLBACK TO SAVEPOINT s;",
            "ROLLBACK PREPARED 'x';",
            "ABORT;",
            "SAVEPOINT s;",
            "RELEASE SAVEPOINT s;",
            "RELEASE s;",
            "PREPARE TRANSACTION 'x';",
            "-- comment\n/* c */ Commit;",
        ] {
            assert!(is_transaction_control(sql), "{sql:?}");
        }
    }

    #[test]
    fn non_transaction_control_statements() {
        for sql in [
            "CREATE INDEX i ON t (a);",
            "PREPARE q AS SELECT 1;",
            "START;",
            "SELECT 'begin';",
            "BEGINNING;",
            "begin_date;",
            "DO $$ BEGIN PERFORM 1; END $$;",
            "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END;",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;",
            "\"BEGIN\";",
            "",
            "-- COMMIT",
        ] {
            assert!(!is_transaction_control(sql), "{sql:?}");
        }
    }

    #[test]
    fn copy_through_the_client() {
        let check = |sql: &str, expected| assert_eq!(client_copy(sql), expected, "{sql}");
        check("COPY t FROM STDIN;", Some(ClientCopy::FromStdin));
        check(
            "copy public.t (a, b) from stdin;",
            Some(ClientCopy::FromStdin),
        );
        check(
            "Copy t FROM StdIn WITH (FORMAT csv);",
            Some(ClientCopy::FromStdin),
        );
        check(
            "/* x */ copy t\nfrom -- c\n stdin",
            Some(ClientCopy::FromStdin),
        );
        check("COPY BINARY t FROM STDIN;", Some(ClientCopy::FromStdin));
        check("copy t to stdout;", Some(ClientCopy::ToStdout));
        check(
            "COPY (SELECT a FROM stdin_log) TO STDOUT;",
            Some(ClientCopy::ToStdout),
        );
        check("copy t from '/tmp/stdin';", None);
        check("copy t from program 'cat';", None);
        check("copy \"from\" to '/tmp/x';", None);
        check("copy (select * from stdin) to '/tmp/x';", None);
        check("select 'copy t from stdin';", None);
        check("insert into t select * from stdin;", None);
        check("create table copy (stdin int);", None);
    }

    // Invariants over many small scripts.

    #[test]
    fn invariants_hold_for_fragment_combinations() {
        const FRAGMENTS: [&str; 16] = [
            "SELECT 1",
            ";",
            " ",
            "\r\n",
            "-- ü;\n",
            "/* ; /* ☃ */ */",
            "'a;''b'",
            r"E'\';'",
            "\"x;\"",
            "$$;$$",
            "$t$ ; $t$",
            "(",
            ")",
            "é$1",
            "CREATE FUNCTION f() BEGIN ATOMIC SELECT CASE 1 END; END",
            "$1",
        ];
        let mut scripts = 0;
        for a in FRAGMENTS {
            for b in FRAGMENTS {
                for c in FRAGMENTS {
                    let script = format!("{a}{b}{c}");
                    scripts += 1;
                    let Ok(statements) = split(&script) else {
                        continue;
                    };
                    let mut previous_end = 0;
                    for s in statements {
                        assert!(s.offset >= previous_end, "{script:?}");
                        assert_eq!(&script[s.offset..s.offset + s.sql.len()], s.sql);
                        assert_eq!(line_col(&script, s.offset), (s.line, s.column));
                        assert!(!is_blank(s.sql), "{script:?}");
                        assert!(!s.sql.starts_with(is_space_char), "{script:?}");
                        previous_end = s.offset + s.sql.len();
                    }
                }
            }
        }
        assert_eq!(scripts, FRAGMENTS.len().pow(3));
    }

    fn is_space_char(c: char) -> bool {
        u8::try_from(c).is_ok_and(is_space)
    }

    #[test]
    fn large_script_splits() {
        let script = "INSERT INTO t VALUES (1, 'x;y', $$z;$$); -- c\n".repeat(10_000);
        let statements = split(&script).unwrap();
        assert_eq!(statements.len(), 10_000);
        assert_eq!(statements[9_999].line, 10_000);
    }

    #[test]
    fn a_file_wrapped_whole_in_one_transaction_block() {
        fn inner(sql: &str) -> Option<Vec<&str>> {
            let statements = split(sql).unwrap();
            unwrap_transaction(&statements).map(|s| s.iter().map(|s| s.sql).collect())
        }
        let body = Some(vec![
            "create table t (id int);",
            "insert into t values (1);",
        ]);
        for sql in [
            "BEGIN;\ncreate table t (id int);\ninsert into t values (1);\nCOMMIT;\n",
            "-- header\n\nbegin transaction;\ncreate table t (id int);\ninsert into t values (1);\nend;\n-- trailer\n",
            "Start Transaction;create table t (id int);insert into t values (1);commit work",
            "/* a */ BEGIN WORK /* b */;\ncreate table t (id int);\ninsert into t values (1);\nCOMMIT TRANSACTION;",
        ] {
            assert_eq!(inner(sql), body, "{sql:?}");
        }
        assert_eq!(inner("begin;\ncommit;\n"), Some(vec![]));
        for sql in [
            "create table t (id int);",
            "begin;\ncreate table t (id int);\n",
            "create table t (id int);\ncommit;\n",
            "begin;\nselect 1;\ncommit;\nbegin;\nselect 2;\ncommit;\n",
            "begin;\nselect 1;\ncommit;\nselect 2;\n",
            "begin;\nselect 1;\nrollback;\n",
            "begin;\nselect 1;\nsavepoint s;\nselect 2;\ncommit;\n",
            "begin isolation level serializable;\nselect 1;\ncommit;\n",
            "commit;\nselect 1;\nbegin;\n",
            "begin;",
            "",
            "DO $$ BEGIN PERFORM 1; END $$;\nselect 1;\ncommit;",
        ] {
            assert_eq!(inner(sql), None, "{sql:?}");
        }
    }

    #[test]
    fn statements_that_cannot_run_in_a_transaction_block() {
        for (sql, kind) in [
            (
                "CREATE INDEX CONCURRENTLY i ON t (a);",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "create unique index concurrently if not exists i on t (a);",
                "CREATE INDEX CONCURRENTLY",
            ),
            (
                "-- why\n/* x */ drop index concurrently if exists i;",
                "DROP INDEX CONCURRENTLY",
            ),
            ("reindex table concurrently t;", "REINDEX CONCURRENTLY"),
            (
                "REINDEX (VERBOSE, TABLESPACE fast) INDEX CONCURRENTLY i;",
                "REINDEX CONCURRENTLY",
            ),
            ("reindex schema public;", "REINDEX SCHEMA"),
            ("REINDEX DATABASE postgres;", "REINDEX DATABASE"),
            ("vacuum analyze t;", "VACUUM"),
            ("VACUUM (FULL) t;", "VACUUM"),
            ("alter system set work_mem = '64MB';", "ALTER SYSTEM"),
            ("create database other;", "CREATE DATABASE"),
            ("drop database if exists other;", "DROP DATABASE"),
            (
                "create tablespace fast location '/srv';",
                "CREATE TABLESPACE",
            ),
            ("drop tablespace fast;", "DROP TABLESPACE"),
            ("discard all;", "DISCARD ALL"),
        ] {
            assert_eq!(outside_transaction(sql), Some(kind), "{sql:?}");
        }
        for sql in [
            "create index i on t (a);",
            "create index concurrently_named on t (a);",
            "alter type mood add value 'meh';",
            "reindex table t;",
            "select 'create index concurrently i on t (a)';",
            "-- create index concurrently i on t (a);\nselect 1;",
            "do $$ begin execute 'vacuum'; end $$;",
            "comment on index i is 'built concurrently';",
            "\"vacuum\";",
            "discard temp;",
            "alter database postgres set search_path = public;",
            "",
        ] {
            assert_eq!(outside_transaction(sql), None, "{sql:?}");
        }
    }

    /// The example that documented `SplitError`.
    #[test]
    fn example_spliterror() {
        let err = split("SELECT 1;\nSELECT 'oops;").unwrap_err();
        assert_eq!(
            err,
            SplitError::Unterminated {
                what: "quoted string",
                line: 2,
                column: 8
            }
        );
    }

    /// The example that documented `split`.
    #[test]
    fn example_split() -> Result<(), SplitError> {
        let script = "CREATE TABLE t (id int, note text);\n\
                      -- seed data\n\
                      INSERT INTO t VALUES (1, 'a; b');\n\
                      CREATE FUNCTION one() RETURNS int LANGUAGE sql\n\
                      BEGIN ATOMIC SELECT 1; END;";
        let statements = split(script)?;
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[1].sql, "INSERT INTO t VALUES (1, 'a; b');");
        assert_eq!((statements[1].line, statements[1].column), (3, 1));
        assert!(statements[2].sql.ends_with("BEGIN ATOMIC SELECT 1; END;"));
        Ok(())
    }

    /// The example that documented `line_col`.
    #[test]
    fn example_line_col() {
        let text = "-- héllo\r\nSELECT 1;";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (1, 4)); // 'h'
        assert_eq!(line_col(text, 6), (1, 6)); // 'l', after the two-byte 'é'
        assert_eq!(line_col(text, text.find("SELECT").unwrap()), (2, 1));
    }

    /// The example that documented `leading_keywords`.
    #[test]
    fn example_leading_keywords() {
        assert_eq!(
            leading_keywords("/* c */ create -- x\n index i ON t (a);", 2),
            ["CREATE", "INDEX"]
        );
        assert_eq!(leading_keywords("commit;", 2), ["COMMIT"]);
    }

    /// The example that documented `is_transaction_control`.
    #[test]
    fn example_is_transaction_control() {
        assert!(is_transaction_control(
            "-- go\nbegin isolation level serializable;"
        ));
        assert!(is_transaction_control("ROLLBACK TO SAVEPOINT s;"));
        assert!(!is_transaction_control("PREPARE q AS SELECT 1;"));
        assert!(!is_transaction_control("DO $$ BEGIN PERFORM 1; END $$;"));
    }

    /// The example that documented `unwrap_transaction`.
    #[test]
    fn example_unwrap_transaction() -> Result<(), SplitError> {
        let statements = split("-- set up\nBEGIN;\ncreate table t (id int);\nCOMMIT;\n")?;
        let inner = unwrap_transaction(&statements).unwrap();
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0].sql, "create table t (id int);");
        assert!(
            unwrap_transaction(&split("begin; select 1; commit; begin; select 2; commit;")?)
                .is_none()
        );
        Ok(())
    }

    /// The example that documented `without_transaction_blocks`.
    #[test]
    fn example_without_transaction_blocks() -> Result<(), SplitError> {
        let statements =
            split("create table a (id int);\nbegin;\ninsert into a values (1);\ncommit;\nend;\n")?;
        let (kept, lines) = without_transaction_blocks(&statements).unwrap();
        assert_eq!(
            kept.iter().map(|s| s.sql).collect::<Vec<_>>(),
            ["create table a (id int);", "insert into a values (1);"]
        );
        assert_eq!(lines, [2, 4, 5]);
        assert!(without_transaction_blocks(&split("begin; select 1; rollback;")?).is_none());
        assert!(without_transaction_blocks(&split("select 1;")?).is_none());
        Ok(())
    }

    /// The example that documented `unclosed_begin`.
    #[test]
    fn example_unclosed_begin() -> Result<(), SplitError> {
        assert_eq!(
            unclosed_begin(&split("begin;\nselect 1;\ncommit;\nbegin;\nselect 2;\n")?)
                .map(|s| s.line),
            Some(4)
        );
        assert!(unclosed_begin(&split("begin;\nbegin;\nselect 1;\nend;\ncommit;\n")?).is_none());
        Ok(())
    }

    /// The example that documented `open_after`.
    #[test]
    fn example_open_after() -> Result<(), SplitError> {
        let statements = split("select 1;\nbegin;\nselect 2;\ncommit;\nselect 3;\n")?;
        assert_eq!(open_after(&statements), [false, true, true, false, false]);
        Ok(())
    }

    /// The example that documented `outside_transaction`.
    #[test]
    fn example_outside_transaction() {
        assert_eq!(
            outside_transaction("create unique index concurrently i on t (a);"),
            Some("CREATE INDEX CONCURRENTLY")
        );
        assert_eq!(
            outside_transaction("REINDEX (VERBOSE) TABLE CONCURRENTLY t;"),
            Some("REINDEX CONCURRENTLY")
        );
        assert_eq!(outside_transaction("select 'vacuum';"), None);
        assert_eq!(
            outside_transaction("alter type mood add value 'meh';"),
            None
        );
    }

    /// The example that documented `client_copy`.
    #[test]
    fn example_client_copy() {
        assert_eq!(
            client_copy("copy t (a, b) from stdin with (format csv);"),
            Some(ClientCopy::FromStdin)
        );
        assert_eq!(
            client_copy("COPY (SELECT 1) TO STDOUT;"),
            Some(ClientCopy::ToStdout)
        );
        assert_eq!(client_copy("copy t from '/data/t.csv';"), None);
    }
}
