//! The statements inside `DO` blocks and function bodies: checked like the file's,
//! at their own line and column, saying where they are; a function body judged by
//! the `Scope::Always` rules only and leaving the model alone.

use super::*;

/// (rule, line, column, inside) of every finding.
fn places(report: &Report) -> Vec<(&'static str, usize, usize, Option<&str>)> {
    report
        .findings
        .iter()
        .map(|f| (f.rule.id(), f.line, f.column, f.inside.as_deref()))
        .collect()
}

const DO: Option<&str> = Some("DO block");

#[test]
fn a_do_block_is_checked_at_the_lines_of_its_statements() {
    let change = "-- an index and a foreign key on an existing table\n\
                  do $$\n\
                  begin\n\
                  \x20 create index if not exists t_name on public.t (name);\n\
                  \x20 alter table public.t add constraint t_self foreign key (id) references public.t (id);\n\
                  end $$;\n";
    let report = run(T, change);
    assert_eq!(
        places(&report),
        [
            ("index-without-concurrently", 4, 3, DO),
            ("constraint-without-not-valid", 5, 28, DO),
        ]
    );
    assert_eq!((report.bodies, report.body_statements), (1, 2));
    let human = render_human(&report, false);
    assert!(
        human.contains(
            "20250102000000_change.sql:4:3: error[index-without-concurrently]: CREATE INDEX t_name on the existing table public.t blocks writes while it builds (inside DO block)"
        ),
        "{human}"
    );
    assert!(render_json(&report).contains("\"inside\": \"DO block\""));
}

#[test]
fn every_branch_loop_and_handler_is_walked() {
    let change = "do $$\n\
                  declare n int;\n\
                  begin\n\
                  \x20 if n is null then\n\
                  \x20   perform 1;\n\
                  \x20 elsif n > 1 then truncate public.t;\n\
                  \x20 else\n\
                  \x20   loop\n\
                  \x20     select count(*) into n from public.t;\n\
                  \x20     delete from public.t;\n\
                  \x20   end loop;\n\
                  \x20 end if;\n\
                  \x20 begin\n\
                  \x20   update public.t set name = 'x';\n\
                  \x20 exception when others then\n\
                  \x20   drop table public.t;\n\
                  \x20 end;\n\
                  end $$;\n";
    let report = run(T, change);
    assert_eq!(
        places(&report),
        [
            ("truncate", 6, 29, DO),
            ("mutation-without-where", 10, 7, DO),
            ("mutation-without-where", 14, 5, DO),
            ("drop-table", 16, 5, DO),
        ]
    );
    assert_eq!(report.body_statements, 6);
}

#[test]
fn execute_of_a_constant_string_is_a_statement() {
    let change = "do $$ begin\n\
                  \x20 execute 'create index t_name on public.t (name)';\n\
                  \x20 execute 'comment on table public.t is ''x'''; execute 'drop table public.t';\n\
                  \x20 execute $q$alter table public.t add constraint c check (id > 0)$q$;\n\
                  \x20 execute 'drop ' || 'table public.t';\n\
                  \x20 execute format('drop table %I', 't');\n\
                  end $$;\n";
    let report = run(T, change);
    assert_eq!(
        places(&report),
        [
            // The string holds the SQL as written: the exact place.
            ("index-without-concurrently", 2, 12, DO),
            ("drop-table", 3, 58, DO),
            ("constraint-without-not-valid", 4, 39, DO),
            // Joined strings: the place of the expression.
            ("drop-table", 5, 11, DO),
        ]
    );
    assert_eq!(report.dynamic_skipped, 1);
}

#[test]
fn a_table_created_in_a_do_block_is_known_afterwards() {
    let create = "do $$\n\
                  begin\n\
                  \x20 if not exists (select 1 from pg_tables where tablename = 'x') then\n\
                  \x20   create table public.x (id bigint primary key);\n\
                  \x20 end if;\n\
                  end $$;\n";
    // Created in the change: no lock warnings on it; without RLS it is reported there.
    let report = run(T, &format!("{create}create index x_id on public.x (id);\n"));
    assert_eq!(places(&report), [("table-without-rls", 4, 5, DO)]);
    // RLS enabled after the block: nothing to report.
    let report = run(
        T,
        &format!("{create}alter table public.x enable row level security;\n"),
    );
    assert_eq!(places(&report), []);
}

