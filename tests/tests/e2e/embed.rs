//! Embedded migrations follow their files: adding, editing or removing a migration
//! rebuilds a crate that embeds them, symbolic links are followed as
//! `Source::from_dir` follows them, and a dangling one or a bad file fails the build,
//! naming it. Builds small crates with cargo and runs them. A set embedded in this
//! binary boots with nothing to do in one round trip; a file edited after it was
//! applied is refused after the rebuild, though the boot no longer reads the files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use plover::Migrator;
use plover_tests::{TestDatabase, workspace_root};

use crate::engine::RoundTripProxy;

/// A crate of its own in target/e2e that embeds its `migrations/` directory (its
/// `build.rs` makes adding or removing a file rebuild it), built into target/e2e.
struct EmbedCrate {
    dir: tempfile::TempDir,
    target: PathBuf,
}

impl EmbedCrate {
    /// `main.rs` is the crate's `src/main.rs`; `dependencies` are added to plover's.
    fn new(main: &str, dependencies: &str) -> Result<EmbedCrate> {
        let root = workspace_root();
        let target = root.join("target").join("e2e");
        std::fs::create_dir_all(&target)?;
        let dir = tempfile::Builder::new()
            .prefix("embed-check-")
            .tempdir_in(&target)?;
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!(
                "[package]\nname = \"embed-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
                 [dependencies]\nplover = {{ path = {:?} }}\n{dependencies}\n[workspace]\n",
                root.join("crates/plover")
            ),
        )?;
        // The workspace's lock file, so the build reuses the versions already built.
        std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock"))?;
        std::fs::write(
            dir.path().join("build.rs"),
            "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
        )?;
        std::fs::create_dir_all(dir.path().join("src"))?;
        std::fs::write(dir.path().join("src/main.rs"), main)?;
        std::fs::create_dir_all(dir.path().join("migrations"))?;
        Ok(EmbedCrate { dir, target })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn migrations(&self) -> PathBuf {
        self.path().join("migrations")
    }

    /// `cargo run`: what the program printed, or the build's or the run's errors.
    fn run(&self, vars: &[(&str, &str)]) -> Result<String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(self.path())
            .args(["run", "--quiet", "--offline"])
            .env("CARGO_TARGET_DIR", &self.target)
            .envs(vars.iter().copied())
            .output()
            .context("running cargo")?;
        if !out.status.success() {
            bail!(
                "cargo run failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

#[test]
fn adding_editing_and_removing_a_migration_rebuilds_the_embedding_crate() -> Result<()> {
    let krate = EmbedCrate::new(
        "static M: plover::Embedded = plover::embed_migrations!(\"$CARGO_MANIFEST_DIR/migrations\");\n\
         fn main() {\n\
             match M.load() {\n\
                 Ok(s) => for m in s.migrations() { println!(\"{} {}\", m.version(), m.checksum()); },\n\
                 Err(e) => println!(\"error: {e}\"),\n\
             }\n\
         }\n",
        "",
    )?;
    let dir = krate.path();
    let migrations = krate.migrations();
    std::fs::write(migrations.join("1_a.sql"), "create table a (id int);\n")?;

    let first = krate.run(&[])?;
    assert_eq!(first.lines().count(), 1, "{first}");

    std::fs::write(migrations.join("2_b.sql"), "create table b (id int);\n")?;
    let added = krate.run(&[])?;
    assert_eq!(
        added.lines().count(),
        2,
        "adding a file must rebuild: {added}"
    );

    std::fs::write(migrations.join("1_a.sql"), "create table a (id bigint);\n")?;
    let edited = krate.run(&[])?;
    assert_eq!(edited.lines().count(), 2);
    assert_ne!(
        edited.lines().next(),
        added.lines().next(),
        "editing a file must rebuild"
    );

    std::fs::remove_file(migrations.join("2_b.sql"))?;
    let removed = krate.run(&[])?;
    assert_eq!(
        removed.lines().count(),
        1,
        "removing a file must rebuild: {removed}"
    );

    // A symbolic link to a file is embedded under the link's name, exactly as
    // Source::from_dir reads the directory.
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared)?;
    std::fs::write(shared.join("b.sql"), "create table b (id int);\n")?;
    std::os::unix::fs::symlink(shared.join("b.sql"), migrations.join("2_b.sql"))?;
    let linked = krate.run(&[])?;
    let on_disk: String = plover::Source::from_dir(&migrations)?
        .migrations()
        .iter()
        .map(|m| format!("{} {}\n", m.version(), m.checksum()))
        .collect();
    assert_eq!(
        linked.lines().count(),
        2,
        "the link must be embedded: {linked}"
    );
    assert_eq!(linked, on_disk, "the embed and from_dir must see one set");

    // A link that leads nowhere fails the build, naming the link, with the message
    // Source::from_dir gives.
    let gone = migrations.join("3_gone.sql");
    std::os::unix::fs::symlink(dir.join("gone.sql"), &gone)?;
    let failed = krate
        .run(&[])
        .expect_err("a dangling link must fail the build");
    let text = failed.to_string();
    assert!(
        text.contains(&format!(
            "{}: symbolic link to {} leads nowhere",
            gone.display(),
            dir.join("gone.sql").display()
        )),
        "{text}"
    );
    std::fs::remove_file(&gone)?;
    std::fs::remove_file(migrations.join("2_b.sql"))?;

    // A bad name added later fails the build, naming the file as a load would.
    std::fs::write(migrations.join("3oops.sql"), "")?;
    let failed = krate.run(&[]).expect_err("a bad name must fail the build");
    let text = failed.to_string();
    assert!(
        text.contains("migrations/3oops.sql: file name does not match <version>_<name>.sql"),
        "{text}"
    );
    std::fs::remove_file(migrations.join("3oops.sql"))?;

    // So does a second file with a version already taken.
    std::fs::write(migrations.join("01_again.sql"), "select 1;\n")?;
    let failed = krate
        .run(&[])
        .expect_err("a shared version must fail the build");
    let text = failed.to_string();
    assert!(
        text.contains("migrations/01_again.sql and migrations/1_a.sql share version 1"),
        "{text}"
    );
    Ok(())
}

/// The files the plover crate's unit tests embed: a byte-order mark, a
/// no-transaction directive, a non-ASCII name, a symbolic link, a skipped file.
static FIXTURE: plover::Embedded =
    plover::embed_migrations!("$CARGO_MANIFEST_DIR/../crates/plover/fixtures/embedded");

/// The boot of an app whose migrations are all applied: one question, answered from
/// the digest the macro computed at build time, and no lock.
#[tokio::test]
async fn an_embedded_set_with_nothing_to_do_boots_in_one_round_trip() -> Result<()> {
    let db = TestDatabase::create().await?;
    let first = Migrator::new(FIXTURE.load()?)
        .app("embedded")
        .run(&mut db.client().await?)
        .await?;
    assert_eq!(first.applied.len(), 6);
    // Held by another session: a run that took the lock would time out.
    let holder = db.client().await?;
    let database: String = holder
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&plover::lock_key(&database, "embedded")],
        )
        .await?;
    let proxy = RoundTripProxy::start(db.url()).await?;
    let mut client = proxy.client().await?;
    let before = proxy.round_trips();
    let report = Migrator::new(FIXTURE.load()?)
        .app("embedded")
        .lock_wait(Duration::from_millis(200))
        .run(&mut client)
        .await?;
    assert_eq!(proxy.round_trips() - before, 1);
    assert!(report.applied.is_empty());
    assert_eq!(report.already_applied, 6);
    assert_eq!(report.version, Some(10));
    Ok(())
}

