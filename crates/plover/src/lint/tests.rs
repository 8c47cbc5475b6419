//! Every rule fires on one inline SQL and stays quiet on its fixed form; the model is
//! tested across files; the repository's own migrations lint clean; the README's rule
//! table matches the code.

mod bodies;

use std::collections::BTreeSet;

use super::*;
use crate::source::Checksum;

const APPLIED: &str = "supabase/migrations/20250101000000_setup.sql";
const CHANGE: &str = "supabase/migrations/20250102000000_change.sql";

/// An existing table (applied before the change), with RLS on.
const T: &str = "create table if not exists public.t (id bigint primary key, name text);\n\
                 alter table public.t enable row level security;\n";

/// A new `SECURITY DEFINER` function of `public`, callable by anon by default.
const DEFINER: &str = "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;";

/// An existing exposed table without RLS (kept for the service role, say).
const NO_RLS: &str = "create table if not exists public.open (id bigint primary key);\n";

fn input(files: &[(&str, &str)], applied: &[&str]) -> Input {
    let baseline = if applied.is_empty() {
        Baseline::None
    } else {
        Baseline::Files(
            files
                .iter()
                .filter(|(path, _)| applied.contains(path))
                .map(|(path, sql)| BaselineFile {
                    version: version_of(path),
                    name: (*path).to_owned(),
                    checksum: Some(Checksum::of(sql.as_bytes())),
                    sql: Some((*sql).to_owned()),
                })
                .collect(),
        )
    };
    Input {
        files: files
            .iter()
            .map(|(path, sql)| InputFile::new(*path, *sql))
            .collect(),
        baseline,
        exposed_schemas: vec!["public".into()],
        granted_schemas: Vec::new(),
    }
}

fn version_of(path: &str) -> i64 {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('_').next().unwrap_or("0").parse().unwrap_or(0)
}

/// Lints `change` after an applied file holding `setup` (none when empty).
fn run(setup: &str, change: &str) -> Report {
    run_with(setup, change, &Config::default())
}

/// [`run`] with `config`.
fn run_with(setup: &str, change: &str, config: &Config) -> Report {
    if setup.is_empty() {
        lint(&input(&[(CHANGE, change)], &[]), config)
    } else {
        lint(
            &input(&[(APPLIED, setup), (CHANGE, change)], &[APPLIED]),
            config,
        )
    }
}

/// Every rule on, the opt-in ones at their severity.
fn every_rule_on() -> Config {
    let mut config = Config::default();
    for rule in RULES {
        config.set(rule.id, rule.severity.as_str()).unwrap();
    }
    config
}

fn ids(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.rule.id()).collect()
}

