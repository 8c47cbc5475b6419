//! The rule registry: every rule's id, default severity, group, reason and fix hint.
//!
//! The README's rule table is rendered from this list ([`rules_markdown`]) and a test
//! checks it, so the documentation cannot drift from the code.

use std::fmt;

/// How serious a finding is. Any [`Severity::Error`] makes `db lint` exit non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth a look; does not fail the command.
    Warning,
    /// Fails the command.
    Error,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which family a rule belongs to (the README groups the table by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// The migration files and their history.
    History,
    /// What can and cannot run in the transaction plover wraps a file in.
    Transactions,
    /// Supabase security: RLS, policies, grants, functions and views exposed by the API.
    Security,
    /// Locks that block reads or writes on tables that already hold data.
    Locks,
    /// Statements that lose data or break the running app.
    Destructive,
    /// Team conventions that make migrations re-runnable and readable.
    Robustness,
    /// The linter itself: syntax errors and suppression comments.
    Lint,
    /// Catalog checks on a disposable database the migrations were applied to (`--live`).
    Live,
}

impl Group {
    /// The heading used in the rule table.
    pub fn title(self) -> &'static str {
        match self {
            Group::History => "history",
            Group::Transactions => "transactions",
            Group::Security => "Supabase security",
            Group::Locks => "locks on existing tables",
            Group::Destructive => "destructive and breaking",
            Group::Robustness => "robustness",
            Group::Lint => "lint",
            Group::Live => "catalog checks (--live)",
        }
    }
}

/// Whether a rule runs unless configured otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activation {
    /// Runs by default: its findings on real projects are nearly always right.
    Default,
    /// A team convention, off unless `[lint.rules]` gives it a level.
    OptIn,
}

/// When the statements a rule judges matter: the statements of a function or
/// procedure body run whenever the function is called, not when the migration runs,
/// so a rule about the migration run (its locks, its data loss, its transaction) says
/// nothing about them. `DO` blocks run with the migration: every rule applies there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Only the migration run: not applied to function bodies (history, transactions,
    /// locks, destructive changes, re-runnability).
    Migration,
    /// What the statement does whenever it runs: applied to function bodies too
    /// (security, identifiers, syntax).
    Always,
}

impl Group {
    /// The scope of the group's rules unless a rule's line says otherwise.
    pub const fn scope(self) -> Scope {
        match self {
            Group::Security | Group::Lint => Scope::Always,
            Group::History
            | Group::Transactions
            | Group::Locks
            | Group::Destructive
            | Group::Robustness
            | Group::Live => Scope::Migration,
        }
    }
}

/// One rule's documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The kebab-case id used in output, `-- plover:lint-ignore` and `[lint.rules]`.
    pub id: &'static str,
    /// The severity it reports at when it runs (`[lint.rules]` can change it or turn the
    /// rule off).
    pub severity: Severity,
    /// Whether it runs by default or only when `[lint.rules]` turns it on.
    pub activation: Activation,
    /// The family.
    pub group: Group,
    /// Whether it also judges the statements of function and procedure bodies.
    pub scope: Scope,
    /// Why it matters, in one line.
    pub reason: &'static str,
    /// What to do instead.
    pub hint: &'static str,
}

/// `Activation::Default` unless a rule's line says `(OptIn)` after its severity.
macro_rules! activation {
    () => {
        Activation::Default
    };
    ($activation:ident) => {
        Activation::$activation
    };
}

/// The group's [`Scope`] unless a rule's line says `(Always)` or `(Migration)` after
/// its group.
macro_rules! scope {
    ($group:ident) => {
        Group::$group.scope()
    };
    ($group:ident, $scope:ident) => {
        Scope::$scope
    };
}

macro_rules! rules {
    ($($variant:ident = $id:literal, $severity:ident $(($activation:ident))?, $group:ident $(($scope:ident))?,
        $reason:literal, $hint:literal;)*) => {
        /// A rule, by name in code; [`RuleId::rule`] gives its documentation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum RuleId { $($variant),* }

        /// Every rule, in the order of [`RuleId`].
        pub static RULES: &[Rule] = &[$(Rule {
            id: $id,
            severity: Severity::$severity,
            activation: activation!($($activation)?),
            group: Group::$group,
            scope: scope!($group $(, $scope)?),
            reason: $reason,
            hint: $hint,
        }),*];

        impl RuleId {
            /// Every rule id.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];
        }
    };
}