#[test]
fn a_policy_trusting_user_metadata_in_a_do_block_is_reported() {
    let change = "do $$\n\
                  begin\n\
                  \x20 drop policy if exists admins on public.t;\n\
                  \x20 create policy admins on public.t for select to authenticated\n\
                  \x20   using (((select auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin');\n\
                  end $$;\n";
    let report = run(T, change);
    assert_eq!(places(&report), [("policy-user-metadata", 4, 3, DO)]);
    assert!(report.findings[0].message.contains("policy \"admins\""));
}

#[test]
fn a_function_body_is_judged_when_called_and_leaves_the_model_alone() {
    let change = "create or replace function public.reset_t() returns void\n\
                  language plpgsql as $$\n\
                  begin\n\
                  \x20 create index t_name on public.t (name);\n\
                  \x20 delete from public.t;\n\
                  \x20 create table public.y (id bigint);\n\
                  \x20 create policy admins on public.t for select to authenticated\n\
                  \x20   using ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin');\n\
                  end $$;\n\
                  create index y_id on public.y (id);\n";
    let report = run(T, change);
    let inside = Some("function public.reset_t");
    assert_eq!(
        places(&report),
        [
            // Security rules judge what the function does whenever it runs.
            ("policy-user-metadata", 7, 3, inside),
            ("auth-function-per-row", 8, 13, inside),
            // public.y was not created by the migration: it is no new table.
            ("index-without-concurrently", 10, 1, None),
        ]
    );
    // A SQL function's string body too.
    let change = "create or replace function public.open() returns void language sql\n\
                  as 'grant select on public.open to anon';\n";
    let report = run(NO_RLS, change);
    assert_eq!(
        places(&report),
        [("broad-grant", 2, 5, Some("function public.open"))]
    );
}

#[test]
fn ignores_work_inside_a_body_and_before_it() {
    let change = "do $$\n\
                  begin\n\
                  \x20 -- plover:lint-ignore drop-table -- the table is rebuilt below\n\
                  \x20 drop table public.t;\n\
                  \x20 truncate public.t;\n\
                  \x20 drop table if exists public.t;\n\
                  end $$;\n\
                  -- plover:lint-ignore truncate -- emptied on purpose\n\
                  do $$ begin truncate public.t; end $$;\n";
    let report = run(T, change);
    assert_eq!(
        places(&report),
        [("truncate", 5, 12, DO), ("drop-table", 6, 3, DO)]
    );
}

#[test]
fn other_languages_and_broken_bodies() {
    // Not SQL: skipped, no finding.
    let change = "create or replace function public.js() returns void language plv8 as $$\n\
                  \x20 plv8.execute('drop table public.t'); this is not sql;\n\
                  $$;\n\
                  do language plpython3u $$ plpy.execute('drop table public.t') $$;\n";
    assert_eq!(places(&run(T, change)), []);
    // A PL/pgSQL syntax error fails a DO block, and a function while
    // check_function_bodies is on (here the body ends before its END).
    let change = "do $$ begin\n\
                  \x20 if true then raise notice 'x' end if;\n\
                  end $$;\n";
    assert_eq!(places(&run(T, change)), [("syntax-error", 2, 33, DO)]);
    let function = "create or replace function public.f() returns void language plpgsql as $$\n\
                    begin set local work_mem = '1MB'; perform 1 end;\n\
                    $$;\n";
    assert_eq!(
        places(&run(T, function)),
        [("syntax-error", 2, 49, Some("function public.f"))]
    );
    let change = format!("set check_function_bodies = false;\n{function}");
    assert_eq!(places(&run(T, &change)), []);
    // A body of queries only is not compiled (no rule judges them there): its syntax
    // is left to the server.
    let change = "create or replace function public.f() returns void language plpgsql as $$\n\
                  begin perform 1 end;\n\
                  $$;\n";
    assert_eq!(places(&run(T, change)), []);
}
