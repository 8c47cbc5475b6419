//! `cargo xtask db test`: pgTAP files of supabase/tests on a freshly migrated
//! database, TAP out, exit code for CI; against the test server (pgTAP installed
//! there: Debian/Ubuntu `postgresql-<major>-pgtap`).

use anyhow::Result;
use plover_tests::{Workdir, workspace_root};

/// A project with the repository's pgTAP suite (supabase/tests) copied in.
fn project_with_suite() -> Result<Workdir> {
    let w = Workdir::new()?;
    let from = workspace_root().join("supabase/tests/database");
    let to = w.path().join("supabase/tests/database");
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(w)
}

#[test]
fn the_example_suite_passes_on_a_fresh_database_with_tap_output() -> Result<()> {
    let w = project_with_suite()?;
    let run = w.db(&["test"], &[], None)?;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("1..5\n"), "{run}");
    assert!(
        run.stdout
            .contains("ok 3 - Ada cannot add a category for Bob"),
        "{run}"
    );
    assert!(!run.stdout.contains("not ok"), "{run}");
    assert!(
        run.stdout.contains("# files=2 tests=12 passed=12 failed=0"),
        "{run}"
    );
    Ok(())
}

#[test]
fn a_failing_test_an_unmet_plan_and_an_sql_error_each_fail_the_run() -> Result<()> {
    let w = project_with_suite()?;
    let dir = w.path().join("supabase/tests");
    std::fs::write(
        dir.join("a_failing.sql"),
        "begin;\nselect plan(2);\nselect ok(true, 'fine');\nselect is(1, 2, 'one is two');\nselect * from finish();\nrollback;\n",
    )?;
    std::fs::write(
        dir.join("b_short.sql"),
        "begin;\nselect plan(3);\nselect ok(true, 'only one');\nrollback;\n",
    )?;
    std::fs::write(
        dir.join("c_error.sql"),
        "begin;\nselect plan(1);\nselect * from no_such_table;\nrollback;\n",
    )?;
    let run = w.db(&["test"], &[], None)?;
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("not ok 2 - one is two"), "{run}");
    assert!(
        run.stdout.contains("# planned 3 test(s) but ran 1"),
        "{run}"
    );
    assert!(run.stdout.contains("no_such_table"), "{run}");
    for file in ["a_failing.sql", "b_short.sql", "c_error.sql"] {
        let failed = run
            .stdout
            .lines()
            .find(|l| l.starts_with("# failed: "))
            .unwrap_or_default();
        assert!(
            failed.contains(file),
            "{file} is not listed as failed: {run}"
        );
    }
    assert!(
        !run.stdout
            .lines()
            .any(|l| l.starts_with("# failed: ") && l.contains("rls.test.sql")),
        "{run}"
    );

    // One file given: only it runs.
    let run = w.db(&["test", "supabase/tests/database/rls.test.sql"], &[], None)?;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("# files=1 tests=5"), "{run}");
    Ok(())
}

#[test]
fn without_tests_it_says_where_to_write_them() -> Result<()> {
    let w = Workdir::new()?;
    let run = w.db(&["test"], &[], None)?;
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("no pgTAP files (*.sql) under"), "{run}");
    assert!(
        run.stderr.contains("supabase/tests/database/rls.test.sql"),
        "{run}"
    );
    Ok(())
}

#[test]
fn with_docker_the_suite_runs_on_the_local_image() -> Result<()> {
    if !plover_tests::docker_tests_run()? {
        return Ok(());
    }
    let w = project_with_suite()?;
    // A state directory of its own: its container is this test's, removed below.
    let state = tempfile::tempdir()?;
    let state_dir = state.path().to_string_lossy().into_owned();
    let run = w.db(
        &["test", "--docker"],
        &[("PLOVER_STATE_DIR", &state_dir)],
        None,
    );
    let stopped = std::process::Command::new(plover_tests::binary("xtask")?)
        .args(["test-server", "stop"])
        .env("PLOVER_STATE_DIR", &state_dir)
        .output();
    let run = run?;
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr
            .contains("# test server: docker plover-postgres:"),
        "{run}"
    );
    assert!(
        run.stdout.contains("# files=2 tests=12 passed=12 failed=0"),
        "{run}"
    );
    assert!(stopped?.status.success(), "test-server stop failed");
    Ok(())
}
