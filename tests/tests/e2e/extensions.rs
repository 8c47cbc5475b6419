//! plover's stand-ins for the Supabase-only extensions, created and used as
//! migrations use them, on the test server (native PostgreSQL, stand-ins installed
//! by `cargo xtask db extensions --install`, which `cargo xtask test` runs as root);
//! and the hint a migration gets when the server lacks an extension.

use anyhow::{Result, bail};
use plover::Error;
use plover_tests::{Dir, TestDatabase, strings};

/// Fails with the command that fixes it when the server lacks the stand-ins.
async fn with_stand_ins() -> Result<TestDatabase> {
    let db = TestDatabase::with_supabase_shim().await?;
    let client = db.client().await?;
    let found = strings(
        &client,
        "SELECT name FROM pg_available_extensions \
         WHERE name IN ('pg_net', 'pg_graphql', 'supabase_vault', 'pgsodium', 'pgjwt', 'wrappers', 'pg_jsonschema', 'pgmq', 'http') \
         ORDER BY name",
    )
    .await?;
    if found.len() != 9 {
        bail!(
            "the test server has only these stand-ins: {found:?}; install them with `sudo cargo xtask db extensions --install` (cargo xtask test does it as root)"
        );
    }
    Ok(db)
}

#[tokio::test]
async fn pg_net_queues_the_requests_a_trigger_makes_and_sends_none() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_net.sql",
        "create extension if not exists pg_net with schema extensions;\n\
             create table orders (id int primary key, total int);\n\
             create function notify_order() returns trigger language plpgsql as $$\n\
             begin\n\
               perform net.http_post(\n\
                 url := 'https://hooks.example.com/orders',\n\
                 body := jsonb_build_object('id', new.id),\n\
                 params := '{\"source\": \"db hook\"}'\n\
               );\n\
               return new;\n\
             end $$;\n\
             create trigger orders_hook after insert on orders\n\
               for each row execute function notify_order();\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    client
        .batch_execute("insert into orders values (7, 100)")
        .await?;
    assert_eq!(
        strings(
            &client,
            "SELECT method || ' ' || url || ' ' || convert_from(body, 'UTF8') FROM net.http_request_queue"
        )
        .await?,
        ["POST https://hooks.example.com/orders?source=db%20hook {\"id\": 7}"]
    );
    assert_eq!(
        strings(
            &client,
            "SELECT (net.http_collect_response(1)).status::text"
        )
        .await?,
        ["PENDING"]
    );
    Ok(())
}

#[tokio::test]
async fn vault_keeps_secrets_encrypted_and_decrypts_them_in_its_view() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_vault.sql",
        "create extension if not exists supabase_vault;\n\
         select vault.create_secret('sk_test_1', 'stripe', 'Stripe key');\n\
         insert into vault.secrets (name, secret) values ('direct', 'plain');\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT name || ' ' || (secret <> decrypted_secret)::text || ' ' || decrypted_secret \
             FROM vault.decrypted_secrets ORDER BY name"
        )
        .await?,
        ["direct true plain", "stripe true sk_test_1"]
    );
    client
        .batch_execute(
            "select vault.update_secret((select id from vault.secrets where name = 'stripe'), 'sk_test_2')",
        )
        .await?;
    assert_eq!(
        strings(
            &client,
            "SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'stripe'"
        )
        .await?,
        ["sk_test_2"]
    );
    Ok(())
}

#[tokio::test]
async fn pgjwt_signs_tokens_that_verify_with_the_secret_only() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_jwt.sql",
        "create extension if not exists pgjwt with schema extensions;\n\
         create function mint(uid text) returns text language sql as $$\n\
           select extensions.sign(json_build_object('sub', uid, 'role', 'authenticated'), 'top-secret')\n\
         $$;\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT (payload ->> 'sub') || ' ' || valid::text FROM extensions.verify(mint('u1'), 'top-secret') \
             UNION ALL \
             SELECT valid::text FROM extensions.verify(mint('u1'), 'wrong')"
        )
        .await?,
        ["u1 true", "false"]
    );
    Ok(())
}

