//! The example app, as a process: many replicas booting at once against one empty
//! database, `app migrate`, and the HTTP endpoints on the migrated schema.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};
use plover_tests::{TestDatabase, assert_supabase_history_agrees, binary, strings, workspace_root};

/// A running `app serve`, killed on drop.
struct Replica {
    child: Child,
    addr: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_replica(url: &str) -> Result<Child> {
    Command::new(binary("app")?)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting app")
}

/// Reads the replica's stdout until it says where it listens, or fails with its stderr.
fn wait_listening(mut child: Child) -> Result<Replica> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    match line.trim().strip_prefix("listening on http://") {
        Some(addr) => Ok(Replica {
            addr: addr.to_owned(),
            child,
        }),
        None => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err)?;
            }
            bail!("app did not come up: stdout {line:?}, stderr:\n{err}")
        }
    }
}

/// A minimal HTTP/1.1 request; returns (status, body).
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status line")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn migration_count() -> Result<usize> {
    Ok(
        std::fs::read_dir(workspace_root().join("supabase/migrations"))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))
            })
            .count(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_two_replicas_boot_at_once_and_apply_each_migration_once() -> Result<()> {
    let db = TestDatabase::with_supabase_shim().await?;
    let url = db.url().to_owned();
    let replicas = tokio::task::spawn_blocking(move || -> Result<Vec<Replica>> {
        // Start all 32 before waiting on any, so they race for the lock.
        let children = (0..32)
            .map(|_| spawn_replica(&url))
            .collect::<Result<Vec<_>>>()?;
        children.into_iter().map(wait_listening).collect()
    })
    .await??;
    assert_eq!(replicas.len(), 32);

    let n = migration_count()?;
    let client = db.client().await?;
    let counts = strings(
        &client,
        "SELECT count(*) || ' ' || count(DISTINCT version) FROM plover.migrations WHERE app = 'money_tracker' AND state = 'applied'",
    )
    .await?;
    assert_eq!(counts, [format!("{n} {n}")]);
    assert_supabase_history_agrees(&client).await?;
    let newest = strings(&client, "SELECT max(version)::text FROM plover.migrations").await?;
    for r in &replicas {
        let (status, body) = http(&r.addr, "GET", "/healthz", None)?;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(&format!("\"schema_version\":{}", newest[0])),
            "{body}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn migrate_then_serve_the_money_tracker() -> Result<()> {
    let db = TestDatabase::with_supabase_shim().await?;
    let app = binary("app")?;
    let migrate = |url: &str| -> Result<String> {
        let out = Command::new(&app)
            .arg("migrate")
            .env("DATABASE_URL", url)
            .output()?;
        if !out.status.success() {
            bail!(
                "app migrate failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    };
    let first = migrate(db.url())?;
    assert!(
        first.contains(&format!("applied {} migration", migration_count()?)),
        "{first}"
    );
    let second = migrate(db.url())?;
    assert!(second.contains("applied 0 migrations"), "{second}");

    let client = db.client().await?;
    client
        .batch_execute(&std::fs::read_to_string(
            workspace_root().join("supabase/seed.sql"),
        )?)
        .await?;
    let replica = wait_listening(spawn_replica(db.url())?)?;
    let alice = "11111111-1111-4111-8111-111111111111";
    let category: String = client
        .query_one(
            "SELECT id::text FROM categories WHERE user_id = $1::text::uuid AND kind = 'expense' ORDER BY name LIMIT 1",
            &[&alice],
        )
        .await?
        .get(0);
    let (status, body) = http(
        &replica.addr,
        "POST",
        &format!("/users/{alice}/transactions"),
        Some(&format!(
            r#"{{"category_id":"{category}","amount":"12.50","occurred_on":"2025-03-02","note":"lunch"}}"#
        )),
    )?;
    assert_eq!(status, 201, "{body}");
    let (status, body) = http(
        &replica.addr,
        "GET",
        &format!("/users/{alice}/transactions?month=2025-03"),
        None,
    )?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("lunch") && body.contains("12.50"), "{body}");

    let (status, body) = http(
        &replica.addr,
        "POST",
        &format!("/users/{alice}/transactions"),
        Some(&format!(
            r#"{{"category_id":"{category}","amount":"-3","occurred_on":"2025-03-02","note":null}}"#
        )),
    )?;
    assert_eq!(
        status, 400,
        "a negative amount is the caller's mistake: {body}"
    );
    Ok(())
}

#[test]
fn app_refuses_to_start_without_a_database_url_and_never_prints_a_password() -> Result<()> {
    let out = Command::new(binary("app")?)
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));

    // Nothing listens on port 1: the connection fails, and the error must not leak.
    let out = Command::new(binary("app")?)
        .arg("migrate")
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2secret@127.0.0.1:1/db",
        )
        .output()?;
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("hunter2secret"), "{all}");
    assert!(all.contains("****") || all.contains("127.0.0.1"), "{all}");
    Ok(())
}