/// (rule, applied setup, SQL that fires it, SQL that does not).
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "needs-no-transaction",
        "",
        "create index concurrently if not exists i on public.t (id);",
        "-- plover:no-transaction\ncreate index concurrently if not exists i on public.t (id);",
    ),
    (
        "no-transaction-multiple-statements",
        "",
        "-- plover:no-transaction\ncreate index concurrently if not exists a on public.t (id);\nupdate public.t set name = 'x' where id = 1;",
        "-- plover:no-transaction\ncreate index concurrently if not exists a on public.t (id);\ncreate index concurrently if not exists b on public.t (name);",
    ),
    (
        "concurrently-not-idempotent",
        "",
        "-- plover:no-transaction\ncreate index concurrently a on public.t (id);",
        "-- plover:no-transaction\ncreate index concurrently if not exists a on public.t (id);",
    ),
    (
        "transaction-control",
        "",
        "begin;\nselect 1;\ncommit;",
        "select 1;",
    ),
    (
        "enum-value-same-transaction",
        T,
        "alter type mood add value 'meh';\nselect 'meh'::mood;",
        "alter type mood add value 'meh';\nupdate public.t set name = 'meh' where id = 1;",
    ),
    (
        "session-set",
        "",
        "set search_path = public;",
        "set local search_path = public;",
    ),
    (
        "psql-meta-command",
        "",
        "\\set ON_ERROR_STOP on\nselect 1;",
        "select 1;",
    ),
    (
        "psql-meta-command",
        T,
        "copy public.t (id, name) from stdin;",
        "select 1;",
    ),
    (
        "table-without-rls",
        "",
        "create table if not exists public.n (id int);",
        "create table if not exists public.n (id int);\nalter table public.n enable row level security;",
    ),
    (
        "table-without-rls",
        "",
        "create table if not exists public.n (id int);",
        "create table if not exists private.n (id int);",
    ),
    (
        "policy-without-rls",
        "",
        "create table if not exists public.n (id int);\ndrop policy if exists p on public.n;\ncreate policy p on public.n for select to authenticated using (id > 0);",
        "create table if not exists public.n (id int);\nalter table public.n enable row level security;\ndrop policy if exists p on public.n;\ncreate policy p on public.n for select to authenticated using (id > 0);",
    ),
    (
        "rls-disabled",
        T,
        "alter table public.t disable row level security;",
        "alter table public.t enable row level security;",
    ),
    (
        "last-policy-dropped",
        "create table if not exists public.t (id bigint primary key, name text);\n\
         alter table public.t enable row level security;\n\
         create policy p on public.t for select to authenticated using (id > 0);",
        "drop policy p on public.t;",
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (id > 1);",
    ),
    (
        "security-definer-search-path",
        "",
        "create or replace function public.f() returns int language sql security definer as $$ select 1 $$;",
        "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select 1 $$;",
    ),
    (
        "security-definer-search-path",
        "",
        "create or replace function public.f() returns int language sql security definer as $$ select 1 $$;",
        "create or replace function public.f() returns int language sql security definer as $$ select 1 $$;\nalter function public.f() set search_path = '';",
    ),
    (
        "view-without-security-invoker",
        "",
        "create or replace view public.v as select 1 as one;",
        "create or replace view public.v with (security_invoker = true) as select 1 as one;",
    ),
    (
        "view-without-security-invoker",
        "",
        "create or replace view public.v as select 1 as one;",
        "create or replace view public.v as select 1 as one;\nalter view public.v set (security_invoker = on);",
    ),
    (
        "write-policy-always-true",
        T,
        "drop policy if exists p on public.t;\ncreate policy p on public.t for update to authenticated using (true);",
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (true);",
    ),
    (
        "policy-user-metadata",
        T,
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (((select auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin');",
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');",
    ),
    (
        "policy-without-role",
        T,
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select using (id > 0);",
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (id > 0);",
    ),
    (
        "auth-function-per-row",
        T,
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (auth.uid() is not null);",
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using ((select auth.uid()) is not null);",
    ),
    (
        "view-reads-auth-users",
        "",
        "create or replace view public.v with (security_invoker = true) as select id, email from auth.users;",
        "create or replace view private.v as select id, email from auth.users;",
    ),
    (
        "broad-grant",
        NO_RLS,
        "grant select on table public.open to anon;",
        "grant select on table public.open to service_role;",
    ),
    (
        "broad-grant",
        NO_RLS,
        "grant select on all tables in schema public to public;",
        "alter table public.open enable row level security;\ngrant all on all tables in schema public to anon, authenticated;",
    ),
    (
        "broad-grant",
        T,
        "grant insert on public.t to authenticated;\nalter table public.t disable row level security;",
        "alter table public.t disable row level security;\ngrant insert on public.t to authenticated;\nalter table public.t enable row level security;",
    ),
    (
        "security-definer-anon-executable",
        "",
        concat!(
            "create or replace function public.forget(n text) returns void language plpgsql security definer set search_path = '' as $$\n",
            "begin\n  delete from vault.decrypted_secrets where name = n;\nend $$;"
        ),
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "revoke execute on function public.f() from public, anon;"
        ),
    ),
    (
        // PUBLIC alone is not enough: Supabase grants EXECUTE to anon in schema public.
        "security-definer-anon-executable",
        "",
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "revoke all on function public.f() from public;"
        ),
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "revoke all on all functions in schema public from public, anon;"
        ),
    ),
    (
        // Default privileges: PUBLIC's only without IN SCHEMA, anon's only with it.
        "security-definer-anon-executable",
        "",
        concat!(
            "alter default privileges revoke execute on functions from public, anon;\n",
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;"
        ),
        concat!(
            "alter default privileges revoke execute on functions from public;\n",
            "alter default privileges in schema public revoke execute on functions from anon;\n",
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;"
        ),
    ),
    (
        // Trigger functions and procedures cannot be called through the API; an
        // unexposed schema is not in the API; GRANT EXECUTE to anon is a decision.
        "security-definer-anon-executable",
        "",
        DEFINER,
        concat!(
            "create or replace function public.on_signup() returns trigger language plpgsql security definer set search_path = '' as $$ begin return new; end $$;\n",
            "create or replace procedure public.p() language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "create or replace function public.lookup(code text) returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "grant execute on function public.lookup(text) to anon;\n",
            "create or replace function private.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;"
        ),
    ),
    (
        // GRANT ALL restates the defaults (as pg_dump writes them): no decision.
        "security-definer-anon-executable",
        "",
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "grant all on function public.f() to anon;"
        ),
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "grant execute on function public.f() to anon, authenticated;"
        ),
    ),
    (
        // CREATE OR REPLACE keeps the revoke of an applied file.
        "security-definer-anon-executable",
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n",
            "revoke execute on function public.f() from public, anon;"
        ),
        concat!(
            "create or replace function public.f(a integer, out b text) returns text language sql security definer set search_path = '' as $$ select 'x' $$;\n",
            "drop function if exists public.f(int4);\n",
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets $$;"
        ),
        concat!(
            "create or replace function public.f(a integer, out b text) returns text language sql security definer set search_path = '' as $$ select 'x' $$;\n",
            "drop function if exists public.f(character varying, bigint[]);"
        ),
    ),
    (
        // A body that checks the caller, or reaches nothing privileged, is the opt-in
        // rule's: an RPC for signed-in users, a public lookup.
        "security-definer-anon-executable",
        "",
        DEFINER,
        concat!(
            "create or replace function public.mine() returns int language sql security definer set search_path = '' as $$ select count(*)::int from vault.secrets where (select auth.uid()) is not null $$;\n",
            "create or replace function public.plain() returns int language sql security definer set search_path = '' as $$ select 1 $$;\n",
            "create or replace function public.url() returns text language sql security definer set search_path = '' as $$ select decrypted_secret from vault.decrypted_secrets where name = 'url' $$;"
        ),
    ),
    (
        // A caller check made by a helper the function calls (two calls deep here)
        // counts; a helper that looks at no caller does not.
        "security-definer-anon-executable",
        "",
        concat!(
            "create or replace function public.org_of(id uuid) returns uuid language sql stable as $$ select id $$;\n",
            "create or replace function public.purge(org uuid) returns void language plpgsql security definer set search_path = '' as $$\n",
            "begin\n  perform public.org_of(org);\n  delete from vault.secrets where name = org::text;\nend $$;"
        ),
        concat!(
            "create or replace function public.me() returns uuid language sql stable as $$ select auth.uid() $$;\n",
            "create or replace function public.is_admin(org uuid) returns boolean language sql stable as $$ select me() is not null $$;\n",
            "create or replace function public.purge(org uuid) returns void language plpgsql security definer set search_path = '' as $$\n",
            "begin\n  if not public.is_admin(org) then raise exception 'no'; end if;\n  delete from vault.secrets where name = org::text;\nend $$;"
        ),
    ),
    (
        "security-definer-authenticated-executable",
        "",
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select 1 $$;\n",
            "revoke execute on function public.f() from public, anon;"
        ),
        concat!(
            "create or replace function public.f() returns int language sql security definer set search_path = '' as $$ select 1 $$;\n",
            "revoke execute on function public.f() from public, anon, authenticated;\n",
            "grant execute on function public.f() to service_role;"
        ),
    ),
    (
        "materialized-view-exposed",
        "",
        "create materialized view if not exists public.m as select 1 as one;",
        "create materialized view if not exists public.m as select 1 as one;\nrevoke select on public.m from anon, authenticated;",
    ),
    (
        "materialized-view-exposed",
        "",
        "create materialized view if not exists public.m as select 1 as one;\nrevoke all on public.m from anon;",
        concat!(
            "create materialized view if not exists private.m as select 1 as one;\n",
            "alter default privileges in schema public revoke select on tables from anon, authenticated;\n",
            "create materialized view if not exists public.n as select 1 as one;\n",
            "create materialized view if not exists public.scores as select 1 as one;\n",
            "revoke all on all tables in schema public from anon, authenticated;\n",
            "grant select on public.scores to anon, authenticated;"
        ),
    ),
    (
        "function-user-metadata",
        "",
        "create or replace function public.is_admin() returns boolean language sql stable set search_path = '' as $$\n  select coalesce((auth.jwt() -> 'user_metadata' ->> 'admin')::boolean, false)\n$$;",
        "create or replace function public.is_admin() returns boolean language sql stable set search_path = '' as $$\n  select coalesce((auth.jwt() -> 'app_metadata' ->> 'admin')::boolean, false)\n$$;",
    ),
    (
        // A helper of another schema and type counts once a policy calls it; a trigger
        // that copies the metadata into a profile is the normal pattern.
        "function-user-metadata",
        T,
        concat!(
            "create or replace function private.role_of(uid uuid) returns text language plpgsql security definer set search_path = '' as $$\n",
            "begin\n  return (select raw_user_meta_data ->> 'role' from auth.users where id = uid);\nend $$;\n",
            "drop policy if exists p on public.t;\n",
            "create policy p on public.t for update to authenticated using (private.role_of((select auth.uid())) = 'admin');"
        ),
        concat!(
            "create or replace function public.handle_new_user() returns trigger language plpgsql security definer set search_path = '' as $$\n",
            "begin\n  insert into public.t (id, name) values (1, new.raw_user_meta_data ->> 'full_name');\n  return new;\nend $$;\n",
            "create or replace function public.display_name(uid uuid) returns text language sql set search_path = '' as $$\n",
            "  select raw_user_meta_data ->> 'name' from auth.users where id = uid\n$$;"
        ),
    ),
    (
        "secret-key-in-sql",
        "",
        concat!(
            "select net.http_post('https://example.invalid/functions/v1/hook', headers => jsonb_build_object(\n",
            "  'Authorization', 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl'));"
        ),
        concat!(
            "select net.http_post('https://example.invalid/functions/v1/hook', headers => jsonb_build_object(\n",
            "  'Authorization', 'Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl'));"
        ),
    ),
    (
        "secret-key-in-sql",
        "",
        "create or replace function private.call() returns void language plpgsql set search_path = '' as $$\ndeclare\n  key text := 'sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz';\nbegin\nend $$;",
        "-- read the key from Vault, never write sb_secret_... here\nselect 1;",
    ),
    (
        "managed-schema-ddl",
        "",
        "create table if not exists auth.extra (id int);",
        "create or replace trigger on_signup after insert on auth.users for each row execute function public.handle_new_user();",
    ),
    (
        "managed-schema-ddl",
        "",
        "create or replace function storage.foldername(name text) returns text[] language sql as $$ select string_to_array(name, '/') $$;",
        "create or replace trigger on_upload after insert on storage.objects for each row execute function public.handle_upload();",
    ),
    (
        "managed-schema-ddl",
        "",
        "alter table storage.objects add column if not exists note text;",
        "drop policy if exists p on storage.objects;\ncreate policy p on storage.objects for select to authenticated using (bucket_id = 'avatars');",
    ),
    (
        "index-without-concurrently",
        T,
        "create index if not exists t_name on public.t (name);",
        "create table if not exists public.u (id int);\nalter table public.u enable row level security;\ncreate index if not exists u_id on public.u (id);",
    ),
    (
        "constraint-without-not-valid",
        T,
        "alter table public.t add constraint t_id_check check (id > 0);",
        "alter table public.t add constraint t_id_check check (id > 0) not valid;",
    ),
    (
        "constraint-without-not-valid",
        T,
        "alter table public.t add constraint t_fk foreign key (id) references public.other (id);",
        "alter table public.t add constraint t_fk foreign key (id) references public.other (id) not valid;",
    ),
    (
        // A REFERENCES on a new column is not checked while every new column is NULL
        // (measured: 2 ms on 3M rows); a default makes Postgres check it (550 ms).
        "constraint-without-not-valid",
        T,
        "alter table public.t add column owner int default 1 references public.other (id);",
        "alter table public.t add column owner int references public.other (id);",
    ),
    (
        // A CHECK on a new column is checked against every row, NULL or not (382 ms).
        "constraint-without-not-valid",
        T,
        "alter table public.t add column score int check (score > 0);",
        "alter table public.t add column score int, add constraint t_score check (score > 0) not valid;",
    ),
    (
        "set-not-null",
        T,
        "alter table public.t alter column name set not null;",
        "alter table public.t add constraint t_name_nn check (name is not null) not valid;\n\
         alter table public.t validate constraint t_name_nn;\n\
         alter table public.t alter column name set not null;",
    ),
    (
        "unique-without-index",
        T,
        "alter table public.t add constraint t_name_key unique (name);",
        "alter table public.t add constraint t_name_key unique using index t_name_idx;",
    ),
    (
        "table-rewrite",
        T,
        "alter table public.t add column if not exists token uuid default gen_random_uuid();",
        "alter table public.t add column if not exists created_at timestamptz not null default now();",
    ),
    (
        "table-rewrite",
        T,
        "alter table public.t alter column name type varchar(20);",
        "alter table public.t alter column name set default 'x';",
    ),
    (
        "table-rewrite",
        T,
        "alter table public.t add column if not exists upper_name text generated always as (upper(name)) stored;",
        "alter table public.t add column if not exists note text;",
    ),
    (
        "exclusive-maintenance",
        T,
        "cluster public.t using t_pkey;",
        "analyze public.t;",
    ),
    (
        "exclusive-maintenance",
        T,
        "-- plover:no-transaction\nvacuum full public.t;",
        "-- plover:no-transaction\nreindex index concurrently public.t_pkey;",
    ),
    (
        "drop-table",
        T,
        "drop table public.t;",
        "create table if not exists public.tmp (id int);\ndrop table public.tmp;",
    ),
    (
        "drop-schema",
        "",
        "drop schema legacy cascade;",
        "create schema if not exists scratch;\ndrop schema scratch;",
    ),
    (
        "drop-column",
        T,
        "alter table public.t drop column name;",
        "alter table public.t add column if not exists tmp text;\nalter table public.t drop column tmp;",
    ),
    (
        "truncate",
        T,
        "truncate public.t;",
        "delete from public.t where id = 1;",
    ),
    (
        "mutation-without-where",
        T,
        "delete from public.t;",
        "delete from public.t where id < 10;",
    ),
    (
        "mutation-without-where",
        T,
        "update public.t set name = 'x';",
        "update public.t set name = 'x' where name is null;",
    ),
    (
        "rename",
        T,
        "alter table public.t rename column name to title;",
        "alter table public.t add column if not exists nick text;\nalter table public.t rename column nick to nickname;",
    ),
    (
        "rename",
        T,
        "alter table public.t rename to things;",
        "create table if not exists public.u (id int);\nalter table public.u enable row level security;\nalter table public.u rename to u2;",
    ),
    (
        "add-not-null-column-without-default",
        T,
        "alter table public.t add column if not exists kind text not null;",
        "alter table public.t add column if not exists kind text not null default 'a';",
    ),
    (
        "create-without-if-not-exists",
        "",
        "create schema app;",
        "create schema if not exists app;",
    ),
    (
        "create-without-if-not-exists",
        "",
        "create table public.n (id int);",
        "create table if not exists public.n (id int);",
    ),
    (
        "create-without-or-replace",
        "",
        "create function public.one() returns int language sql set search_path = '' as $$ select 1 $$;",
        "create or replace function public.one() returns int language sql set search_path = '' as $$ select 1 $$;",
    ),
    (
        "create-policy-without-drop",
        T,
        "create policy p on public.t for select to authenticated using (id > 0);",
        "drop policy if exists p on public.t;\ncreate policy p on public.t for select to authenticated using (id > 0);",
    ),
    (
        "identifier-too-long",
        "",
        "create schema if not exists a_schema_name_that_is_far_too_long_for_postgres_to_keep_whole_xyz;",
        "create schema if not exists a_short_name;",
    ),
    (
        "syntax-error",
        "",
        "create tabel t (id int);",
        "create table if not exists private.t (id int);",
    ),
    (
        "syntax-error",
        "",
        "select 'unterminated;",
        "select 'terminated';",
    ),
    (
        "lint-ignore-invalid",
        T,
        "-- plover:lint-ignore drop-table\ndrop table public.t;",
        "-- plover:lint-ignore drop-table -- replaced by public.things in 20250101\ndrop table public.t;",
    ),
    (
        "lint-ignore-invalid",
        T,
        "-- plover:lint-ignore no-such-rule -- why\nselect 1;",
        "select 1;",
    ),
    (
        "lint-ignore-unused",
        T,
        "-- plover:lint-ignore drop-table -- replaced\nselect 1;",
        "-- plover:lint-ignore drop-table -- replaced\ndrop table public.t;",
    ),
];

