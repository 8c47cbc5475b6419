//! The pair of schemas `bench diff` compares: A, a generated app schema in `public`
//! (tables with columns of several types, identity keys, foreign keys, checks,
//! indexes plain, partial and unique, row level security with policies, enums,
//! functions, a trigger function and triggers, views with `security_invoker`,
//! comments), and B, A with a set of changes of every common kind (columns added,
//! dropped, retyped, made NOT NULL, defaults changed, indexes added, policies added
//! and changed, function bodies changed, views changed, an enum value added, a new
//! enum and table, a table dropped with what hangs on it, RLS forced, comments).
//!
//! Everything is in `public`, the one schema every tool compared reads.

/// Tables of A that have each kind of object, by `i % k == r`.
fn has_trigger(i: usize) -> bool {
    i.is_multiple_of(5)
}
fn has_function(i: usize) -> bool {
    i.is_multiple_of(10)
}
fn has_view(i: usize) -> bool {
    i.is_multiple_of(20)
}
fn has_code_key(i: usize) -> bool {
    i.is_multiple_of(3)
}

/// A's SQL: `n` tables (at least 2) and what hangs on them.
pub(crate) fn schema_a(n: usize) -> String {
    let mut sql = String::from(
        "create type public.status as enum ('active', 'archived');\n\
         create type public.priority as enum ('low', 'medium', 'high');\n\
         create function public.touch() returns trigger language plpgsql as $$\n\
         begin\n  new.updated_at := now();\n  return new;\nend\n$$;\n",
    );
    for i in 1..=n.max(2) {
        let parent = if i > 1 {
            format!(
                "  parent_id bigint references public.t_{} (id) on delete set null,\n",
                i - 1
            )
        } else {
            String::new()
        };
        sql.push_str(&format!(
            "create table public.t_{i} (\n  \
               id bigint generated always as identity primary key,\n\
             {parent}  \
               name text not null,\n  \
               code varchar(32) not null default '',\n  \
               amount numeric(12,2) not null default 0,\n  \
               flags integer not null default 0 check (flags >= 0),\n  \
               status public.status not null default 'active',\n  \
               priority public.priority,\n  \
               tags text[] not null default '{{}}',\n  \
               payload jsonb,\n  \
               created_at timestamptz not null default now(),\n  \
               updated_at timestamptz\n\
             );\n\
             create index t_{i}_created_at_idx on public.t_{i} (created_at);\n\
             alter table public.t_{i} enable row level security;\n\
             create policy t_{i}_read on public.t_{i} for select using (status <> 'archived');\n\
             comment on table public.t_{i} is 'table {i}';\n"
        ));
        if i > 1 {
            sql.push_str(&format!(
                "create index t_{i}_parent_id_idx on public.t_{i} (parent_id);\n"
            ));
        }
        if has_code_key(i) {
            sql.push_str(&format!(
                "create unique index t_{i}_code_key on public.t_{i} (code) where code <> '';\n"
            ));
        }
        if has_trigger(i) {
            sql.push_str(&format!(
                "create trigger t_{i}_touch before update on public.t_{i} \
                 for each row execute function public.touch();\n"
            ));
        }
        if has_function(i) {
            sql.push_str(&format!(
                "create function public.name_of_{i}(p_id bigint) returns text \
                 language sql stable as $$ select name from public.t_{i} where id = p_id $$;\n"
            ));
        }
        if has_view(i) {
            sql.push_str(&format!(
                "create view public.v_{i} with (security_invoker = on) as \
                 select id, name, status from public.t_{i} where status = 'active';\n"
            ));
        }
    }
    sql
}

/// The statements that make B out of A (`n` as given to [`schema_a`]), each one
/// change.
pub(crate) fn changes(n: usize) -> Vec<String> {
    let n = n.max(2);
    let mut out = vec![
        "alter type public.status add value 'deleted';".to_owned(),
        "create type public.kind as enum ('internal', 'external');".to_owned(),
        "create table public.t_new (\n  \
           id bigint generated always as identity primary key,\n  \
           t_1_id bigint not null references public.t_1 (id) on delete cascade,\n  \
           kind public.kind not null default 'internal',\n  \
           label text\n\
         );"
        .to_owned(),
        "create index t_new_t_1_id_idx on public.t_new (t_1_id);".to_owned(),
        "alter table public.t_new enable row level security;".to_owned(),
        "create policy t_new_read on public.t_new for select using (kind = 'external');".to_owned(),
        "create or replace function public.touch() returns trigger language plpgsql as $$\n\
         begin\n  new.updated_at := clock_timestamp();\n  return new;\nend\n$$;"
            .to_owned(),
    ];
    // The last table goes, with the view and the function over it.
    if has_view(n) {
        out.push(format!("drop view public.v_{n};"));
    }
    if has_function(n) {
        out.push(format!("drop function public.name_of_{n}(bigint);"));
    }
    out.push(format!("drop table public.t_{n};"));
    for i in 1..n {
        let t = format!("public.t_{i}");
        if i % 10 == 1 {
            out.push(format!("alter table {t} add column note text;"));
        }
        if i % 15 == 2 {
            out.push(format!("alter table {t} drop column tags;"));
        }
        if i % 20 == 3 {
            out.push(format!("alter table {t} alter column flags type bigint;"));
        }
        if i % 16 == 6 {
            out.push(format!(
                "alter table {t} alter column payload set not null;"
            ));
        }
        if i % 18 == 7 {
            out.push(format!(
                "alter table {t} alter column amount set default 1;"
            ));
        }
        if i % 12 == 4 {
            out.push(format!("create index t_{i}_name_idx on {t} (name);"));
        }
        if i % 25 == 5 {
            out.push(format!(
                "create policy t_{i}_insert on {t} for insert with check (flags >= 0);"
            ));
        }
        if i % 50 == 7 {
            out.push(format!(
                "alter policy t_{i}_read on {t} using (status = 'active');"
            ));
        }
        if i % 45 == 8 {
            out.push(format!("alter table {t} force row level security;"));
        }
        if i % 35 == 9 {
            out.push(format!("comment on table {t} is 'table {i}, renamed';"));
        }
        if has_function(i) && i.is_multiple_of(30) {
            out.push(format!(
                "create or replace function public.name_of_{i}(p_id bigint) returns text \
                 language sql stable as $$ select upper(name) from public.t_{i} where id = p_id $$;"
            ));
        }
        if has_view(i) && i.is_multiple_of(40) {
            out.push(format!(
                "create or replace view public.v_{i} with (security_invoker = on) as \
                 select id, name, status, created_at from public.t_{i} where status = 'active';"
            ));
        }
    }
    out
}

/// B's SQL: A's, then the changes.
pub(crate) fn schema_b(n: usize) -> String {
    let mut sql = schema_a(n);
    for change in changes(n) {
        sql.push_str(&change);
        sql.push('\n');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_change_is_there_at_the_default_size() {
        let all = changes(200).join("\n");
        for what in [
            "add value",
            "add column",
            "drop column",
            "type bigint",
            "set not null",
            "set default",
            "create index",
            "create policy",
            "alter policy",
            "force row level security",
            "comment on table",
            "create or replace function public.name_of",
            "create or replace view",
            "drop view",
            "drop function",
            "drop table",
            "create type public.kind",
        ] {
            assert!(all.contains(what), "no {what} among the changes");
        }
    }

    #[test]
    fn small_sizes_still_make_a_pair() {
        assert!(schema_a(1).contains("public.t_2 "));
        assert!(changes(2).iter().any(|c| c == "drop table public.t_2;"));
    }
}
