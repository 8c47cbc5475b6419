//! `plover::schema` against a real server: introspection and diff round-trip (the
//! repository's migrations, and a schema with every object kind of the model), and
//! hand-written changes, each a `before` and an `after` schema on databases of their
//! own, with the DDL the diff writes pinned as a snapshot
//! (`snapshots/e2e__schema_diff__<case>.snap`).
//!
//! A round trip: the schema is replayed into A; `diff(inspect(B), inspect(A))` is run
//! on the empty database B as one script; then `diff(inspect(A), inspect(B))` must be
//! empty, the two catalogs equal, and `pg_dump --schema-only` of A and B equal once
//! [`normalize_dump`] has removed what differs between any two dumps.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use plover::schema::{self, Catalog, Diff, HazardKind};
use plover::testing::{Shim, TestDatabase};
use plover_tests::{Dir, MIGRATIONS};
use tokio_postgres::Client;

/// The schemas every test here inspects: `app` exists only where a schema makes it.
const SCHEMAS: &[&str] = &["public", "app"];

fn schemas() -> Vec<String> {
    SCHEMAS.iter().map(|s| s.to_string()).collect()
}

/// An empty database with the Supabase baseline (roles `anon`, `authenticated`,
/// `service_role`, the `auth` schema, Supabase's default privileges in `public`): a
/// clone of the template of an empty migration set.
async fn empty_database() -> Result<TestDatabase> {
    let dir = Dir::new()?;
    let migrator = plover::Migrator::new(dir.source()?);
    Ok(TestDatabase::fresh(&migrator, Shim::Apply).await?)
}

async fn inspect(client: &Client) -> Result<Catalog> {
    schema::inspect(client, &schemas())
        .await
        .context("inspecting the test database")
}

/// Runs `sql` as one script (one simple query, as psql -1 would not: statements run
/// in one implicit transaction).
async fn run_script(client: &Client, sql: &str, what: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| anyhow::anyhow!("{what} fails: {}\n--- script ---\n{sql}", describe(&e)))
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {}{}",
            db.code().code(),
            db.message(),
            db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

/// Where two catalogs differ: the keys of each part whose values are not equal, with
/// both sides.
fn catalog_differences(a: &Catalog, b: &Catalog) -> Vec<String> {
    fn part<K: Ord + Debug, V: PartialEq + Debug>(
        what: &str,
        a: &BTreeMap<K, V>,
        b: &BTreeMap<K, V>,
        out: &mut Vec<String>,
    ) {
        for (k, va) in a {
            match b.get(k) {
                None => out.push(format!("{what} {k:?} only on the first side: {va:#?}")),
                Some(vb) if vb != va => out.push(format!(
                    "{what} {k:?} differs:\n{va:#?}\n--- versus ---\n{vb:#?}"
                )),
                Some(_) => {}
            }
        }
        for (k, vb) in b {
            if !a.contains_key(k) {
                out.push(format!("{what} {k:?} only on the second side: {vb:#?}"));
            }
        }
    }
    let mut out = Vec::new();
    part("schema", &a.schemas, &b.schemas, &mut out);
    part("extension", &a.extensions, &b.extensions, &mut out);
    part("type", &a.types, &b.types, &mut out);
    part("sequence", &a.sequences, &b.sequences, &mut out);
    part("table", &a.tables, &b.tables, &mut out);
    part("view", &a.views, &b.views, &mut out);
    part("function", &a.functions, &b.functions, &mut out);
    part(
        "default privileges",
        &a.default_privileges,
        &b.default_privileges,
        &mut out,
    );
    part("publication", &a.publications, &b.publications, &mut out);
    out
}

/// Runs `diff` on `client`: as one script, but for the statements that must commit
/// first ([`HazardKind::OwnTransaction`]), each run before it on its own, as a
/// migration of its own would run them.
async fn apply(client: &Client, diff: &Diff, what: &str) -> Result<()> {
    let own = |c: &schema::Change| {
        c.hazards
            .iter()
            .any(|h| h.kind == HazardKind::OwnTransaction)
    };
    for change in diff.changes.iter().filter(|c| own(c)) {
        run_script(client, &change.sql, what).await?;
    }
    let rest = Diff {
        changes: diff.changes.iter().filter(|c| !own(c)).cloned().collect(),
        ..diff.clone()
    };
    run_script(client, &rest.to_sql(), what).await
}

