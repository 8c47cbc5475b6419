//! The generated migrations every bench applies, as `(file name, SQL)`: shared by the
//! bench (`apply::Workload`) and by `build.rs`, which writes the same files for
//! `embed_migrations!`, so that the embedded sets are the very workload the peers
//! bench hands the other tools. Plain `std` only: `build.rs` includes this file.

/// The most migrations [`files`] generates: one a minute, all in January 2025.
pub(crate) const MAX: usize = 31 * 1440;

/// `YYYYMMDDhhmmss` for `minutes` after 2025-01-01 00:00:00 (less than [`MAX`]), as
/// `db new` writes versions.
pub(crate) fn version(minutes: usize) -> String {
    assert!(
        minutes < MAX,
        "the bench generates at most {MAX} migrations"
    );
    let (day, rest) = (minutes / 1440, minutes % 1440);
    format!("202501{:02}{:02}{:02}00", day + 1, rest / 60, rest % 60)
}

/// `n` small migrations in the Supabase CLI's `<14 digits>_<name>.sql` style, one
/// minute apart from 2025-01-01 00:00:00: mostly a table with an index, row level
/// security and a comment; every fourth alters the table before it. Also returns how
/// many tables they create in `public`.
pub(crate) fn files(n: usize) -> (Vec<(String, String)>, i64) {
    let mut files = Vec::with_capacity(n);
    let mut tables = 0;
    for i in 1..=n {
        let version = version(i - 1);
        files.push(if i % 4 == 0 {
            let t = i - 1;
            (
                format!("{version}_alter_t_{t}.sql"),
                format!(
                    "-- Notes for t_{t}, and an owner.\n\
                     alter table public.t_{t} add column if not exists note text;\n\
                     alter table public.t_{t} add column if not exists owner_id bigint references public.t_1 (id);\n\
                     create index if not exists t_{t}_owner_id_idx on public.t_{t} (owner_id);\n\
                     comment on column public.t_{t}.note is 'free text';\n"
                ),
            )
        } else {
            tables += 1;
            (
                format!("{version}_create_t_{i}.sql"),
                format!(
                    "-- Table {i}.\n\
                     create table if not exists public.t_{i} (\n    \
                         id bigint generated always as identity primary key,\n    \
                         name text not null,\n    \
                         created_at timestamptz not null default now()\n\
                     );\n\
                     create index if not exists t_{i}_created_at_idx on public.t_{i} (created_at);\n\
                     alter table public.t_{i} enable row level security;\n\
                     comment on table public.t_{i} is 'bench table {i}';\n"
                ),
            )
        });
    }
    (files, tables)
}
