//! The Supabase baseline (`plover::testing::SUPABASE_SHIM`) on a real server: what real
//! projects' migrations expect of a Supabase database runs on a pool clone and on an
//! empty database with the baseline; the baseline is idempotent, fills a second
//! database of the cluster, upgrades a v1 database, and leaves a real Supabase database
//! alone; RLS on `storage.objects` works for users through `plover::testing`.

use anyhow::{Result, ensure};
use plover::testing::{self, SHIM_VERSION, Shim, TestDatabase};
use plover_tests::{Dir, snapshot, strings};

/// What real projects' first migrations do on Supabase, and the baseline must take.
const PROJECT: &str = r#"
-- pgcrypto's functions, unqualified: Supabase has `extensions` on the search path.
create table public.invites (
  id uuid primary key default gen_random_uuid(),
  token text not null default encode(gen_random_bytes(16), 'hex'),
  owner_id uuid references auth.users (id) on delete cascade default auth.uid()
);
alter table public.invites enable row level security;
create policy "owners read their invites" on public.invites
  for select to authenticated using (owner_id = auth.uid());
create policy "owners add invites" on public.invites
  for insert to authenticated with check (owner_id = auth.uid());

-- A custom access token hook: granted to Supabase Auth's role.
create function public.custom_access_token_hook(event jsonb)
  returns jsonb language sql stable as $$ select event $$;
grant usage on schema public to supabase_auth_admin;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
revoke execute on function public.custom_access_token_hook(jsonb) from authenticated, anon, public;

-- A profile row for each new user, by a trigger on auth.users.
create table public.profiles (id uuid primary key references auth.users (id) on delete cascade, email text);
create function public.handle_new_user() returns trigger
  language plpgsql security definer set search_path = '' as $$
begin
  insert into public.profiles (id, email) values (new.id, new.email);
  return new;
end $$;
create trigger on_auth_user_created after insert on auth.users
  for each row execute function public.handle_new_user();

-- Realtime.
alter publication supabase_realtime add table public.profiles;

-- Storage: a bucket, and policies by folder.
insert into storage.buckets (id, name, public) values ('avatars', 'avatars', false);
create policy "users read their folder" on storage.objects for select to authenticated
  using (bucket_id = 'avatars' and (storage.foldername(name))[1] = auth.uid()::text);
create policy "users upload to their folder" on storage.objects for insert to authenticated
  with check (bucket_id = 'avatars' and (storage.foldername(name))[1] = (select auth.uid()::text));
"#;

fn project() -> Result<Dir> {
    Dir::with(&[("20240101000000_init.sql", PROJECT)])
}