/// `diff(inspect(left), inspect(right))` is empty and the catalogs are equal.
async fn assert_same(left: &Client, right: &Client, what: &str) -> Result<()> {
    let (l, r) = (inspect(left).await?, inspect(right).await?);
    let back = schema::diff(&l, &r);
    ensure!(
        back.is_empty(),
        "{what}: the diff back is not empty:\n{}",
        back.to_sql()
    );
    let differences = catalog_differences(&l, &r);
    ensure!(
        differences.is_empty(),
        "{what}: the diff back is empty but the catalogs differ:\n{}",
        differences.join("\n\n")
    );
    Ok(())
}

/// `pg_dump --schema-only` of `db`, by the server's own pg_dump, the connection in
/// libpq's variables (nothing in argv but options). plover's history schemas are left
/// out: a migrated database has them, a database made by a diff does not.
fn pg_dump(db: &TestDatabase) -> Result<String> {
    let binary = plover::testing::find_binaries()?.join("pg_dump");
    let info = plover::ConnInfo::parse(db.url())?;
    let mut command = Command::new(&binary);
    for var in plover::LIBPQ_ENV_VARS {
        command.env_remove(var);
    }
    command.envs(info.libpq_env()).args([
        "--schema-only",
        "--exclude-schema=plover",
        "--exclude-schema=supabase_migrations",
    ]);
    let out = command
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    ensure!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).context("pg_dump wrote something that is not UTF-8")
}