#[tokio::test]
async fn pg_jsonschema_check_constraints_accept_valid_rows_and_refuse_the_others() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_schema.sql",
        "create extension if not exists pg_jsonschema with schema extensions;\n\
         create table profiles (\n\
           settings jsonb check (extensions.jsonb_matches_schema(\n\
             '{\"type\": \"object\", \"required\": [\"theme\"],\n\
               \"properties\": {\"theme\": {\"enum\": [\"dark\", \"light\"]}, \"size\": {\"type\": \"integer\", \"minimum\": 8}},\n\
               \"additionalProperties\": false}', settings))\n\
         );\n\
         insert into profiles values ('{\"theme\": \"dark\", \"size\": 12}');\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    for bad in [
        r#"{"size": 12}"#,
        r#"{"theme": "blue"}"#,
        r#"{"theme": "dark", "size": 4}"#,
        r#"{"theme": "dark", "size": 12.5}"#,
        r#"{"theme": "dark", "extra": 1}"#,
    ] {
        let refused = client
            .execute("insert into profiles values ($1::text::jsonb)", &[&bad])
            .await;
        assert!(
            refused
                .as_ref()
                .err()
                .and_then(|e| e.code())
                .map(|c| c.code())
                == Some("23514"),
            "{bad} was not refused: {refused:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn graphql_wrappers_and_pgsodium_create_what_migrations_create() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_rest.sql",
        "create extension if not exists pg_graphql;\n\
         create table posts (id int primary key);\n\
         comment on table posts is e'@graphql({\"totalCount\": {\"enabled\": true}})';\n\
         create extension if not exists wrappers with schema extensions;\n\
         create foreign data wrapper stripe_wrapper handler extensions.stripe_fdw_handler\n\
           validator extensions.stripe_fdw_validator;\n\
         create server stripe_server foreign data wrapper stripe_wrapper options (api_key_id 'k');\n\
         create schema stripe;\n\
         create foreign table stripe.customers (id text, email text) server stripe_server\n\
           options (object 'customers');\n\
         create extension if not exists pgsodium;\n\
         select pgsodium.create_key(name := 'app');\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT graphql.comment_directive(obj_description('posts'::regclass)) ->> 'totalCount' \
             UNION ALL \
             SELECT convert_from(pgsodium.crypto_aead_det_decrypt(\
               pgsodium.crypto_aead_det_encrypt('hello', 'ad', id), 'ad', id), 'UTF8') \
             FROM pgsodium.valid_key WHERE name = 'app'"
        )
        .await?,
        ["{\"enabled\": true}", "hello"]
    );
    let resolved = strings(&client, "SELECT graphql.resolve('{ posts { id } }')::text").await?;
    assert!(resolved[0].contains("stand-in"), "{resolved:?}");
    Ok(())
}

#[tokio::test]
async fn a_missing_extension_fails_with_the_command_that_installs_it() -> Result<()> {
    let db = TestDatabase::with_supabase_shim().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_missing.sql",
        "create table t (id int);\ncreate extension plover_no_such_extension;\n",
    )])?;
    let Err(Error::Migration(failed)) = dir.migrator("shop")?.run(&mut client).await else {
        bail!("an unknown extension was created");
    };
    assert!(
        failed.file.ends_with("/20240101000000_missing.sql"),
        "{}",
        failed.file
    );
    assert_eq!(failed.line, 2);
    let hint = failed.hint.clone().unwrap_or_default();
    assert!(
        hint.contains("plover_no_such_extension is not installed on this server"),
        "{hint}"
    );
    assert!(failed.to_string().contains(&hint), "{failed}");
    Ok(())
}

#[tokio::test]
async fn pgmq_queues_hand_out_each_message_once_until_its_visibility_timeout() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_queue.sql",
        "create extension if not exists pgmq;\n\
         select pgmq.create('emails');\n\
         create function enqueue_email(address text) returns bigint language sql as $$\n\
           select * from pgmq.send('emails', jsonb_build_object('to', address))\n\
         $$;\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    client
        .batch_execute(
            "select enqueue_email('a@example.com'); select enqueue_email('b@example.com');",
        )
        .await?;
    let first = strings(
        &client,
        "SELECT message ->> 'to' FROM pgmq.read('emails', 30, 1)",
    )
    .await?;
    let second = strings(
        &client,
        "SELECT message ->> 'to' FROM pgmq.read('emails', 30, 5)",
    )
    .await?;
    assert_eq!(
        (first.as_slice(), second.as_slice()),
        (
            &["a@example.com".to_owned()][..],
            &["b@example.com".to_owned()][..]
        )
    );
    assert!(
        strings(
            &client,
            "SELECT msg_id::text FROM pgmq.read('emails', 30, 5)"
        )
        .await?
        .is_empty(),
        "a message was handed out twice within its visibility timeout"
    );
    assert_eq!(
        strings(&client, "SELECT pgmq.archive('emails', 1::bigint)::text").await?,
        ["true"]
    );
    assert_eq!(
        strings(
            &client,
            "SELECT (SELECT count(*) FROM pgmq.a_emails)::text || ' ' || queue_length::text \
             FROM pgmq.metrics('emails')"
        )
        .await?,
        ["1 1"]
    );
    Ok(())
}

#[tokio::test]
async fn http_functions_can_be_created_against_the_extension() -> Result<()> {
    let db = with_stand_ins().await?;
    let mut client = db.client().await?;
    let dir = Dir::with(&[(
        "20240101000000_http.sql",
        "create extension if not exists http with schema extensions;\n\
         create function notify(body text) returns integer language sql as $$\n\
           select (extensions.http_post('https://hooks.example.com', body, 'application/json')).status\n\
         $$;\n",
    )])?;
    dir.migrator("shop")?.run(&mut client).await?;
    assert_eq!(
        strings(
            &client,
            "SELECT (extensions.http_header('Accept', 'text/plain')).value::text \
             || ' ' || extensions.urlencode('a b/c')"
        )
        .await?,
        ["text/plain a%20b%2Fc"]
    );
    Ok(())
}