/// Rules tested by their own tests below rather than by `CASES`.
const OWN_TESTS: &[&str] = &[
    "file-invalid",
    "duplicate-version",
    "history-edited",
    "history-comment-edited",
    "history-deleted",
    "history-out-of-order",
    // Catalog checks: found on a database by `db lint --live` (tests/tests/e2e/xtask_lint.rs
    // makes them fire); here only their mapping to statements is tested.
    "live-rls-disabled",
    "live-policy-without-rls",
    "live-function-search-path",
    "live-security-definer-view",
    "live-fk-without-index",
    "live-table-without-primary-key",
    // Needs an exposed schema other than public (and [grants]): its own test.
    "exposed-table-without-grants",
];

#[test]
fn every_rule_fires_on_its_case_and_not_on_the_fix() {
    let mut failures = Vec::new();
    let config = every_rule_on();
    for (rule, setup, fire, pass) in CASES {
        let fired = run_with(setup, fire, &config);
        if !ids(&fired).contains(rule) {
            failures.push(format!(
                "{rule} did not fire on:\n{fire}\n  got {:?}",
                fired.findings
            ));
        }
        let quiet = run_with(setup, pass, &config);
        if ids(&quiet).contains(rule) {
            failures.push(format!(
                "{rule} fired on the fix:\n{pass}\n  got {:?}",
                quiet.findings
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A new table in the exposed schema `api` (RLS on): reported unless an API role gets
/// a privilege on it (by name, on all of `api`, by `api`'s default privileges) or
/// plover.toml has `[grants.api]`; never in `public` (Supabase's defaults) nor in a
/// schema the API does not expose.
#[test]
fn exposed_table_without_grants_follows_grants_defaults_and_plover_toml() {
    let lint_api = |change: &str, granted: &[&str]| {
        let mut input = input(&[(CHANGE, change)], &[]);
        input.exposed_schemas = vec!["public".into(), "api".into()];
        input.granted_schemas = granted.iter().map(|s| (*s).to_owned()).collect();
        ids(&lint(&input, &every_rule_on()))
            .into_iter()
            .filter(|id| *id == "exposed-table-without-grants")
            .count()
    };
    let table = "create schema if not exists api;\ncreate table if not exists api.n (id int primary key);\nalter table api.n enable row level security;\n";
    assert_eq!(lint_api(table, &[]), 1);
    for fix in [
        "grant select on api.n to authenticated;",
        "grant all on all tables in schema api to service_role;",
        "grant insert on table api.n to public;",
    ] {
        assert_eq!(lint_api(&format!("{table}{fix}\n"), &[]), 0, "{fix}");
    }
    let defaults = format!(
        "alter default privileges in schema api grant select on tables to authenticated;\n{table}"
    );
    assert_eq!(lint_api(&defaults, &[]), 0);
    // Granted to a role the API does not act as: still unreachable.
    assert_eq!(
        lint_api(
            &format!("{table}grant select on api.n to reporting;\n"),
            &[]
        ),
        1
    );
    assert_eq!(lint_api(table, &["api"]), 0);
    let elsewhere = "create table if not exists private.n (id int primary key);\nalter table private.n enable row level security;\ncreate table if not exists public.m (id int primary key);\nalter table public.m enable row level security;\n";
    assert_eq!(lint_api(elsewhere, &[]), 0);
}

#[test]
fn every_rule_has_a_case() {
    let tested: BTreeSet<&str> = CASES
        .iter()
        .map(|c| c.0)
        .chain(OWN_TESTS.iter().copied())
        .collect();
    let all: BTreeSet<&str> = RuleId::ALL.iter().map(|r| r.id()).collect();
    let missing: Vec<_> = all.difference(&tested).collect();
    assert!(missing.is_empty(), "rules without a test: {missing:?}");
    let unknown: Vec<_> = tested.difference(&all).collect();
    assert!(unknown.is_empty(), "tests for unknown rules: {unknown:?}");
    assert_eq!(RuleId::ALL.len(), RULES.len());
    for (i, rule) in RuleId::ALL.iter().enumerate() {
        assert_eq!(rule.rule().id, RULES[i].id);
        assert_eq!(RuleId::from_id(rule.id()), Some(*rule));
    }
}

#[test]
fn file_invalid_and_duplicate_version() {
    let bad = input(
        &[
            ("m/20250101000000_a.sql", "select 1;"),
            ("m/init.sql", "select 1;"),
            ("m/20250101000000_b.sql", "select 2;"),
            ("m/README.md", "not sql"),
        ],
        &[],
    );
    let report = lint(&bad, &Config::default());
    let found = ids(&report);
    assert!(found.contains(&"file-invalid"), "{found:?}");
    assert!(found.contains(&"duplicate-version"), "{found:?}");
    let good = input(&[("m/20250101000000_a.sql", "select 1;")], &[]);
    assert!(lint(&good, &Config::default()).findings.is_empty());
}

#[test]
fn history_rules() {
    let old = "select 1;\n";
    let applied = [(APPLIED, old)];
    let baseline = |sql: Option<&str>| {
        Baseline::Files(vec![BaselineFile {
            version: 20250101000000,
            name: APPLIED.into(),
            checksum: Some(Checksum::of(old.as_bytes())),
            sql: sql.map(str::to_owned),
        }])
    };
    let with = |files: &[(&str, &str)], sql: Option<&str>| {
        let mut i = input(files, &[]);
        i.baseline = baseline(sql);
        ids(&lint(&i, &Config::default()))
    };
    // Unchanged: nothing.
    assert!(with(&applied, Some(old)).is_empty());
    // Edited (known only by checksum, as with --env).
    assert_eq!(with(&[(APPLIED, "select 2;\n")], None), ["history-edited"]);
    // Comments only (the old text is known, as with --base).
    assert_eq!(
        with(&[(APPLIED, "-- why\nselect 1;\n")], Some(old)),
        ["history-comment-edited"]
    );
    assert_eq!(
        with(&[(APPLIED, "select 2;\n")], Some(old)),
        ["history-edited"]
    );
    // Deleted.
    assert_eq!(
        with(&[(CHANGE, "select 1;")], Some(old)),
        ["history-deleted"]
    );
    // Out of order: a new file older than the newest applied one.
    let older = "supabase/migrations/20241231000000_late.sql";
    assert_eq!(
        with(&[(older, "select 1;"), (APPLIED, old)], Some(old)),
        ["history-out-of-order"]
    );
    assert!(with(&[(APPLIED, old), (CHANGE, "select 1;")], Some(old)).is_empty());
}

/// A file saved with a byte-order mark and applied unchanged is not edited: the
/// engine's checksum is over the bytes, as `--base` reads them from git.
#[test]
fn an_applied_file_with_a_byte_order_mark_is_unchanged() {
    let bytes = "\u{FEFF}select 1;\n";
    let mut i = input(&[(APPLIED, bytes), (CHANGE, "select 2;")], &[]);
    i.baseline = Baseline::Files(vec![BaselineFile {
        version: version_of(APPLIED),
        name: APPLIED.into(),
        checksum: Some(Checksum::of(bytes.as_bytes())),
        sql: Some(bytes.to_owned()),
    }]);
    let report = lint(&i, &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.files_checked, 1);
    // Edited in its comments only: still told apart from an edit of the SQL.
    i.files[0] = InputFile::new(APPLIED, "\u{FEFF}-- why\nselect 1;\n");
    assert_eq!(
        ids(&lint(&i, &Config::default())),
        ["history-comment-edited"]
    );
}

#[test]
fn findings_carry_file_line_and_column() {
    let report = run("", "-- header\n\nselect 1;\ncreate tabel t (id int);\n");
    let f = &report.findings[0];
    assert_eq!(f.rule, RuleId::SyntaxError);
    assert_eq!((f.file.as_str(), f.line, f.column), (CHANGE, 4, 8));
    assert_eq!(f.message, "syntax error at or near \"tabel\"");
    let report = run(
        T,
        "select 1;\n  alter table public.t\n    add column if not exists k text not null;",
    );
    let f = &report.findings[0];
    assert_eq!(f.rule, RuleId::AddNotNullColumnWithoutDefault);
    assert_eq!((f.line, f.column), (3, 30));
}

#[test]
fn ignores_cover_the_next_statement_or_the_file() {
    let next = run(
        T,
        "-- plover:lint-ignore drop-column, rename -- the app stopped reading it in v41\n\
         alter table public.t drop column name;\n\
         alter table public.t rename column id to key;",
    );
    assert_eq!(ids(&next), ["rename"], "only the next statement is covered");
    let file = run(
        T,
        "alter table public.t drop column name;\n\
         -- plover:lint-ignore-file drop-column, rename -- cleanup release\n\
         alter table public.t rename column id to key;",
    );
    assert!(file.findings.is_empty(), "{:?}", file.findings);
}

#[test]
fn config_turns_rules_off_and_changes_severity() {
    let sql = "alter table public.t rename column name to title;\ndelete from public.t;";
    let mut config = Config::default();
    let report = lint(&input(&[(CHANGE, sql)], &[]), &config);
    assert_eq!(report.count(Severity::Warning), 1);
    assert!(report.has_errors());
    config.set("rename", "off").unwrap();
    config.set("mutation-without-where", "warning").unwrap();
    let report = lint(&input(&[(CHANGE, sql)], &[]), &config);
    assert_eq!(ids(&report), ["mutation-without-where"]);
    assert!(!report.has_errors());
    assert!(matches!(
        config.set("nope", "off"),
        Err(LintError::UnknownRule { .. })
    ));
    assert!(matches!(
        config.set("rename", "loud"),
        Err(LintError::UnknownLevel { .. })
    ));
}

/// The style rules (re-runnable `CREATE`s) are team conventions: off unless
/// `[lint.rules]` turns them on, at the level it gives.
#[test]
fn style_rules_are_opt_in() {
    let sql = "create schema app;\n\
               create table public.n (id int);\n\
               alter table public.n enable row level security;\n\
               create function public.one() returns int language sql set search_path = '' as $$ select 1 $$;\n\
               create policy p on public.n for select to authenticated using (id > 0);";
    let style = [
        "create-without-if-not-exists",
        "create-without-or-replace",
        "create-policy-without-drop",
    ];
    for id in style {
        let rule = RuleId::from_id(id).unwrap().rule();
        assert_eq!(rule.activation, Activation::OptIn, "{id}");
    }
    let report = run("", sql);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let mut config = Config::default();
    for id in style {
        config.set(id, "warning").unwrap();
    }
    config.set("create-policy-without-drop", "error").unwrap();
    let report = run_with("", sql, &config);
    let found: BTreeSet<&str> = ids(&report).into_iter().collect();
    assert_eq!(found, style.into_iter().collect(), "{:?}", report.findings);
    assert_eq!(report.count(Severity::Error), 1);
    // Every other rule runs by default, but for those whose findings are often intended.
    let opt_in: BTreeSet<&str> = RULES
        .iter()
        .filter(|r| r.activation == Activation::OptIn)
        .map(|r| r.id)
        .collect();
    let expected: BTreeSet<&str> = style
        .into_iter()
        .chain([
            "policy-without-role",
            "security-definer-authenticated-executable",
            "materialized-view-exposed",
        ])
        .collect();
    assert_eq!(opt_in, expected);
}

/// A policy without TO is off by default: on real projects it was nearly always
/// deliberate (issue 15's corpus: deny-all, public reads, auth.uid() checks).
#[test]
fn policy_without_role_is_opt_in() {
    let sql = "drop policy if exists p on public.t;\n\
               create policy p on public.t for select using (id > 0);";
    assert!(run(T, sql).findings.is_empty());
    let mut config = Config::default();
    config.set("policy-without-role", "warning").unwrap();
    let report = run_with(T, sql, &config);
    assert_eq!(ids(&report), ["policy-without-role"]);
    assert_eq!(report.findings[0].line, 2);
}

/// An unnamed `CREATE INDEX CONCURRENTLY` cannot take IF NOT EXISTS (Postgres wants a
/// name for it): the message says so, without a hole where the name would be.
#[test]
fn an_unnamed_concurrent_index_is_named_in_the_message() {
    let report = run(
        T,
        "-- plover:no-transaction\ncreate index concurrently on public.t (name);",
    );
    let f = &report.findings[0];
    assert_eq!(f.rule, RuleId::ConcurrentlyNotIdempotent);
    assert_eq!(
        f.message,
        "CREATE INDEX CONCURRENTLY on public.t without a name cannot take IF NOT EXISTS"
    );
    assert!(!f.message.contains("  "), "{}", f.message);
}

/// pg_dump's header and `db diff`'s `SET check_function_bodies = off` leave nothing
/// behind that matters; settings that change what later migrations do still fire.
#[test]
fn session_set_knows_pg_dump_headers() {
    let header = "SET statement_timeout = 0;\n\
                  SET lock_timeout = 0;\n\
                  SET idle_in_transaction_session_timeout = 0;\n\
                  SET transaction_timeout = 0;\n\
                  SET client_encoding = 'UTF8';\n\
                  SET standard_conforming_strings = on;\n\
                  SELECT pg_catalog.set_config('search_path', '', false);\n\
                  SET check_function_bodies = false;\n\
                  SET xmloption = content;\n\
                  SET client_min_messages = warning;\n\
                  SET row_security = off;\n\
                  SET default_tablespace = '';\n\
                  SET default_table_access_method = heap;\n\
                  SET check_function_bodies = off;\n";
    let report = run("", header);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    for leak in [
        "SET search_path = public;",
        "SET search_path = '';",
        "SET role postgres;",
        "SET lock_timeout = '5s';",
        "SET statement_timeout = '1min';",
        "SET check_function_bodies = on;",
        "SET session_replication_role = replica;",
        "SET search_path TO DEFAULT;",
    ] {
        let report = run("", leak);
        assert_eq!(ids(&report), ["session-set"], "{leak}");
    }
}

/// What Supabase itself grants (and `db diff`/`db pull` write) is no finding: API
/// roles on tables with RLS (with or without policies), sequences, default
/// privileges; so are grants on views, on tables the lint never saw created, and on
/// tables of unexposed schemas. A grant on an existing table left without RLS is.
#[test]
fn broad_grant_understands_rls() {
    let supabase = "grant usage on schema public to anon, authenticated, service_role;\n\
                    alter default privileges in schema public grant all on tables to anon, authenticated, service_role;\n\
                    alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;\n\
                    alter default privileges in schema public grant all on functions to anon, authenticated, service_role;\n\
                    create table if not exists public.notes (id bigint generated always as identity primary key);\n\
                    alter table public.notes enable row level security;\n\
                    grant all on table public.notes to anon;\n\
                    grant all on table public.notes to authenticated;\n\
                    grant all on table public.notes to service_role;\n\
                    grant all on sequence public.notes_id_seq to anon, authenticated;\n\
                    grant all on all sequences in schema public to anon;\n\
                    grant all on all tables in schema public to anon, authenticated;\n\
                    create or replace view public.v with (security_invoker = on) as select 1 as one;\n\
                    grant select on public.v to anon;\n\
                    grant select on public.made_elsewhere to anon;\n\
                    create table if not exists private.secrets (id int);\n\
                    grant select on private.secrets to authenticated;\n\
                    create table if not exists public.scratch (id int);\n\
                    grant all on public.scratch to anon;\n\
                    drop table public.scratch;\n";
    let report = run("", supabase);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // A table created in the change without RLS is one finding, table-without-rls's,
    // however many grants follow it.
    let report = run(
        "",
        "create table if not exists public.n (id int);\n\
         grant select on public.n to anon;\n\
         grant insert on public.n to anon;\n\
         grant all on public.n to authenticated;\n",
    );
    assert_eq!(ids(&report), ["table-without-rls"]);

    let report = run(
        NO_RLS,
        "create table if not exists public.a (id int);\n\
         alter table public.a enable row level security;\n\
         grant select, insert on all tables in schema public to anon;\n",
    );
    assert_eq!(ids(&report), ["broad-grant"]);
    assert_eq!(
        report.findings[0].message,
        "GRANT SELECT, INSERT on public.open to anon: no row level security there by the end of the change"
    );
    assert_eq!(report.findings[0].line, 3);
}

/// The new value counts as used only where Postgres reads it as that enum: a cast, a
/// comparison with or an assignment to a column of that type, a column default.
/// The new Supabase rules point at the statement that opened the hole: the function's
/// creation, the `ALTER FUNCTION` or `GRANT` of the change, the materialized view's
/// creation, the key itself.
#[test]
fn supabase_exposure_rules_point_at_the_statement() {
    let at = |report: &Report, rule: &str| -> Vec<(usize, usize)> {
        report
            .findings
            .iter()
            .filter(|f| f.rule.id() == rule)
            .map(|f| (f.line, f.column))
            .collect()
    };
    let setup = "create or replace function public.f() returns int language sql set search_path = '' as $$ select count(*)::int from vault.secrets $$;\n\
                 create or replace function public.g() returns int language sql security definer set search_path = '' as $$ select count(*)::int from auth.users $$;\n\
                 revoke execute on function public.g() from public, anon, authenticated;\n";
    let report = run(
        setup,
        "select 1;\n  alter function public.f() security definer;\n\
         grant execute on function public.g() to service_role;\n\
         grant all on all functions in schema public to authenticated;\n",
    );
    assert_eq!(
        at(&report, "security-definer-anon-executable"),
        [(2, 3)],
        "{:?}",
        report.findings
    );
    assert!(
        report.findings[0]
            .message
            .contains("public.f can be called by anon"),
        "{:?}",
        report.findings
    );
    // A grant in the change opens an applied function (anon through PUBLIC here).
    let report = run(
        setup,
        "select 1;\ngrant all on all functions in schema public to public;",
    );
    assert_eq!(
        at(&report, "security-definer-anon-executable"),
        [(2, 1)],
        "{:?}",
        report.findings
    );

    let report = run_with(
        "",
        "select 1;\n\ncreate materialized view public.stats as select 1 as one;\nrevoke select on public.stats from anon;\n",
        &every_rule_on(),
    );
    assert_eq!(at(&report, "materialized-view-exposed"), [(3, 1)]);
    assert!(
        report.findings[0]
            .message
            .ends_with("and authenticated can read all of it through the API"),
        "{:?}",
        report.findings
    );

    let report = run(
        T,
        "select 1;\ncreate or replace function public.is_editor() returns boolean language plpgsql set search_path = '' as $$\n\
         begin\n  return (select (raw_user_meta_data ->> 'editor')::boolean from auth.users where id = (select auth.uid()));\nend $$;",
    );
    assert_eq!(at(&report, "function-user-metadata"), [(2, 1)]);
    // A policy of an applied file that calls a function the change redefines.
    let report = run(
        "create or replace function public.tier() returns text language sql set search_path = '' as $$ select 'free' $$;\n\
         alter table public.t enable row level security;\n\
         create policy p on public.t for select to authenticated using (public.tier() = 'pro');\n",
        "create or replace function public.tier() returns text language sql set search_path = '' as $$\n\
         \x20 select auth.jwt() #>> '{user_metadata,tier}'\n$$;",
    );
    assert_eq!(at(&report, "function-user-metadata"), [(1, 1)]);
}

/// A key is named by its kind and the prefix all keys share, never shown; the local
/// development key is told apart; a key in a comment counts, at its own line.
#[test]
fn secret_findings_never_show_the_key() {
    const SERVICE: &str =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl";
    const DEMO: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSJ9.c2lnbmF0dXJl";
    const SECRET: &str = "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz";
    let sql = format!(
        "-- key: {SECRET}\nselect 1;\ndo $$\ndeclare\n  k text := '{DEMO}';\nbegin\nend $$;\nselect '{SERVICE}';\n"
    );
    let report = run("", &sql);
    let found: Vec<(usize, usize, &str)> = report
        .findings
        .iter()
        .map(|f| (f.line, f.column, f.message.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                1,
                9,
                "a secret API key (sb_secret_…) is written in the file"
            ),
            (
                5,
                14,
                "a JWT for the service_role role (eyJ…) is written in the file (the local development key: the function cannot work on a hosted project)"
            ),
            (
                8,
                9,
                "a JWT for the service_role role (eyJ…) is written in the file"
            ),
        ]
    );
    let human = render_human(&report, false);
    let json = render_json(&report);
    for key in [SERVICE, DEMO, SECRET] {
        let tail = &key[12..24];
        assert!(!human.contains(tail) && !json.contains(tail), "{human}");
    }
    // The statement that holds a key can be ignored like any other.
    let ignored = run(
        "",
        &format!(
            "-- plover:lint-ignore secret-key-in-sql -- revoked, kept for the record\nselect '{SERVICE}';"
        ),
    );
    assert!(ignored.findings.is_empty(), "{:?}", ignored.findings);
}

#[test]
fn enum_value_rule_follows_the_enum() {
    let setup = "create type public.mood as enum ('ok');\n\
                 create type public.tone as enum ('ok');\n\
                 create table if not exists public.t (id int primary key, name text, m public.mood);\n\
                 alter table public.t enable row level security;\n";
    let add = "alter type public.mood add value 'meh';\n";
    for used in [
        "select 'meh'::public.mood;",
        "select 'meh'::mood;",
        "update public.t set m = 'meh' where id = 1;",
        "update public.t set name = 'x' where m = 'meh';",
        "delete from public.t where m in ('ok', 'meh');",
        "select id from public.t where 'meh' = m;",
        "insert into public.t (id, m) values (1, 'meh');",
        "alter table public.t alter column m set default 'meh';",
        "alter table public.t add column if not exists m2 public.mood default 'meh';",
        "create table if not exists public.u (id int, m public.mood not null default 'meh');",
        "create index if not exists t_meh on public.t (id) where m = 'meh';",
    ] {
        let report = run(setup, &format!("{add}{used}"));
        assert!(
            ids(&report).contains(&"enum-value-same-transaction"),
            "{used}: {:?}",
            report.findings
        );
    }
    for unrelated in [
        "update public.t set name = 'meh' where id = 1;",
        "select 'meh'::public.tone;",
        "select 'meh';",
        "update public.t set m = 'ok' where name = 'meh';",
        "insert into public.t (id, name) values (1, 'meh');",
        "comment on table public.t is 'meh';",
    ] {
        let report = run(setup, &format!("{add}{unrelated}"));
        assert!(
            report.findings.is_empty(),
            "{unrelated}: {:?}",
            report.findings
        );
    }
    // In a later file, after the commit, the value is usable.
    let files = [
        (APPLIED, setup),
        (CHANGE, add),
        (
            "supabase/migrations/20250103000000_use.sql",
            "update public.t set m = 'meh' where id = 1;",
        ),
    ];
    let report = lint(&input(&files, &[APPLIED]), &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

// The model across files.

/// A table or materialized view created in the change stays new when it is moved to
/// another schema, renamed or given an owner: indexes and constraints on it lock out
/// no one. One created before the change still takes the findings after a move.
#[test]
fn relations_created_in_the_change_stay_new_when_moved() {
    let report = run(
        "",
        "create table if not exists public.a (id int, b int);\n\
         alter table public.a owner to postgres;\n\
         alter table public.a set schema private;\n\
         alter table private.a rename to b;\n\
         create index if not exists b_id on private.b (id);\n\
         alter table private.b add constraint b_pos check (id > 0);\n\
         alter table private.b add constraint b_fk foreign key (b) references private.b (id);\n\
         create materialized view if not exists private.mv as select 1 as one;\n\
         alter materialized view private.mv owner to postgres;\n\
         alter table private.mv owner to postgres;\n\
         create unique index if not exists mv_one on private.mv (one);\n\
         alter materialized view private.mv rename to mv2;\n\
         create index if not exists mv2_one on private.mv2 (one);\n\
         create table private.c as select 1 as one;\n\
         create index if not exists c_one on private.c (one);\n\
         create temp table keep on commit drop as select 1 as one;\n\
         create index if not exists keep_one on keep (one);\n\
         create temporary table scratch (id int);\n\
         drop table scratch;\n\
         drop table keep;\n",
    );
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let report = run(
        "create table if not exists private.old (id int);\n\
         create materialized view if not exists private.old_mv as select 1 as one;\n",
        "alter table private.old set schema archive;\n\
         create index if not exists old_id on archive.old (id);\n\
         alter table archive.old add constraint old_pos check (id > 0);\n\
         create index if not exists old_mv_one on private.old_mv (one);\n",
    );
    assert_eq!(
        ids(&report),
        [
            "index-without-concurrently",
            "constraint-without-not-valid",
            "index-without-concurrently"
        ],
        "{:?}",
        report.findings
    );
    assert!(report.findings[0].message.contains("archive.old"));
}

#[test]
fn a_table_created_in_the_change_takes_no_lock_warnings() {
    let files = [
        (
            APPLIED,
            "create table if not exists public.a (id int);\nalter table public.a enable row level security;",
        ),
        (
            CHANGE,
            "create index if not exists a_id on public.a (id);\nalter table public.a add constraint a_pos check (id > 0);",
        ),
    ];
    // Both files in the change: the table is new.
    let report = lint(&input(&files, &[]), &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // The first one applied: the table exists, so both lock rules fire.
    let report = lint(&input(&files, &[APPLIED]), &Config::default());
    assert_eq!(
        ids(&report),
        ["index-without-concurrently", "constraint-without-not-valid"]
    );
    assert_eq!(report.files_checked, 1);
    assert_eq!(report.files_total, 2);
}

#[test]
fn rls_enabled_in_a_later_file_of_the_change_counts() {
    let files = [
        (APPLIED, "create table if not exists public.a (id int);"),
        (CHANGE, "alter table public.a enable row level security;"),
    ];
    let report = lint(&input(&files, &[]), &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // Without the second file the table is reported at its CREATE.
    let report = lint(&input(&files[..1], &[]), &Config::default());
    assert_eq!(ids(&report), ["table-without-rls"]);
    assert_eq!(
        (report.findings[0].file.as_str(), report.findings[0].line),
        (APPLIED, 1)
    );
}

#[test]
fn applied_files_are_not_reported() {
    let files = [
        (
            APPLIED,
            "create table public.a (id int);\ndelete from public.b;",
        ),
        (CHANGE, "select 1;"),
    ];
    let report = lint(&input(&files, &[APPLIED]), &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn live_findings_land_on_the_creating_statement() {
    let files = [
        (APPLIED, "create table if not exists public.old (id int);"),
        (
            CHANGE,
            "select 1;\n\
             create table if not exists public.a (id int);\n\
             alter table public.a enable row level security;\n\
             -- plover:lint-ignore live-table-without-primary-key -- an append-only log\n\
             create table if not exists public.b (id int);\n\
             alter table public.b enable row level security;",
        ),
    ];
    let live = |rule, kind, object: &str| LiveFinding {
        rule,
        kind,
        object: object.to_owned(),
        message: format!("{object}: found"),
    };
    let found = [
        live(RuleId::LiveFkWithoutIndex, ObjectKind::Table, "public.a"),
        live(
            RuleId::LiveTableWithoutPrimaryKey,
            ObjectKind::Table,
            "public.b",
        ),
        live(RuleId::LiveRlsDisabled, ObjectKind::Table, "public.old"),
        live(
            RuleId::LiveFunctionSearchPath,
            ObjectKind::Function,
            "public.made_in_do",
        ),
    ];
    let report = lint_live(&input(&files, &[APPLIED]), &Config::default(), &found);
    let got: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.rule.id(), f.file.as_str(), f.line, f.severity))
        .collect();
    assert_eq!(
        got,
        [
            ("live-function-search-path", CHANGE, 1, Severity::Warning),
            ("live-fk-without-index", CHANGE, 2, Severity::Warning),
        ],
        "public.old is applied, public.b is ignored: {:?}",
        report.findings
    );
    assert!(report.findings[0].message.ends_with("e.g. by dynamic SQL)"));
}

#[test]
fn end_of_change_rules_report_only_in_the_change() {
    // RLS was already off on an applied table: touching it in the change does not
    // turn its CREATE (in an applied file) into a finding...
    let files = [
        (APPLIED, "create table if not exists public.a (id int);"),
        (
            CHANGE,
            "comment on table public.a is 'a';\nalter table public.a add column if not exists b text;",
        ),
    ];
    let report = lint(&input(&files, &[APPLIED]), &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    // ...but a policy added in the change on it is reported there.
    let files = [
        (APPLIED, "create table if not exists public.a (id int);"),
        (
            CHANGE,
            "drop policy if exists p on public.a;\ncreate policy p on public.a for select to authenticated using (id > 0);",
        ),
    ];
    let report = lint(&input(&files, &[APPLIED]), &Config::default());
    assert_eq!(ids(&report), ["policy-without-rls"]);
    assert_eq!(
        (report.findings[0].file.as_str(), report.findings[0].line),
        (CHANGE, 2)
    );
}

#[test]
fn a_policy_dropped_and_recreated_across_files_is_fine() {
    let setup = "create table if not exists public.t (id int);\n\
                 alter table public.t enable row level security;\n\
                 create policy p on public.t for select to authenticated using (id > 0);";
    let files = [
        (APPLIED, setup),
        (CHANGE, "drop policy p on public.t;"),
        (
            "supabase/migrations/20250103000000_again.sql",
            "drop policy if exists q on public.t;\ncreate policy q on public.t for select to authenticated using (id > 1);",
        ),
    ];
    let report = lint(&input(&files, &[APPLIED]), &Config::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    let report = lint(&input(&files[..2], &[APPLIED]), &Config::default());
    assert_eq!(ids(&report), ["last-policy-dropped"]);
}

#[test]
fn the_repository_migrations_lint_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../supabase/migrations");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // As `db lint` reads the folder: files only (not the `down/` folder).
        if !path.is_file() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push(InputFile::new(
            format!("supabase/migrations/{name}"),
            std::fs::read(&path).unwrap(),
        ));
    }
    assert!(files.len() >= 6);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut input = Input {
        files,
        baseline: Baseline::None,
        exposed_schemas: vec!["public".into(), "graphql_public".into()],
        granted_schemas: Vec::new(),
    };
    let report = lint(&input, &Config::default());
    assert!(
        report.findings.is_empty(),
        "{}",
        render_human(&report, false)
    );
    assert!(report.statements > 40);
    // And as each step of their history: the first k files applied, the rest new
    // (so the later files' statements meet existing tables).
    for k in 1..input.files.len() {
        input.baseline = Baseline::Files(
            input.files[..k]
                .iter()
                .map(|f| BaselineFile {
                    version: version_of(&f.path),
                    name: f.path.clone(),
                    checksum: Some(Checksum::of(&f.bytes)),
                    sql: None,
                })
                .collect(),
        );
        let report = lint(&input, &Config::default());
        assert!(
            report.findings.is_empty(),
            "with {k} applied:\n{}",
            render_human(&report, false)
        );
    }
}

#[test]
fn output_formats() {
    let report = run("", "create table if not exists public.n (id int);");
    let human = render_human(&report, false);
    assert!(
        human.starts_with(&format!(
            "{CHANGE}:1:1: error[table-without-rls]: public.n is exposed"
        )),
        "{human}"
    );
    assert!(human.contains("  hint: ALTER TABLE ... ENABLE ROW LEVEL SECURITY"));
    assert!(human.contains("1 error(s), 0 warning(s) in 1 file(s) checked"));
    assert!(render_human(&report, true).contains("\x1b[1;31merror\x1b[0m"));

    let json: serde_json::Value = serde_json::from_str(&render_json(&report)).unwrap();
    assert_eq!(json["errors"], 1);
    assert_eq!(json["findings"][0]["rule"], "table-without-rls");
    assert_eq!(json["findings"][0]["line"], 1);
    assert_eq!(json["findings"][0]["file"], CHANGE);

    let github = render_github(&report);
    assert!(
        github.starts_with(&format!(
            "::error file={CHANGE},line=1,col=1,title=plover lint%3A table-without-rls::public.n is exposed"
        )),
        "{github}"
    );
    assert!(github.lines().next().unwrap().contains("%0Ahint: "));
}

const BEGIN: &str = "<!-- lint-rules:begin -->";
const END: &str = "<!-- lint-rules:end -->";

/// The README with `table` between the markers; `None` when the markers are absent.
fn with_rule_table(readme: &str, table: &str) -> Option<String> {
    let start = readme.find(BEGIN)? + BEGIN.len();
    let end = start + readme[start..].find(END)?;
    Some(format!("{}\n{table}{}", &readme[..start], &readme[end..]))
}

#[test]
fn the_rule_table_goes_between_the_markers() {
    let readme = "# x\n<!-- lint-rules:begin -->\nold\n<!-- lint-rules:end -->\ntail\n";
    assert_eq!(
        with_rule_table(readme, "| new |\n").as_deref(),
        Some("# x\n<!-- lint-rules:begin -->\n| new |\n<!-- lint-rules:end -->\ntail\n")
    );
    assert_eq!(with_rule_table("# no markers\n", "| new |\n"), None);
    let table = rules_markdown();
    assert_eq!(
        table.lines().count(),
        RULES.len() + 2 + 8,
        "header, rules, 8 groups"
    );
}

/// The README's rule table is generated from [`RULES`]: it must match. With
/// `PLOVER_UPDATE_README=1` the text between the markers is rewritten.
#[test]
fn readme_rule_table_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let Some(wanted) = with_rule_table(&readme, &rules_markdown()) else {
        panic!("README.md has lost its {BEGIN} ... {END} markers around the lint rule table");
    };
    if wanted == readme {
        return;
    }
    if std::env::var_os("PLOVER_UPDATE_README").is_some_and(|v| v == "1") {
        std::fs::write(&path, wanted).unwrap();
        return;
    }
    panic!(
        "README.md's lint rule table is out of date; run `PLOVER_UPDATE_README=1 cargo test -p plover --features lint --lib lint` to rewrite it"
    );
}

// Snapshots: the whole report of a few multi-file migration sets, as people and
// machines read it. Each `.snap` file under `snapshots/` was reviewed by eye; a change
// to any rule's position, wording or order shows up as a diff there.

/// Both renderings of a report, for one snapshot each.
fn snapshot_report(name: &str, report: &Report) {
    insta::assert_snapshot!(format!("{name}__human"), render_human(report, false));
    insta::assert_snapshot!(format!("{name}__json"), render_json(report));
}

const M: &str = "supabase/migrations";

/// A feature built over three new files: a table whose RLS comes one file later, a
/// policy evaluated per row, a SECURITY DEFINER function, an exposed view, a trigger.
#[test]
fn snapshot_a_feature_across_files() {
    let files = [
        (
            "supabase/migrations/20250301000000_notes.sql",
            "create table if not exists public.notes (\n\
             \x20 id bigint generated always as identity primary key,\n\
             \x20 owner uuid not null,\n\
             \x20 body text\n\
             );\n\
             create index if not exists notes_owner on public.notes (owner);\n\
             create table if not exists public.tags (id int primary key);\n",
        ),
        (
            "supabase/migrations/20250302000000_notes_rls.sql",
            "alter table public.notes enable row level security;\n\
             drop policy if exists \"own notes\" on public.notes;\n\
             create policy \"own notes\" on public.notes for all to authenticated\n\
             \x20 using (owner = auth.uid()) with check (owner = (select auth.uid()));\n\
             create policy open on public.notes for insert with check (true);\n",
        ),
        (
            "supabase/migrations/20250303000000_api.sql",
            "create or replace function public.note_count() returns bigint\n\
             language sql security definer as $$ select count(*) from public.notes $$;\n\
             create view public.note_owners as\n\
             \x20 select n.id, u.email from public.notes n join auth.users u on u.id = n.owner;\n\
             create trigger notes_touch before update on public.notes\n\
             \x20 for each row execute function public.touch();\n\
             grant all on public.notes to anon;\n",
        ),
    ];
    let report = lint(&input(&files, &[]), &Config::default());
    snapshot_report("feature_across_files", &report);
}

/// A change on top of applied history: lock-taking statements on existing tables, an
/// applied file edited (and one only in its comments), one deleted, a new file older
/// than the newest applied one, an ignore that is used and one that is not.
#[test]
fn snapshot_a_change_on_applied_history() {
    let accounts = "create table if not exists public.accounts (id bigint primary key, email text);\n\
                    alter table public.accounts enable row level security;\n";
    let ledger = "create table if not exists public.ledger (id bigint primary key, amount int);\n\
                  alter table public.ledger enable row level security;\n";
    let applied = [
        ("supabase/migrations/20250101000000_accounts.sql", accounts),
        ("supabase/migrations/20250102000000_ledger.sql", ledger),
        ("supabase/migrations/20250103000000_gone.sql", "select 1;\n"),
        (
            "supabase/migrations/20250104000000_seed.sql",
            "insert into public.accounts (id) values (1);\n",
        ),
    ];
    let baseline = Baseline::Files(
        applied
            .iter()
            .map(|(path, sql)| BaselineFile {
                version: version_of(path),
                name: (*path).to_owned(),
                checksum: Some(Checksum::of(sql.as_bytes())),
                sql: Some((*sql).to_owned()),
            })
            .collect(),
    );
    let files = [
        ("supabase/migrations/20250101000000_accounts.sql", accounts),
        (
            "supabase/migrations/20250102000000_ledger.sql",
            "create table if not exists public.ledger (id bigint primary key, amount bigint);\n\
             alter table public.ledger enable row level security;\n",
        ),
        (
            "supabase/migrations/20250104000000_seed.sql",
            "-- the first account\ninsert into public.accounts (id) values (1);\n",
        ),
        ("supabase/migrations/20250103120000_late.sql", "select 2;\n"),
        (
            "supabase/migrations/20250105000000_change.sql",
            "alter table public.accounts add column if not exists plan text not null;\n\
             alter table public.accounts add column if not exists uid uuid default gen_random_uuid();\n\
             create index if not exists accounts_email on public.accounts (email);\n\
             alter table public.ledger add constraint ledger_account\n\
             \x20 foreign key (id) references public.accounts (id);\n\
             -- plover:lint-ignore drop-column -- nothing reads it since v12\n\
             alter table public.ledger drop column if exists amount;\n\
             -- plover:lint-ignore rename -- nothing to rename here\n\
             update public.accounts set email = lower(email);\n\
             alter table public.accounts rename column email to address;\n",
        ),
    ];
    let mut input = input(&files, &[]);
    input.baseline = baseline;
    let report = lint(&input, &Config::default());
    snapshot_report("change_on_applied_history", &report);
}

/// Files plover cannot load or run as written: a bad name, a duplicate version, an
/// unknown directive, a no-transaction file that cannot be re-run, a psql
/// meta-command, a syntax error, an enum value used in the transaction that adds it.
#[test]
fn snapshot_files_that_cannot_run_as_written() {
    let files: Vec<(String, Vec<u8>)> = vec![
        (format!("{M}/init.sql"), b"select 1;\n".to_vec()),
        (format!("{M}/notes.txt"), b"not sql".to_vec()),
        (
            format!("{M}/20250201000000_a.sql"),
            b"create type public.mood as enum ('ok');\n".to_vec(),
        ),
        (format!("{M}/20250201000000_b.sql"), b"select 2;\n".to_vec()),
        (
            format!("{M}/20250202000000_directive.sql"),
            b"-- plover:no-such-thing\nselect 1;\n".to_vec(),
        ),
        (
            format!("{M}/20250203000000_latin1.sql"),
            b"select 1;\n-- caf\xe9\n".to_vec(),
        ),
        (
            format!("{M}/20250204000000_concurrently.sql"),
            b"-- plover:no-transaction\n\
              create index concurrently t_id on public.t (id);\n\
              update public.t set id = id + 1 where id > 0;\n"
                .to_vec(),
        ),
        (
            format!("{M}/20250205000000_psql.sql"),
            b"\\set ON_ERROR_STOP on\nselect 1;\ncreate tabel x (id int);\n".to_vec(),
        ),
        (
            format!("{M}/20250206000000_mood.sql"),
            b"alter type public.mood add value 'great';\n\
              select 'great'::public.mood;\n\
              set search_path = public;\n\
              vacuum full public.t;\n"
                .to_vec(),
        ),
    ];
    let input = Input {
        files: files
            .into_iter()
            .map(|(path, bytes)| InputFile::new(path, bytes))
            .collect(),
        baseline: Baseline::None,
        exposed_schemas: vec!["public".into()],
        granted_schemas: Vec::new(),
    };
    let report = lint(&input, &Config::default());
    snapshot_report("files_that_cannot_run_as_written", &report);
}

/// `--live`: catalog findings placed at the statements that created their objects,
/// across an applied file and two files of the change, with a rule made a warning.
#[test]
fn snapshot_live_findings_across_files() {
    let files = [
        (APPLIED, "create table if not exists public.old (id int);\n"),
        (
            CHANGE,
            "create table if not exists public.a (id int, b_id int);\n\
             alter table public.a enable row level security;\n",
        ),
        (
            "supabase/migrations/20250103000000_fn.sql",
            "create or replace function public.f() returns int language sql\n\
             \x20 set search_path = '' as $$ select 1 $$;\n\
             create or replace view public.v with (security_invoker = on) as select 1 as x;\n",
        ),
    ];
    let live = [
        (RuleId::LiveFkWithoutIndex, ObjectKind::Table, "public.a"),
        (RuleId::LiveRlsDisabled, ObjectKind::Table, "public.old"),
        (
            RuleId::LiveFunctionSearchPath,
            ObjectKind::Function,
            "public.f",
        ),
        (
            RuleId::LiveSecurityDefinerView,
            ObjectKind::View,
            "public.v",
        ),
        (
            RuleId::LiveTableWithoutPrimaryKey,
            ObjectKind::Table,
            "public.made_in_do",
        ),
    ]
    .map(|(rule, kind, object)| LiveFinding {
        rule,
        kind,
        object: object.to_owned(),
        message: format!("{object}: found by the catalog check"),
    });
    let mut config = Config::default();
    config.set("live-fk-without-index", "error").unwrap();
    let report = lint_live(&input(&files, &[APPLIED]), &config, &live);
    snapshot_report("live_findings_across_files", &report);
}