/// What differs between two dumps of equal schemas: comment lines (`--`, which name
/// the dump's database and pg_dump's version), `SET` and `set_config` lines (session
/// settings), the `\restrict`/`\unrestrict` pair (a random key per dump) and blank
/// lines are left out; the storage parameters of a table or view (`WITH (…)`) are
/// sorted, as the model keeps them (Postgres keeps the order they were written in,
/// which means nothing). Nothing else is sorted.
fn normalize_dump(dump: &str) -> String {
    dump.lines()
        .filter(|l| {
            let t = l.trim();
            !(t.is_empty()
                || t.starts_with("--")
                || t.starts_with("SET ")
                || t.starts_with("SELECT pg_catalog.set_config(")
                || t.starts_with("\\restrict")
                || t.starts_with("\\unrestrict"))
        })
        .map(sort_storage_parameters)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `… WITH (b='1', a='2') …` as `… WITH (a='2', b='1') …` (pg_dump writes a table's
/// parameters on a line of their own, a view's on its CREATE line).
fn sort_storage_parameters(line: &str) -> String {
    let Some(start) = line.find("WITH (") else {
        return line.to_owned();
    };
    let open = start + "WITH (".len();
    let Some(len) = line[open..].find(')') else {
        return line.to_owned();
    };
    let mut options: Vec<&str> = line[open..open + len].split(", ").collect();
    options.sort_unstable();
    format!(
        "{}{}{}",
        &line[..open],
        options.join(", "),
        &line[open + len..]
    )
}

/// The first lines where two normalized dumps part, with some context.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(5);
    let show = |lines: &[&str]| lines[from.min(lines.len())..(at + 15).min(lines.len())].join("\n");
    format!(
        "line {at}:\n--- A ---\n{}\n--- B ---\n{}",
        show(&a),
        show(&b)
    )
}

/// The round trip of the issue: A holds the schema; B is empty. Returns the diff that
/// built B.
async fn round_trip(a: &TestDatabase, b: &TestDatabase) -> Result<Diff> {
    let (ca, cb) = (a.client().await?, b.client().await?);
    let build = schema::diff(&inspect(&cb).await?, &inspect(&ca).await?);
    ensure!(build.manual.is_empty(), "manual steps: {:?}", build.manual);
    apply(&cb, &build, "the diff from the empty database").await?;
    assert_same(&ca, &cb, "A against B").await?;
    let (da, db) = (normalize_dump(&pg_dump(a)?), normalize_dump(&pg_dump(b)?));
    if da != db {
        bail!(
            "pg_dump of A and B differ at {}\n--- the diff applied to B ---\n{}",
            first_difference(&da, &db),
            build.to_sql()
        );
    }
    Ok(build)
}

#[tokio::test]
async fn the_repositorys_migrations_round_trip() -> Result<()> {
    let migrator = plover::Migrator::new(MIGRATIONS.load()?);
    let a = TestDatabase::fresh(&migrator, Shim::Apply).await?;
    let b = empty_database().await?;
    let build = round_trip(&a, &b).await?;
    ensure!(
        build
            .changes
            .iter()
            .any(|c| c.sql.starts_with("CREATE TABLE public.budgets")),
        "the diff must create the app's tables:\n{}",
        build.to_sql()
    );
    Ok(())
}

/// Every object kind of the model, in `public` and a schema of the app's own.
const EVERY_KIND: &str = r#"
create schema app;
comment on schema app is 'The app''s own objects.';
grant usage on schema app to authenticated, service_role;

create type app.mood as enum ('sad', 'ok', 'happy');
comment on type app.mood is 'How it went.';
create domain app.amount as numeric(12, 2) default 1 not null
  constraint amount_positive check (value > 0)
  constraint amount_bounded check (value < 1000000);
comment on domain app.amount is 'A positive amount of money.';
create type app.address as (street text, city text, zip character varying(10));
comment on type app.address is 'A postal address.';
create type app.float_range as range (subtype = float8, subtype_diff = float8mi);
comment on type app.float_range is 'A range of floats.';
grant usage on type app.mood to anon;
revoke usage on type app.address from public;

create sequence app.invoice_number as bigint start with 1000 increment by 10
  minvalue 1000 maxvalue 99999999 cache 5 cycle;
comment on sequence app.invoice_number is 'Invoice numbers.';
grant usage on sequence app.invoice_number to authenticated;

create table app.accounts (
  id bigint generated always as identity primary key,
  serial_no serial not null,
  owner uuid not null default auth.uid(),
  name text collate "C" not null,
  balance app.amount,
  mood app.mood not null default 'ok',
  address app.address,
  score_range app.float_range,
  name_upper text generated always as (upper(name)) stored,
  invoice bigint default nextval('app.invoice_number'),
  created_at timestamptz not null default now(),
  constraint accounts_name_key unique (name) deferrable initially deferred,
  constraint accounts_name_check check (char_length(name) > 0)
) with (fillfactor = 90, autovacuum_enabled = false);
comment on table app.accounts is 'Accounts.';
comment on column app.accounts.name is 'The account''s name, compared bytewise.';
comment on constraint accounts_name_check on app.accounts is 'Never empty.';
alter sequence app.invoice_number owned by app.accounts.invoice;
grant select on app.accounts to authenticated;
grant select (id, name), update (name) on app.accounts to anon;
create index accounts_created_brin on app.accounts using brin (created_at);
comment on index app.accounts_created_brin is 'Recent accounts.';

create function app.touch() returns trigger language plpgsql as $$
begin
  new.created_at := now();
  return new;
end
$$;
comment on function app.touch() is 'Trigger: created_at to now.';
create trigger accounts_touch before update on app.accounts
  for each row execute function app.touch();
comment on trigger accounts_touch on app.accounts is 'Keeps created_at fresh.';
create trigger accounts_touch_on_insert before insert on app.accounts
  for each row when (new.name <> '') execute function app.touch();
alter table app.accounts disable trigger accounts_touch_on_insert;

create table app.events (
  id bigint not null,
  account_id bigint not null,
  happened_at timestamptz not null,
  payload jsonb,
  primary key (id, happened_at)
) partition by range (happened_at);
create table app.events_2024 partition of app.events
  for values from ('2024-01-01') to ('2025-01-01');
create table app.events_2025 partition of app.events
  for values from ('2025-01-01') to ('2026-01-01');
create table app.events_other partition of app.events default;
create index events_account_idx on app.events (account_id);
comment on table app.events is 'Events, a partition per year.';

create unlogged table app.cache (
  key text primary key,
  value jsonb,
  expires_at timestamptz
);
alter table app.cache replica identity full;

create table public.notes (
  id bigserial primary key,
  account_id bigint not null,
  parent_id bigint,
  body text not null,
  during tstzrange,
  area box,
  created_at timestamptz default now(),
  constraint notes_parent_fkey foreign key (parent_id) references public.notes (id)
    deferrable initially deferred,
  constraint notes_body_check check (body <> '') not valid,
  constraint notes_no_overlap exclude using gist (during with &&),
  constraint notes_area_apart exclude using gist (area with &&) where (account_id > 0)
);
alter table public.notes add constraint notes_account_fkey foreign key (account_id)
  references app.accounts (id) on delete cascade not valid;
create index notes_body_lower_idx on public.notes (lower(body));
create index notes_recent_idx on public.notes (created_at desc) where body <> '';
create unique index notes_account_body_key on public.notes (account_id, body)
  where account_id > 0;
comment on table public.notes is 'Notes on accounts.';
comment on column public.notes.body is 'What was noted.';
alter table public.notes enable row level security;
alter table public.notes force row level security;
create policy notes_select on public.notes for select to authenticated
  using ((select auth.uid()) is not null);
create policy notes_sane on public.notes as restrictive for all to authenticated, anon
  using (body <> '') with check (body <> '');
create policy notes_insert on public.notes for insert to authenticated
  with check (account_id > 0);
create policy notes_update on public.notes for update
  using (true) with check (account_id > 0);
comment on policy notes_select on public.notes is 'Signed-in users read.';
revoke all on public.notes from anon;
grant select on public.notes to authenticated with grant option;
revoke insert, update on public.notes from service_role;

create view public.account_names with (security_invoker = true) as
  select id, name from app.accounts;
comment on view public.account_names is 'Names only.';
create view public.named_accounts with (check_option = local) as
  select id, name from app.accounts where name <> '';
create view public.account_shouts as
  select id, upper(name) as shout from public.account_names;
revoke all on public.account_shouts from anon;
create materialized view app.account_totals as
  select owner, count(*) as n from app.accounts group by owner;
create unique index account_totals_owner_idx on app.account_totals (owner);
comment on materialized view app.account_totals is 'Accounts per owner.';
grant select on app.account_totals to authenticated;

create function app.account_count(p_owner uuid default null) returns bigint
  language sql stable
  as $$ select count(*) from app.accounts where p_owner is null or owner = p_owner $$;
comment on function app.account_count(uuid) is 'How many accounts.';
create function app.secret_total() returns numeric
  language plpgsql security definer set search_path = ''
  as $$ begin return (select sum(balance) from app.accounts); end $$;
revoke execute on function app.secret_total() from public;
grant execute on function app.secret_total() to service_role;
create function public.notes_of(p_account bigint) returns setof public.notes
  language sql stable
  as $$ select * from public.notes where account_id = p_account $$;
create procedure app.expire(p_before timestamptz)
  language plpgsql as $$ begin delete from app.cache where expires_at < p_before; end $$;
comment on procedure app.expire(timestamptz) is 'Drops old cache rows.';
create function app.add_amount(numeric, numeric) returns numeric
  language sql immutable strict as 'select $1 + $2';
create aggregate app.total(numeric) (sfunc = app.add_amount, stype = numeric, initcond = '0');
comment on aggregate app.total(numeric) is 'A sum.';

alter default privileges in schema app grant select on tables to authenticated;
alter default privileges in schema app grant usage on sequences to authenticated;
alter default privileges revoke execute on functions from public;

create table public."Order Items" (
  "Id" integer generated by default as identity (start with 100 increment by 2 cache 3) primary key,
  "Label" text not null default 'it''s \ here',
  "order" integer
);
grant select on sequence public."Order Items_Id_seq" to anon;
create view public.order_labels with (check_option = cascaded, security_barrier = true) as
  select "Id" as id, "Label" as label from public."Order Items" where "order" > 0;
create function app.labels(p_min integer default 0, out id integer, out label text)
  returns setof record language sql stable
  as $$ select "Id", "Label" from public."Order Items" where "Id" >= p_min $$;
create function public.item_of(p_id integer) returns public."Order Items"
  language sql stable as $$ select * from public."Order Items" where "Id" = p_id $$;
create function app.visible_to_public() returns integer language sql as $$ select 1 $$;
grant execute on function app.visible_to_public() to public;

create publication app_changes for table app.accounts;
"#;

#[tokio::test]
async fn a_schema_with_every_object_kind_round_trips() -> Result<()> {
    let a = empty_database().await?;
    run_script(&a.client().await?, EVERY_KIND, "the schema").await?;
    let b = empty_database().await?;
    round_trip(&a, &b).await?;
    Ok(())
}

/// A change: `after` is what `before` must become. `Manual` when the diff cannot write
/// it: a manual entry stays after its statements ran.
struct Case {
    name: &'static str,
    before: &'static str,
    after: &'static str,
    expect: Expect,
}

#[derive(PartialEq)]
enum Expect {
    Applies,
    Manual,
}

const fn case(name: &'static str, before: &'static str, after: &'static str) -> Case {
    Case {
        name,
        before,
        after,
        expect: Expect::Applies,
    }
}

const CASES: &[Case] = &[
    case(
        "extension_created_in_a_new_schema",
        "create table public.t (id int);",
        "create table public.t (id int);
         create schema app;
         create extension if not exists unaccent with schema app;",
    ),
    case(
        "plpgsql_function_declaring_a_new_tables_row_type",
        "create table public.t (id int);",
        "create table public.t (id int);
         create table public.agents (id int);
         create function public.first_agent() returns int language plpgsql as $$
           declare r public.agents%rowtype;
           begin select * into r from public.agents limit 1; return r.id; end $$;",
    ),
    case(
        "default_privileges_revoked_before_a_function_granted_anyway",
        "create table public.t (id int);",
        "create table public.t (id int);
         alter default privileges in schema public revoke execute on functions from authenticated;
         create function public.answer() returns int language sql as 'select 42';
         grant execute on function public.answer() to authenticated;",
    ),
    case(
        "column_added",
        "create table public.t (id int primary key);",
        "create table public.t (id int primary key, name text not null default '');",
    ),
    case(
        "column_dropped",
        "create table public.t (id int primary key, name text);",
        "create table public.t (id int primary key);",
    ),
    case(
        "column_type_widened",
        "create table public.t (id int primary key, n integer);",
        "create table public.t (id int primary key, n bigint);",
    ),
    case(
        "column_type_narrowed",
        "create table public.t (id int primary key, code text);",
        "create table public.t (id int primary key, code varchar(5));",
    ),
    case(
        "varchar_widened",
        "create table public.t (code varchar(10));",
        "create table public.t (code varchar(20));",
    ),
    case(
        "column_type_changed_under_a_view",
        "create table public.t (id int primary key, n integer);
         create view public.v as select id, n from public.t;",
        "create table public.t (id int primary key, n bigint);
         create view public.v as select id, n from public.t;",
    ),
    case(
        "column_type_changed_under_a_policy",
        "create table public.t (id int primary key, owner text);
         alter table public.t enable row level security;
         create policy own on public.t for select to authenticated using (owner = current_user);",
        "create table public.t (id int primary key, owner varchar(64));
         alter table public.t enable row level security;
         create policy own on public.t for select to authenticated using (owner = current_user);",
    ),
    case(
        "column_collation_changed",
        "create table public.t (name text);",
        "create table public.t (name text collate \"C\");",
    ),
    case(
        "not_null_added",
        "create table public.t (id int primary key, name text);",
        "create table public.t (id int primary key, name text not null);",
    ),
    case(
        "default_changed",
        "create table public.t (id int primary key, status text default 'new');",
        "create table public.t (id int primary key, status text default 'open');",
    ),
    case(
        "default_dropped",
        "create table public.t (id int primary key, at timestamptz default now());",
        "create table public.t (id int primary key, at timestamptz);",
    ),
    case(
        "identity_added",
        "create table public.t (id bigint not null, name text);",
        "create table public.t (id bigint generated by default as identity not null, name text);",
    ),
    case(
        "serial_column_added",
        "create table public.t (name text);",
        "create table public.t (name text, id serial);",
    ),
    case(
        "generated_expression_changed",
        "create table public.t (a int, b int, s int generated always as (a + b) stored);",
        "create table public.t (a int, b int, s int generated always as (a * b) stored);",
    ),
    case(
        "table_created_with_a_foreign_key",
        "create table public.parent (id int primary key);",
        "create table public.parent (id int primary key);
         create table public.child (id int primary key, parent_id int references public.parent (id));",
    ),
    case(
        "table_dropped",
        "create table public.parent (id int primary key);
         create table public.child (id int primary key, parent_id int references public.parent (id));",
        "create table public.child (id int primary key, parent_id int);",
    ),
    case(
        "table_options_set_and_reset",
        "create table public.t (id int) with (fillfactor = 70, autovacuum_enabled = false);",
        "create table public.t (id int) with (fillfactor = 80, toast_tuple_target = 256);",
    ),
    case(
        "unlogged_made_logged",
        "create unlogged table public.t (id int);",
        "create table public.t (id int);",
    ),
    case(
        "replica_identity_full",
        "create table public.t (id int primary key);",
        "create table public.t (id int primary key); alter table public.t replica identity full;",
    ),
    case(
        "enum_value_added",
        "create type public.status as enum ('new', 'done');
         create table public.t (s public.status);",
        "create type public.status as enum ('new', 'doing', 'done', 'archived');
         create table public.t (s public.status);",
    ),
    case(
        "enum_value_added_and_used",
        "create type public.status as enum ('new', 'done');
         create table public.t (s public.status default 'new');",
        "create type public.status as enum ('new', 'doing', 'done');
         create table public.t (s public.status default 'doing');",
    ),
    Case {
        name: "enum_value_removed",
        before: "create type public.status as enum ('new', 'doing', 'done');",
        after: "create type public.status as enum ('new', 'done');",
        expect: Expect::Manual,
    },
    case(
        "enum_created_for_a_new_column",
        "create table public.t (id int);",
        "create type public.status as enum ('new', 'done');
         create table public.t (id int, s public.status not null default 'new');",
    ),
    case(
        "domain_check_added",
        "create domain public.pos as int;",
        "create domain public.pos as int constraint pos_check check (value > 0);",
    ),
    case(
        "domain_dropped",
        "create domain public.pos as int check (value > 0);
         create table public.t (n public.pos);",
        "create table public.t (n int);",
    ),
    case(
        "composite_attribute_added",
        "create type public.addr as (street text);",
        "create type public.addr as (street text, city text);",
    ),
    case(
        "sequence_altered",
        "create sequence public.s increment by 1 cache 1;",
        "create sequence public.s increment by 5 maxvalue 1000 cache 10 cycle;",
    ),
    case(
        "sequence_owned_by_set",
        "create table public.t (n bigint); create sequence public.s;",
        "create table public.t (n bigint); create sequence public.s owned by public.t.n;",
    ),
    case(
        "check_constraint_changed",
        "create table public.t (n int constraint t_n_check check (n > 0));",
        "create table public.t (n int constraint t_n_check check (n >= 0));",
    ),
    case(
        "unique_constraint_added",
        "create table public.t (a int, b int);",
        "create table public.t (a int, b int, constraint t_a_b_key unique (a, b));",
    ),
    case(
        "foreign_key_added_not_valid",
        "create table public.p (id int primary key); create table public.c (p_id int);",
        "create table public.p (id int primary key); create table public.c (p_id int);
         alter table public.c add constraint c_p_fkey foreign key (p_id) references public.p (id) not valid;",
    ),
    case(
        "constraint_validated",
        "create table public.p (id int primary key); create table public.c (p_id int);
         alter table public.c add constraint c_p_fkey foreign key (p_id) references public.p (id) not valid;",
        "create table public.p (id int primary key); create table public.c (p_id int);
         alter table public.c add constraint c_p_fkey foreign key (p_id) references public.p (id);",
    ),
    case(
        "exclusion_constraint_added",
        "create table public.booking (during tstzrange);",
        "create table public.booking (during tstzrange, exclude using gist (during with &&));",
    ),
    case(
        "index_made_partial",
        "create table public.t (id int, deleted boolean); create index t_id_idx on public.t (id);",
        "create table public.t (id int, deleted boolean); create index t_id_idx on public.t (id) where not deleted;",
    ),
    case(
        "index_dropped",
        "create table public.t (id int); create index t_id_idx on public.t (id);",
        "create table public.t (id int);",
    ),
    case(
        "expression_index_added",
        "create table public.t (email text);",
        "create table public.t (email text); create unique index t_email_key on public.t (lower(email));",
    ),
    case(
        "partition_attached",
        "create table public.m (at date not null, n int) partition by range (at);
         create table public.m_2025 (at date not null, n int);",
        "create table public.m (at date not null, n int) partition by range (at);
         create table public.m_2025 partition of public.m for values from ('2025-01-01') to ('2026-01-01');",
    ),
    case(
        "partition_created",
        "create table public.m (at date not null, n int) partition by range (at);",
        "create table public.m (at date not null, n int) partition by range (at);
         create table public.m_2025 partition of public.m for values from ('2025-01-01') to ('2026-01-01');
         create index m_n_idx on public.m (n);",
    ),
    case(
        "policy_expression_changed",
        "create table public.t (owner uuid); alter table public.t enable row level security;
         create policy own on public.t for select to authenticated using (owner = auth.uid());",
        "create table public.t (owner uuid); alter table public.t enable row level security;
         create policy own on public.t for select to authenticated using (owner = (select auth.uid()));",
    ),
    case(
        "policy_roles_changed",
        "create table public.t (owner uuid); alter table public.t enable row level security;
         create policy own on public.t for select to authenticated using (true);",
        "create table public.t (owner uuid); alter table public.t enable row level security;
         create policy own on public.t for select to authenticated, anon using (true);",
    ),
    case(
        "policy_command_changed",
        "create table public.t (owner uuid); alter table public.t enable row level security;
         create policy own on public.t for select to authenticated using (owner = auth.uid());",
        "create table public.t (owner uuid); alter table public.t enable row level security;
         create policy own on public.t for all to authenticated using (owner = auth.uid())
           with check (owner = auth.uid());",
    ),
    case(
        "policy_made_restrictive",
        "create table public.t (n int); alter table public.t enable row level security;
         create policy p on public.t using (n > 0);",
        "create table public.t (n int); alter table public.t enable row level security;
         create policy p on public.t as restrictive using (n > 0);",
    ),
    case(
        "rls_disabled",
        "create table public.t (n int); alter table public.t enable row level security;",
        "create table public.t (n int);",
    ),
    case(
        "rls_forced",
        "create table public.t (n int); alter table public.t enable row level security;",
        "create table public.t (n int); alter table public.t enable row level security;
         alter table public.t force row level security;",
    ),
    case(
        "function_body_changed",
        "create function public.f(x int) returns int language sql immutable as $$ select x + 1 $$;",
        "create function public.f(x int) returns int language sql immutable as $$ select x + 2 $$;",
    ),
    case(
        "function_return_type_changed",
        "create function public.f(x int) returns int language sql as $$ select x $$;",
        "create function public.f(x int) returns bigint language sql as $$ select x::bigint $$;",
    ),
    case(
        "function_made_security_definer",
        "create function public.f() returns int language sql as $$ select 1 $$;",
        "create function public.f() returns int language sql security definer set search_path = ''
           as $$ select 1 $$;",
    ),
    case(
        "function_execute_revoked_from_public",
        "create function public.f() returns int language sql as $$ select 1 $$;",
        "create function public.f() returns int language sql as $$ select 1 $$;
         revoke execute on function public.f() from public, anon;",
    ),
    case(
        "procedure_and_aggregate_added",
        "create function public.add(numeric, numeric) returns numeric language sql immutable
           as 'select $1 + $2';",
        "create function public.add(numeric, numeric) returns numeric language sql immutable
           as 'select $1 + $2';
         create aggregate public.total(numeric) (sfunc = public.add, stype = numeric, initcond = '0');
         create procedure public.p() language sql as $$ select 1 $$;",
    ),
    case(
        "trigger_added",
        "create table public.t (at timestamptz);
         create function public.touch() returns trigger language plpgsql
           as $$ begin new.at := now(); return new; end $$;",
        "create table public.t (at timestamptz);
         create function public.touch() returns trigger language plpgsql
           as $$ begin new.at := now(); return new; end $$;
         create trigger t_touch before update on public.t for each row execute function public.touch();",
    ),
    case(
        "trigger_disabled",
        "create table public.t (at timestamptz);
         create function public.touch() returns trigger language plpgsql
           as $$ begin new.at := now(); return new; end $$;
         create trigger t_touch before update on public.t for each row execute function public.touch();",
        "create table public.t (at timestamptz);
         create function public.touch() returns trigger language plpgsql
           as $$ begin new.at := now(); return new; end $$;
         create trigger t_touch before update on public.t for each row execute function public.touch();
         alter table public.t disable trigger t_touch;",
    ),
    case(
        "view_made_security_invoker",
        "create table public.t (n int); create view public.v as select n from public.t;",
        "create table public.t (n int);
         create view public.v with (security_invoker = true) as select n from public.t;",
    ),
    case(
        "view_body_changed_under_a_dependent_view",
        "create table public.t (n int, m int);
         create view public.v as select n from public.t;
         create view public.w as select n from public.v;",
        "create table public.t (n int, m int);
         create view public.v as select n from public.t where m > 0;
         create view public.w as select n from public.v;",
    ),
    case(
        "view_dropped",
        "create table public.t (n int); create view public.v as select n from public.t;",
        "create table public.t (n int);",
    ),
    case(
        "materialized_view_changed",
        "create table public.t (n int);
         create materialized view public.mv as select n from public.t;
         create index mv_n_idx on public.mv (n);",
        "create table public.t (n int);
         create materialized view public.mv as select n, n * 2 as twice from public.t;
         create index mv_n_idx on public.mv (n);",
    ),
    case(
        "grant_revoked",
        "create table public.t (n int);",
        "create table public.t (n int); revoke all on public.t from anon;",
    ),
    case(
        "column_grant_added",
        "create table public.t (n int, secret text); revoke all on public.t from anon;",
        "create table public.t (n int, secret text); revoke all on public.t from anon;
         grant select (n) on public.t to anon;",
    ),
    case(
        "default_privileges_added",
        "create schema app;",
        "create schema app;
         alter default privileges in schema app grant select on tables to authenticated;",
    ),
    case(
        "comment_changed",
        "create table public.t (n int); comment on table public.t is 'old';
         comment on column public.t.n is 'a number';",
        "create table public.t (n int); comment on table public.t is 'new';",
    ),
    case(
        "publication_gets_a_table",
        "create table public.t (id int primary key); create publication app_pub;",
        "create table public.t (id int primary key); create publication app_pub for table public.t;",
    ),
    case(
        "serial_column_dropped",
        "create table public.t (id serial, name text);",
        "create table public.t (name text);",
    ),
    case(
        "table_with_a_serial_dropped",
        "create table public.keep (n int); create table public.t (id serial, name text);",
        "create table public.keep (n int);",
    ),
    case(
        "sequence_left_by_a_default_dropped",
        "create sequence public.s; create table public.t (n bigint default nextval('public.s'));",
        "create table public.t (n bigint default 0);",
    ),
    case(
        "function_left_by_a_default_dropped",
        "create function public.next_code() returns text language sql as $$ select 'x' $$;
         create table public.t (code text default public.next_code());",
        "create table public.t (code text);",
    ),
    case(
        "aggregate_and_its_function_dropped",
        "create function public.add(numeric, numeric) returns numeric language sql immutable
           as 'select $1 + $2';
         create aggregate public.total(numeric) (sfunc = public.add, stype = numeric);",
        "",
    ),
    case(
        "schema_dropped",
        "create schema app; create type app.mood as enum ('ok'); create table app.t (m app.mood);",
        "",
    ),
    case(
        "schema_added",
        "",
        "create schema app; comment on schema app is 'The app''s.';
         grant usage on schema app to authenticated;
         create table app.t (id int primary key);",
    ),
];

/// One case on databases of its own: the diff, then the check that running it makes
/// `before` into `after`. Returns the diff's SQL.
async fn run_case(case: &Case) -> Result<String> {
    let (before, after) = (empty_database().await?, empty_database().await?);
    let (cb, ca) = (before.client().await?, after.client().await?);
    run_script(&cb, case.before, "before").await?;
    run_script(&ca, case.after, "after").await?;
    let d = schema::diff(&inspect(&cb).await?, &inspect(&ca).await?);
    let sql = d.to_sql();
    ensure!(
        !d.changes.is_empty() || !d.manual.is_empty(),
        "the diff is empty"
    );
    match case.expect {
        Expect::Applies => {
            ensure!(d.manual.is_empty(), "manual steps: {:?}", d.manual);
            apply(&cb, &d, "the diff").await?;
            assert_same(&cb, &ca, "after the diff").await?;
        }
        Expect::Manual => {
            ensure!(!d.manual.is_empty(), "a manual step is expected:\n{sql}");
            apply(&cb, &d, "the diff").await?;
            let again = schema::diff(&inspect(&cb).await?, &inspect(&ca).await?);
            ensure!(
                again.changes.is_empty() && again.manual == d.manual,
                "only the manual step may be left:\n{}",
                again.to_sql()
            );
        }
    }
    before.close().await?;
    after.close().await?;
    Ok(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_changes_diff_as_their_snapshots_and_apply() -> Result<()> {
    let names: std::collections::BTreeSet<&str> = CASES.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), CASES.len(), "case names are unique");
    let mut outputs: Vec<(&str, Result<String>)> = Vec::new();
    // A few at a time: each case is two databases.
    for chunk in CASES.chunks(4) {
        let mut set = tokio::task::JoinSet::new();
        for (i, case) in chunk.iter().enumerate() {
            set.spawn(async move { (i, run_case(case).await) });
        }
        let mut results: Vec<(usize, Result<String>)> = set.join_all().await;
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            outputs.push((chunk[i].name, result));
        }
    }
    let failures: Vec<String> = outputs
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("case {name}: {e:#}")))
        .collect();
    if !failures.is_empty() {
        bail!(
            "{} of {} cases fail:\n\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n\n")
        );
    }
    for (name, sql) in outputs {
        if let Ok(sql) = sql {
            insta::assert_snapshot!(name, sql);
        }
    }
    Ok(())
}