/// The one-query boot trusts the digest built into the binary: a file edited after
/// it was applied changes it, so the rebuilt app reads the history and refuses the
/// file as modified, running nothing.
#[tokio::test]
async fn an_embedded_file_edited_after_it_was_applied_is_refused_after_a_rebuild() -> Result<()> {
    let db = TestDatabase::create().await?;
    let krate = EmbedCrate::new(
        "static M: plover::Embedded = plover::embed_migrations!(\"$CARGO_MANIFEST_DIR/migrations\");\n\
         #[tokio::main(flavor = \"current_thread\")]\n\
         async fn main() -> Result<(), Box<dyn std::error::Error>> {\n\
             let url = std::env::var(\"DATABASE_URL\")?;\n\
             let migrator = plover::Migrator::new(M.load()?).app(\"embed_check\");\n\
             match migrator.run_url(&url).await {\n\
                 Ok(r) => println!(\"applied {} already {}\", r.applied.len(), r.already_applied),\n\
                 Err(e) => println!(\"error: {e}\"),\n\
             }\n\
             Ok(())\n\
         }\n",
        "tokio = { version = \"1\", features = [\"rt\", \"macros\"] }",
    )?;
    let migrations = krate.migrations();
    std::fs::write(migrations.join("1_a.sql"), "create table a (id int);\n")?;
    let env = [("DATABASE_URL", db.url())];

    assert_eq!(krate.run(&env)?, "applied 1 already 0\n");
    assert_eq!(krate.run(&env)?, "applied 0 already 1\n");

    std::fs::write(migrations.join("1_a.sql"), "create table a (id bigint);\n")?;
    let edited = krate.run(&env)?;
    assert!(
        edited.starts_with("error: ")
            && edited.contains("migrations/1_a.sql: modified after it was applied"),
        "{edited}"
    );
    let client = db.client().await?;
    let kind: String = client
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
              WHERE attrelid = 'public.a'::regclass AND attname = 'id'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(kind, "integer", "the edited file must not run");
    Ok(())
}
