-- plover stand-in for wrappers 0.5.0, written for plover (not Supabase's code).
--
-- The real wrappers is a Rust extension whose foreign data wrappers read Stripe,
-- S3, BigQuery and others over the network. Migrations create the extension,
-- then `create foreign data wrapper x handler <name>_fdw_handler validator
-- <name>_fdw_validator`, a server and foreign tables. This stand-in gives each
-- wrapper its handler, validator and meta functions so all of that is created;
-- every option is accepted, and reading a foreign table fails (the handler is
-- PostgreSQL's file_fdw handler, which finds no `filename` option), since
-- nothing here reaches the outside world.

\echo Use "CREATE EXTENSION wrappers" to load this file. \quit

create table @extschema@.wrappers_fdw_stats (
  fdw_name text not null primary key,
  create_times bigint,
  rows_in bigint,
  rows_out bigint,
  bytes_in bigint,
  bytes_out bigint,
  metadata jsonb,
  created_at timestamp with time zone not null default timezone('utc'::text, now()),
  updated_at timestamp with time zone not null default timezone('utc'::text, now())
);

create function @extschema@.airtable_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.airtable_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.airtable_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'airtable (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.auth0_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.auth0_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.auth0_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'auth0 (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.big_query_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.big_query_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.big_query_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'big_query (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.click_house_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.click_house_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.click_house_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'click_house (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.cognito_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.cognito_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.cognito_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'cognito (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.duckdb_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.duckdb_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.duckdb_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'duckdb (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.firebase_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.firebase_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.firebase_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'firebase (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.hello_world_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.hello_world_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.hello_world_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'hello_world (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.iceberg_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.iceberg_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.iceberg_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'iceberg (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.logflare_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.logflare_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.logflare_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'logflare (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.mssql_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.mssql_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.mssql_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'mssql (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.redis_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.redis_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.redis_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'redis (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.s3_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.s3_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.s3_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 's3 (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.stripe_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.stripe_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.stripe_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'stripe (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;

create function @extschema@.wasm_fdw_handler()
  returns fdw_handler
  language c
  strict
as '$libdir/file_fdw', 'file_fdw_handler';

create function @extschema@.wasm_fdw_validator(options text[], catalog oid)
  returns void
  language plpgsql
as $fn$ begin end $fn$;

create function @extschema@.wasm_fdw_meta()
  returns table(name text, version text, author text, website text)
  language sql
  immutable
as $fn$ select 'wasm (plover stand-in)'::text, '0.5.0'::text, 'plover'::text, 'https://github.com/supabase/wrappers'::text $fn$;