rules! {
    FileInvalid = "file-invalid", Error, History,
        "a .sql file in the migrations directory that plover cannot load (name, encoding, directive)",
        "name it `<digits>_<name>.sql`, save it as UTF-8, and use only known `-- plover:` directives";
    DuplicateVersion = "duplicate-version", Error, History,
        "two files share one version, so their order is undefined",
        "give the newer file a new version (cargo xtask db new)";
    HistoryEdited = "history-edited", Error, History,
        "a migration that was already applied (or is on the base branch) was changed; databases that ran it will never run the change",
        "restore the file and put the change in a new migration";
    HistoryCommentEdited = "history-comment-edited", Warning, History,
        "only comments of an applied migration changed, but its checksum did too, so runs refuse it as modified",
        "restore the file, or record the new checksum with `db repair` on every environment";
    HistoryDeleted = "history-deleted", Error, History,
        "an applied (or base) migration's file is gone; runs refuse a missing version",
        "restore the file; roll forward with a new migration instead of deleting one";
    HistoryOutOfOrder = "history-out-of-order", Error, History,
        "a new migration is older than the newest applied (or base) one, so environments refuse it",
        "rename it to a version newer than every applied one (cargo xtask db new)";
    NeedsNoTransaction = "needs-no-transaction", Error, Transactions,
        "CONCURRENTLY, VACUUM, ALTER SYSTEM and CREATE/DROP DATABASE cannot run inside the transaction plover wraps the file in",
        "move the statement to its own file that starts with `-- plover:no-transaction`";
    NoTransactionMultipleStatements = "no-transaction-multiple-statements", Warning, Transactions,
        "a no-transaction file that fails midway leaves its earlier statements applied; re-running it must be safe",
        "one statement per no-transaction file, or make every statement re-runnable (IF [NOT] EXISTS)";
    ConcurrentlyNotIdempotent = "concurrently-not-idempotent", Error, Transactions,
        "a failed CREATE INDEX CONCURRENTLY leaves an invalid index behind, and the re-run then fails",
        "write CREATE INDEX CONCURRENTLY IF NOT EXISTS / DROP INDEX CONCURRENTLY IF EXISTS";
    TransactionControl = "transaction-control", Error, Transactions,
        "BEGIN/COMMIT/ROLLBACK/SAVEPOINT fight the transaction plover manages: BEGIN/COMMIT blocks make the file run statement by statement (not atomic), anything else is refused",
        "remove it: each file already runs in one transaction (or none, with -- plover:no-transaction)";
    EnumValueSameTransaction = "enum-value-same-transaction", Error, Transactions,
        "an enum value added by ALTER TYPE ... ADD VALUE cannot be used before its transaction commits",
        "use the new value in a later migration file";
    SessionSet = "session-set", Warning, Transactions,
        "a plain SET outlives the migration and leaks into every later migration on the same connection",
        "use SET LOCAL (it ends with the transaction), or set the option on the function/role";
    PsqlMetaCommand = "psql-meta-command", Error, Transactions,
        "psql meta-commands (\\i, \\set, \\connect, ...) and COPY FROM STDIN only work in psql, not over the protocol",
        "write plain SQL; load data with INSERT or a seed file";
    TableWithoutRls = "table-without-rls", Error, Security,
        "a table in an API-exposed schema without row level security is readable and writable by anyone with the anon key",
        "ALTER TABLE ... ENABLE ROW LEVEL SECURITY and add policies (in this change)";
    ExposedTableWithoutGrants = "exposed-table-without-grants", Warning, Security,
        "a new table in an exposed schema other than public, where Supabase grants nothing by default, that no API role (anon, authenticated, service_role) may touch: every API request on it fails with permission denied",
        "GRANT the privileges the app needs (e.g. GRANT SELECT ON ... TO authenticated), ALTER DEFAULT PRIVILEGES IN SCHEMA for the schema, or set [grants.SCHEMA] in supabase/plover.toml";
    PolicyWithoutRls = "policy-without-rls", Error, Security,
        "policies do nothing while row level security is off on their table",
        "ALTER TABLE ... ENABLE ROW LEVEL SECURITY";
    RlsDisabled = "rls-disabled", Error, Security,
        "disabling row level security opens every row to every role that has table grants",
        "keep RLS on and change the policies instead";
    LastPolicyDropped = "last-policy-dropped", Warning, Security,
        "the table keeps RLS on with no policy left: every API request now sees nothing",
        "create the replacement policy in the same change";
    SecurityDefinerSearchPath = "security-definer-search-path", Error, Security,
        "a SECURITY DEFINER function without a fixed search_path can be hijacked through objects in the caller's schemas",
        "add `SET search_path = ''` and schema-qualify every name in the body";
    ViewWithoutSecurityInvoker = "view-without-security-invoker", Error, Security,
        "an exposed view runs with its owner's rights, so it bypasses the RLS of the tables it reads",
        "CREATE VIEW ... WITH (security_invoker = true)";
    WritePolicyAlwaysTrue = "write-policy-always-true", Error, Security,
        "a write policy with USING (true) or WITH CHECK (true) lets every user change every row",
        "compare with the caller, e.g. USING ((select auth.uid()) = user_id)";
    PolicyUserMetadata = "policy-user-metadata", Error, Security,
        "user_metadata / raw_user_meta_data is editable by the user, so policies must not trust it",
        "use app_metadata (auth.jwt() -> 'app_metadata') or a table the user cannot write";
    PolicyWithoutRole = "policy-without-role", Warning (OptIn), Security,
        "a policy without TO applies to every role, anon included (opt-in: on real projects such policies are nearly always deliberate, e.g. public reads and USING (false), or compare with auth.uid(), which anon never passes; naming the roles documents who a policy is for and lets Postgres skip it for the others)",
        "add TO authenticated (or the roles it is meant for)";
    AuthFunctionPerRow = "auth-function-per-row", Warning, Security,
        "auth.uid()/auth.jwt() called bare in a policy is evaluated once per row",
        "wrap it in a sub-select: (select auth.uid()) = user_id";
    ViewReadsAuthUsers = "view-reads-auth-users", Error, Security,
        "a view in an exposed schema that reads auth.users leaks users' e-mails and metadata through the API",
        "keep the data you need in a public table filled by a trigger, or put the view in an unexposed schema";
    BroadGrant = "broad-grant", Error, Security,
        "a grant to anon, authenticated or PUBLIC on an existing exposed table that has no row level security by the end of the change opens every row to the API; on a table with RLS the policies decide (no policy: no row), which is how Supabase's own grants work, so those are fine, as are sequences (inserts need them), default privileges and tables created in the change (table-without-rls checks each of those)",
        "ENABLE ROW LEVEL SECURITY on the table and add policies, or grant only to service_role";
    SecurityDefinerAnonExecutable = "security-definer-anon-executable", Warning, Security,
        "a SECURITY DEFINER function of an exposed schema that anon can call through the API (/rest/v1/rpc), that never looks at the caller (auth.uid(), auth.jwt(), current_user, itself or through a function of the project it calls) and reaches what only the service should (Vault's functions and tables but the decrypted view, which an RPC may read on purpose; auth's tables; cron, net, pgmq; storage objects) hands that to everyone: EXECUTE goes to PUBLIC by default, and Supabase's default privileges grant it to anon in schema public (trigger functions and procedures cannot be called, and are not reported)",
        "REVOKE EXECUTE ON FUNCTION ... FROM PUBLIC, anon; then GRANT it to the roles meant to call it (or move the function to an unexposed schema)";
    SecurityDefinerAuthenticatedExecutable = "security-definer-authenticated-executable", Warning (OptIn), Security,
        "any other SECURITY DEFINER function of an exposed schema that anon or signed-in users can call through the API, which nobody granted to them by name; it bypasses RLS, but is often intended (an RPC that checks auth.uid(), or reads nothing private), hence opt-in",
        "check the caller in the body, or REVOKE EXECUTE ... FROM PUBLIC, anon, authenticated and grant it to the roles meant to call it";
    MaterializedViewExposed = "materialized-view-exposed", Warning (OptIn), Security,
        "a materialized view cannot have row level security, so in an exposed schema anon and authenticated read all of it through the default privileges (opt-in: the one on the corpus held public figures on purpose)",
        "REVOKE SELECT ON ... FROM anon, authenticated (GRANT it back by name if meant to be public), or create it in an unexposed schema";
    FunctionUserMetadata = "function-user-metadata", Error, Security,
        "a function that a policy calls, or a boolean check of an exposed schema, reads user_metadata / raw_user_meta_data, which users can edit themselves",
        "decide on app_metadata (auth.jwt() -> 'app_metadata', raw_app_meta_data) or a table users cannot write";
    SecretKeyInSql = "secret-key-in-sql", Error, Security,
        "a service-role JWT or secret API key (sb_secret_...) in a migration is a secret in the repository and in every database's history; it bypasses RLS (the anon and publishable keys are public and fine)",
        "remove it and rotate the key; read it at run time, e.g. from Vault (vault.decrypted_secrets)";
    ManagedSchemaDdl = "managed-schema-ddl", Error, Security,
        "auth, storage, realtime and vault belong to Supabase; DDL there breaks upgrades (triggers on auth.users and on storage.objects/buckets, and storage policies, are fine)",
        "put your objects in your own schema";
    IndexWithoutConcurrently = "index-without-concurrently", Error, Locks,
        "CREATE INDEX on an existing table blocks writes until the index is built",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS in a -- plover:no-transaction file";
    ConstraintWithoutNotValid = "constraint-without-not-valid", Error, Locks,
        "adding a FOREIGN KEY or CHECK to an existing table scans it under a lock that blocks writes",
        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration";
    SetNotNull = "set-not-null", Error, Locks,
        "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (it uses the check)";
    UniqueWithoutIndex = "unique-without-index", Error, Locks,
        "adding a UNIQUE or PRIMARY KEY constraint builds its index under an ACCESS EXCLUSIVE lock",
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING INDEX";
    TableRewrite = "table-rewrite", Error, Locks,
        "this rewrites the whole table under an ACCESS EXCLUSIVE lock (volatile default, type change, stored generated or identity column)",
        "add a nullable column, backfill in batches, then constrain it; or create a new column and switch over";
    ExclusiveMaintenance = "exclusive-maintenance", Error, Locks,
        "VACUUM FULL, CLUSTER and REINDEX without CONCURRENTLY lock the table for their whole run",
        "REINDEX ... CONCURRENTLY; pg_repack instead of VACUUM FULL or CLUSTER";
    DropTable = "drop-table", Error, Destructive,
        "dropping an existing table loses its data and breaks code that still reads it",
        "stop using it first (expand/contract), back it up, and drop it in a later release";
    DropSchema = "drop-schema", Error, Destructive,
        "dropping a schema drops everything in it",
        "drop the objects one by one, deliberately";
    DropColumn = "drop-column", Error, Destructive,
        "dropping an existing column loses its data and breaks code that still reads it",
        "stop using it first (expand/contract), then drop it in a later release";
    Truncate = "truncate", Error, Destructive,
        "TRUNCATE deletes every row of an existing table",
        "delete exactly the rows you mean, with a WHERE clause";
    MutationWithoutWhere = "mutation-without-where", Error, Destructive,
        "UPDATE or DELETE without WHERE touches every row of an existing table",
        "add a WHERE clause (WHERE true if you really mean every row)";
    Rename = "rename", Warning, Destructive,
        "renaming a table or column breaks the running app and clients between deploy steps",
        "expand/contract: add the new name, copy and dual-write, switch readers, drop the old one later";
    AddNotNullColumnWithoutDefault = "add-not-null-column-without-default", Error, Destructive,
        "adding a NOT NULL column without a default fails on a table that has rows",
        "add a DEFAULT, or add it nullable, backfill, then SET NOT NULL";
    CreateWithoutIfNotExists = "create-without-if-not-exists", Warning (OptIn), Robustness,
        "CREATE without IF NOT EXISTS fails when the object is already there (re-runs, hand fixes)",
        "CREATE TABLE/INDEX/SCHEMA/SEQUENCE/EXTENSION IF NOT EXISTS";
    CreateWithoutOrReplace = "create-without-or-replace", Warning (OptIn), Robustness,
        "CREATE FUNCTION/VIEW/TRIGGER without OR REPLACE fails when it already exists",
        "CREATE OR REPLACE";
    CreatePolicyWithoutDrop = "create-policy-without-drop", Warning (OptIn), Robustness,
        "CREATE POLICY has no IF NOT EXISTS, so it fails when the policy exists",
        "precede it with `DROP POLICY IF EXISTS <name> ON <table>` in the same file";
    IdentifierTooLong = "identifier-too-long", Error, Robustness (Always),
        "Postgres truncates identifiers to 63 bytes, so the object gets another name than the one written",
        "use a name of at most 63 bytes";
    SyntaxError = "syntax-error", Error, Lint,
        "the statement does not parse with the Postgres grammar",
        "fix the SQL at the position shown";
    LintIgnoreInvalid = "lint-ignore-invalid", Error, Lint,
        "a -- plover:lint-ignore comment without a reason or naming an unknown rule",
        "write -- plover:lint-ignore RULE -- why it is safe here";
    LintIgnoreUnused = "lint-ignore-unused", Warning, Lint,
        "a -- plover:lint-ignore comment that suppresses nothing",
        "remove it";
    LiveRlsDisabled = "live-rls-disabled", Error, Live,
        "in the migrated database, a table of an exposed schema has row level security off",
        "ALTER TABLE ... ENABLE ROW LEVEL SECURITY in the migration that creates it";
    LivePolicyWithoutRls = "live-policy-without-rls", Error, Live,
        "in the migrated database, a table has policies but row level security is off",
        "ALTER TABLE ... ENABLE ROW LEVEL SECURITY";
    LiveFunctionSearchPath = "live-function-search-path", Warning, Live,
        "in the migrated database, a function of an exposed schema has no fixed search_path, so what its names resolve to depends on the caller",
        "add `SET search_path = ''` to the function";
    LiveSecurityDefinerView = "live-security-definer-view", Error, Live,
        "in the migrated database, a view of an exposed schema runs with its owner's rights",
        "CREATE VIEW ... WITH (security_invoker = true)";
    LiveFkWithoutIndex = "live-fk-without-index", Warning, Live,
        "in the migrated database, a foreign key has no index starting with its first column, so deletes and joins scan the table",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS on the referencing column(s)";
    LiveTableWithoutPrimaryKey = "live-table-without-primary-key", Warning, Live,
        "in the migrated database, a table of an exposed schema has no primary key (logical replication and many tools need one)",
        "add a primary key";
}

impl RuleId {
    /// The rule's documentation.
    pub fn rule(self) -> &'static Rule {
        // `RULES` is generated in the order of the enum's variants.
        &RULES[self as usize]
    }

    /// The kebab-case id.
    pub fn id(self) -> &'static str {
        self.rule().id
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.id() == id)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The rule table as Markdown, grouped: what the README shows between
/// `<!-- lint-rules:begin -->` and `<!-- lint-rules:end -->`.
pub fn rules_markdown() -> String {
    let mut out = String::from("| rule | severity | why | fix |\n|---|---|---|---|\n");
    let mut groups: Vec<Group> = RULES.iter().map(|r| r.group).collect();
    groups.dedup();
    for group in groups {
        out.push_str(&format!("| **{}** | | | |\n", group.title()));
        for rule in RULES.iter().filter(|r| r.group == group) {
            out.push_str(&format!(
                "| `{}` | {}{} | {} | {} |\n",
                rule.id,
                rule.severity,
                match rule.activation {
                    Activation::Default => "",
                    Activation::OptIn => " (opt-in)",
                },
                escape_cell(rule.reason),
                escape_cell(rule.hint)
            ));
        }
    }
    out
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}
