//! Embedded migrations follow their files: adding, editing or removing a migration
//! rebuilds a crate that embeds them, symbolic links are followed as
//! `Source::from_dir` follows them, and a dangling one fails the build. Builds a small
//! crate with cargo and runs it.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use plover_tests::workspace_root;

fn cargo_run(dir: &Path, target: &Path) -> Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .args(["run", "--quiet", "--offline"])
        .env("CARGO_TARGET_DIR", target)
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

#[test]
fn adding_editing_and_removing_a_migration_rebuilds_the_embedding_crate() -> Result<()> {
    let root = workspace_root();
    let target = root.join("target").join("e2e");
    std::fs::create_dir_all(&target)?;
    let krate = tempfile::Builder::new()
        .prefix("embed-check-")
        .tempdir_in(&target)?;
    let dir = krate.path();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"embed-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             [dependencies]\nplover = {{ path = {:?} }}\n[workspace]\n",
            root.join("crates/plover")
        ),
    )?;
    // The workspace's lock file, so the build reuses the versions already built.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    std::fs::write(
        dir.join("build.rs"),
        "fn main() { println!(\"cargo:rerun-if-changed=migrations\"); }\n",
    )?;
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("src/main.rs"),
        "static M: plover::Embedded = plover::embed_migrations!(\"$CARGO_MANIFEST_DIR/migrations\");\n\
         fn main() {\n\
             match M.load() {\n\
                 Ok(s) => for m in s.migrations() { println!(\"{} {}\", m.version(), m.checksum()); },\n\
                 Err(e) => println!(\"error: {e}\"),\n\
             }\n\
         }\n",
    )?;
    let migrations = dir.join("migrations");
    std::fs::create_dir_all(&migrations)?;
    std::fs::write(migrations.join("1_a.sql"), "create table a (id int);\n")?;

    let first = cargo_run(dir, &target)?;
    assert_eq!(first.lines().count(), 1, "{first}");

    std::fs::write(migrations.join("2_b.sql"), "create table b (id int);\n")?;
    let added = cargo_run(dir, &target)?;
    assert_eq!(
        added.lines().count(),
        2,
        "adding a file must rebuild: {added}"
    );

    std::fs::write(migrations.join("1_a.sql"), "create table a (id bigint);\n")?;
    let edited = cargo_run(dir, &target)?;
    assert_eq!(edited.lines().count(), 2);
    assert_ne!(
        edited.lines().next(),
        added.lines().next(),
        "editing a file must rebuild"
    );

    std::fs::remove_file(migrations.join("2_b.sql"))?;
    let removed = cargo_run(dir, &target)?;
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
    let linked = cargo_run(dir, &target)?;
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

    // A link that leads nowhere fails the build, naming the link.
    let gone = migrations.join("3_gone.sql");
    std::os::unix::fs::symlink(dir.join("gone.sql"), &gone)?;
    let failed = cargo_run(dir, &target).expect_err("a dangling link must fail the build");
    let text = failed.to_string();
    assert!(
        text.contains(&format!(
            "\"{}\" is neither a file nor a directory",
            gone.display()
        )),
        "{text}"
    );
    std::fs::remove_file(&gone)?;
    std::fs::remove_file(migrations.join("2_b.sql"))?;

    // A bad name added later fails loudly at load, naming the file.
    std::fs::write(migrations.join("3oops.sql"), "")?;
    let bad = cargo_run(dir, &target)?;
    assert!(bad.contains("3oops.sql: file name does not match"), "{bad}");
    Ok(())
}
