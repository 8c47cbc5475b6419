//! `db gen types` against a real server: the Rust module it writes for a schema with
//! the common column types, an enum and a view is the one committed in
//! tests/fixtures/gen_types/types.rs (compiled into this crate), and its conversions
//! read real rows; the TypeScript for the example project is pinned as a snapshot.

use anyhow::{Context, Result, bail, ensure};
use plover_tests::gen_types::public::{ItemNames, Items, Mood, MoodRow};
use plover_tests::{LocalServer, Workdir, database, workspace_root};

const SHOP: &str = "create type public.mood as enum ('happy', 'sad');
create table public.items (
    id bigint generated always as identity primary key,
    name text not null,
    count integer,
    ratio double precision not null default 1,
    small smallint,
    ok boolean not null default true,
    data bytea,
    mood public.mood not null default 'happy',
    moods public.mood[],
    tags text[] not null default '{}',
    search tsvector
);
create view public.item_names with (security_invoker = true) as select id, name from public.items;
-- A table whose Rust name is the enum's (as with Prisma's quoted names): MoodRow.
create table public.\"Mood\" (id int primary key, felt public.mood not null);
";

#[tokio::test]
async fn rust_types_are_the_committed_module_and_read_real_rows() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    w.remove_migrations()?;
    std::fs::write(w.migrations().join("20250101000000_shop.sql"), SHOP)?;
    let run = w
        .db(&["gen", "types", "--lang", "rust"], &[], None)?
        .expect(0)?;
    let committed = workspace_root().join("tests/fixtures/gen_types/types.rs");
    if std::env::var_os("PLOVER_UPDATE_GEN_TYPES").is_some() {
        std::fs::write(&committed, &run.stdout)?;
    }
    let expected = std::fs::read_to_string(&committed)
        .with_context(|| format!("reading {}", committed.display()))?;
    assert_eq!(
        run.stdout,
        expected,
        "db gen types --lang rust changed; PLOVER_UPDATE_GEN_TYPES=1 rewrites {}",
        committed.display()
    );
    assert!(
        run.stdout
            .contains("// `search` (pg_catalog.tsvector) has no Rust mapping"),
        "{run}"
    );

    // The committed module reads rows of a database migrated with the same file.
    let (db, url) = database().await?;
    let client = db.client().await?;
    w.db(&["push"], &[("DATABASE_URL", url.as_str())], None)?
        .expect(0)?;
    client
        .batch_execute(
            "insert into public.items (name, count, small, data, mood, moods, tags)
             values ('pen', 3, 7, '\\x0102', 'sad', '{happy,sad}', '{a,b}'),
                    ('cup', null, null, null, 'happy', null, '{}')",
        )
        .await?;
    let rows = client
        .query("select * from public.items order by id", &[])
        .await?;
    let items = rows
        .iter()
        .map(Items::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(items[0].name, "pen");
    assert_eq!((items[0].count, items[0].small), (Some(3), Some(7)));
    assert_eq!(items[0].data.as_deref(), Some(&[1u8, 2][..]));
    assert_eq!(items[0].mood, Mood::Sad);
    assert_eq!(items[0].moods, Some(vec![Mood::Happy, Mood::Sad]));
    assert_eq!(items[0].tags, ["a", "b"]);
    assert!(items[0].ok && items[0].ratio == 1.0);
    assert_eq!((items[1].count, items[1].moods.clone()), (None, None));
    let names = client
        .query("select * from public.item_names order by id", &[])
        .await?;
    let names = names
        .iter()
        .map(ItemNames::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(names[1].name.as_deref(), Some("cup"));
    // The struct renamed beside the enum reads its rows.
    client
        .batch_execute("insert into public.\"Mood\" values (1, 'sad')")
        .await?;
    let row = client
        .query_one("select * from public.\"Mood\"", &[])
        .await?;
    assert_eq!(
        MoodRow::try_from(&row)?,
        MoodRow {
            felt: Mood::Sad,
            id: 1
        }
    );
    Ok(())
}

/// The example project's TypeScript, in the Supabase CLI's shape (checked by hand
/// against the CLI's files in real projects: see the README).
#[tokio::test]
async fn typescript_types_of_the_example_project() -> Result<()> {
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    let run = w
        .db(&["gen", "types", "--lang", "typescript"], &[], None)?
        .expect(0)?;
    insta::assert_snapshot!("gen_types_typescript", run.stdout);
    Ok(())
}

/// `tsc`, or `None` when `PLOVER_SKIP_TSC_TESTS=1`; an error with instructions when it
/// is missing.
fn tsc() -> Result<Option<std::path::PathBuf>> {
    if std::env::var("PLOVER_SKIP_TSC_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: PLOVER_SKIP_TSC_TESTS=1");
        return Ok(None);
    }
    let Some(path) = std::env::var_os("PLOVER_TSC") else {
        bail!(
            "this test needs the TypeScript compiler: run `.ci/tsc-up /tmp/plover-tsc` (npm \
             installs typescript@5.9.3 there) and set PLOVER_TSC to the path it prints; \
             `cargo xtask test` does both when npm exists. On a machine without npm, set \
             PLOVER_SKIP_TSC_TESTS=1"
        );
    };
    Ok(Some(path.into()))
}

/// The helpers an app imports from the generated file (`Tables<"t">`,
/// `TablesInsert`, `TablesUpdate`, `Enums`, the `{ schema }` forms, `Constants`) compile
/// as the Supabase CLI's do, and refuse what they should: tests/fixtures/gen_types/use.ts,
/// compiled by tsc --strict against the types of a project with two schemas.
#[tokio::test]
async fn typescript_helpers_compile_and_refuse_wrong_names() -> Result<()> {
    let Some(tsc) = tsc()? else { return Ok(()) };
    let w = Workdir::new()?;
    let _local = LocalServer::isolate(&w)?;
    w.remove_migrations()?;
    std::fs::write(
        w.migrations().join("20250101000000_shop.sql"),
        "create type public.mood as enum ('happy', 'sad');
create table public.items (
    id bigint generated always as identity primary key,
    name text not null,
    mood public.mood not null default 'happy',
    note text
);
create view public.item_names with (security_invoker = true) as select id, name from public.items;
create schema billing;
create type billing.state as enum ('open', 'paid');
create table billing.invoices (id uuid primary key default gen_random_uuid(), state billing.state not null, total numeric not null);
",
    )?;
    let run = w
        .db(
            &[
                "gen",
                "types",
                "--lang",
                "typescript",
                "--schema",
                "public",
                "--schema",
                "billing",
            ],
            &[],
            None,
        )?
        .expect(0)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("database.types.ts"), &run.stdout)?;
    std::fs::copy(
        workspace_root().join("tests/fixtures/gen_types/use.ts"),
        dir.path().join("use.ts"),
    )?;
    let out = std::process::Command::new(&tsc)
        .current_dir(dir.path())
        .args([
            "--noEmit",
            "--strict",
            "--target",
            "es2020",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
            "use.ts",
        ])
        .output()
        .with_context(|| format!("running {}", tsc.display()))?;
    ensure!(
        out.status.success(),
        "tsc refused the generated types or the helpers' uses:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        run.stdout
    );
    Ok(())
}