/// The project's migrations took: checked on a new session of `db`.
async fn check_project(db: &TestDatabase) -> Result<()> {
    let client = db.client().await?;
    // New sessions get the search path, so pgcrypto's functions resolve unqualified.
    assert_eq!(
        strings(&client, "SHOW search_path").await?,
        [r#""$user", public, extensions"#]
    );
    assert_eq!(
        strings(&client, "SELECT length(gen_random_bytes(16))::text").await?,
        ["16"]
    );
    assert_eq!(
        strings(
            &client,
            "SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        )
        .await?,
        ["profiles"]
    );
    let alice = db.create_user("alice@example.com").await?;
    let bob = db.create_user("bob@example.com").await?;
    // The trigger on auth.users ran.
    assert_eq!(
        strings(&client, "SELECT email FROM public.profiles ORDER BY email").await?,
        ["alice@example.com", "bob@example.com"]
    );

    // Storage policies, as users.
    let as_alice = db.as_user(&alice).await?;
    as_alice
        .execute(
            "INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', $1 || '/me.png')",
            &[&alice.id],
        )
        .await?;
    let refused = as_alice
        .execute(
            "INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', $1 || '/me.png')",
            &[&bob.id],
        )
        .await;
    ensure!(refused.is_err(), "alice must not upload into bob's folder");
    let as_bob = db.as_user(&bob).await?;
    assert_eq!(
        strings(&as_bob, "SELECT count(*)::text FROM storage.objects").await?,
        ["0"]
    );
    assert_eq!(
        strings(
            &as_alice,
            "SELECT storage.filename(name) || ' ' || storage.extension(name) FROM storage.objects"
        )
        .await?,
        ["me.png png"]
    );
    let anon = db.as_anon().await?;
    assert_eq!(
        strings(&anon, "SELECT count(*)::text FROM storage.objects").await?,
        ["0"]
    );
    let service = db.as_service_role().await?;
    assert_eq!(
        strings(&service, "SELECT count(*)::text FROM storage.objects").await?,
        ["1"]
    );
    // The default of invites.token calls gen_random_bytes as the user.
    as_alice
        .execute("INSERT INTO public.invites DEFAULT VALUES", &[])
        .await?;
    assert_eq!(
        strings(&as_alice, "SELECT length(token)::text FROM public.invites").await?,
        ["32"]
    );
    Ok(())
}

#[tokio::test]
async fn a_real_projects_migrations_apply_on_pool_clones() -> Result<()> {
    let dir = project()?;
    let migrator = dir.migrator("baseline_project")?;
    // Two clones: they come from the template by CREATE DATABASE ... TEMPLATE, which
    // does not copy the database's search path; the pool does.
    for _ in 0..2 {
        let db = TestDatabase::fresh(&migrator, Shim::Apply).await?;
        check_project(&db).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_real_projects_migrations_apply_on_an_empty_database_with_the_baseline() -> Result<()> {
    let dir = project()?;
    let migrator = dir.migrator("baseline_project")?;

    // On a new session of a database with the baseline.
    let db = TestDatabase::with_supabase_shim().await?;
    let mut client = db.client().await?;
    migrator.run(&mut client).await?;
    check_project(&db).await?;

    // On the very session that applied it (as `db reset-local` does).
    let db = TestDatabase::create().await?;
    let mut client = db.client().await?;
    testing::apply_supabase_shim(&client).await?;
    migrator.run(&mut client).await?;
    check_project(&db).await
}

#[tokio::test]
async fn the_baseline_is_idempotent_and_fills_every_database_of_the_cluster() -> Result<()> {
    // Two databases at once: the second finds the cluster's roles made (or being
    // made) by the first.
    let (a, b) = tokio::join!(
        TestDatabase::with_supabase_shim(),
        TestDatabase::with_supabase_shim()
    );
    for db in [a?, b?] {
        let client = db.client().await?;
        assert_eq!(
            plover_tests::baseline_version(&client).await?,
            Some(SHIM_VERSION as i32)
        );
        let before = snapshot(&client).await?;
        for table in [
            "auth.users",
            "auth.identities",
            "auth.sessions",
            "auth.refresh_tokens",
            "auth.mfa_factors",
            "auth.one_time_tokens",
            "auth.flow_state",
            "storage.buckets",
            "storage.objects",
            "storage.migrations",
            "realtime.messages",
            "realtime.subscription",
            "supabase_functions.hooks",
        ] {
            assert_eq!(
                strings(
                    &client,
                    &format!("SELECT (to_regclass('{table}') IS NOT NULL)::text")
                )
                .await?,
                ["true"],
                "{table}"
            );
        }
        // Owned by Supabase's service roles, as grants and policies expect.
        assert_eq!(
            strings(
                &client,
                "SELECT c.relowner::regrole::text FROM pg_class c
                  WHERE c.oid IN ('auth.users'::regclass, 'storage.objects'::regclass,
                                  'realtime.messages'::regclass) ORDER BY 1"
            )
            .await?,
            [
                "supabase_auth_admin",
                "supabase_realtime_admin",
                "supabase_storage_admin"
            ]
        );
        testing::apply_supabase_shim(&client).await?;
        testing::apply_supabase_shim(&client).await?;
        assert_eq!(snapshot(&client).await?, before, "a second run changed it");
    }
    Ok(())
}

/// Objects the baseline makes, to show it made none.
const MADE: &str = "
SELECT (to_regprocedure('extensions.plover_shim_version()') IS NOT NULL)::text
    || ' ' || (to_regnamespace('storage') IS NOT NULL)::text
    || ' ' || (to_regnamespace('realtime') IS NOT NULL)::text
    || ' ' || EXISTS (SELECT FROM pg_publication WHERE pubname = 'supabase_realtime')::text
    || ' ' || EXISTS (SELECT FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                       WHERE d.datname = current_database())::text";

#[tokio::test]
async fn a_real_supabase_database_is_left_alone() -> Result<()> {
    // The cluster's roles exist (made by the baseline, elsewhere).
    drop(TestDatabase::with_supabase_shim().await?);

    // Schema auth made by Supabase: owned by its role, without the baseline's mark.
    let db = TestDatabase::create().await?;
    let client = db.client().await?;
    client
        .batch_execute(
            "CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
             CREATE TABLE auth.users (id uuid PRIMARY KEY)",
        )
        .await?;
    let before = snapshot(&client).await?;
    testing::apply_supabase_shim(&client).await?;
    assert_eq!(snapshot(&client).await?, before);
    assert_eq!(
        strings(&client, MADE).await?,
        ["false false false false false"]
    );
    assert_eq!(
        strings(&client, "SHOW search_path").await?,
        [r#""$user", public"#]
    );

    // Role supabase_auth_admin made by Supabase: the baseline's mark is not on it
    // (taken off in a transaction that is rolled back, so the cluster keeps it).
    let db = TestDatabase::create().await?;
    let client = db.client().await?;
    client
        .batch_execute("BEGIN; COMMENT ON ROLE supabase_auth_admin IS NULL")
        .await?;
    let before = snapshot(&client).await?;
    testing::apply_supabase_shim(&client).await?;
    assert_eq!(snapshot(&client).await?, before);
    assert_eq!(
        strings(&client, MADE).await?,
        ["false false false false false"]
    );
    client.batch_execute("ROLLBACK").await?;

    // The same database with the mark back: the baseline fills it.
    testing::apply_supabase_shim(&client).await?;
    assert_eq!(strings(&client, MADE).await?, ["true true true true true"]);
    Ok(())
}

#[tokio::test]
async fn a_database_prepared_by_the_v1_shim_is_upgraded() -> Result<()> {
    // What v1 left (in part): auth, storage and extensions, unmarked, v1's users and
    // buckets, and its version function.
    let db = TestDatabase::create().await?;
    let client = db.client().await?;
    client
        .batch_execute(
            "CREATE SCHEMA extensions; CREATE SCHEMA auth; CREATE SCHEMA storage;
             CREATE TABLE auth.users (instance_id uuid, id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                 email varchar(255), is_sso_user boolean NOT NULL DEFAULT false,
                 is_anonymous boolean NOT NULL DEFAULT false);
             CREATE TABLE storage.buckets (id text PRIMARY KEY, name text NOT NULL, owner uuid,
                 created_at timestamptz, updated_at timestamptz, public boolean DEFAULT false,
                 avif_autodetection boolean, file_size_limit bigint, allowed_mime_types text[],
                 owner_id text);
             CREATE FUNCTION extensions.plover_shim_version() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        )
        .await?;
    testing::apply_supabase_shim(&client).await?;
    assert_eq!(
        plover_tests::baseline_version(&client).await?,
        Some(SHIM_VERSION as i32)
    );
    assert_eq!(
        strings(
            &client,
            "SELECT (to_regclass('auth.sessions') IS NOT NULL)::text || ' ' || type::text
               FROM (SELECT 'STANDARD'::storage.buckettype AS type) t"
        )
        .await?,
        ["true STANDARD"]
    );
    Ok(())
}

#[tokio::test]
async fn an_apps_own_schema_of_a_supabase_name_is_left_as_it_is() -> Result<()> {
    let db = TestDatabase::create().await?;
    let client = db.client().await?;
    client
        .batch_execute("CREATE SCHEMA storage; CREATE TABLE storage.files (id int)")
        .await?;
    testing::apply_supabase_shim(&client).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT c.relname::text FROM pg_class c
              WHERE c.relnamespace = 'storage'::regnamespace AND c.relkind = 'r'"
        )
        .await?,
        ["files"]
    );
    // The rest of the baseline is there.
    assert_eq!(
        plover_tests::baseline_version(&client).await?,
        Some(SHIM_VERSION as i32)
    );
    Ok(())
}
