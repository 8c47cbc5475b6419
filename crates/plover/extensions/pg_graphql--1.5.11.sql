-- plover stand-in for pg_graphql 1.5.11, written for plover (not Supabase's code).
--
-- The real pg_graphql is a Rust extension that answers GraphQL queries from the
-- catalog. Migrations only create it, comment tables and columns with
-- `@graphql(...)` directives and grant on its schema; this stand-in gives them
-- the schema `graphql` and the functions with their signatures. graphql.resolve
-- answers every query with a GraphQL error saying it is a stand-in.

\echo Use "CREATE EXTENSION pg_graphql" to load this file. \quit

create function @extschema@.resolve(
  query text,
  variables jsonb default '{}'::jsonb,
  "operationName" text default null,
  extensions jsonb default null
)
  returns jsonb
  language sql
  volatile
as $fn$
  select jsonb_build_object(
    'data', null,
    'errors', jsonb_build_array(jsonb_build_object(
      'message', 'pg_graphql is a plover stand-in here: GraphQL queries are not answered'
    ))
  )
$fn$;

-- The JSON inside a comment's `@graphql(...)` directive, or '{}'.
create function @extschema@.comment_directive(comment_ text)
  returns jsonb
  language sql
  immutable
as $fn$
  select coalesce(substring(comment_ from '@graphql\((.*)\)')::jsonb, '{}'::jsonb)
$fn$;

create function @extschema@.exception(message text)
  returns text
  language plpgsql
as $fn$
begin
  raise exception using errcode = '22000', message = message;
end
$fn$;

create function @extschema@.get_schema_version()
  returns integer
  language sql
  stable
as $fn$ select 1 $fn$;

create function @extschema@.increment_schema_version()
  returns event_trigger
  language plpgsql
as $fn$
begin
end
$fn$;

do $grants$
declare
  r text;
begin
  foreach r in array array['postgres', 'anon', 'authenticated', 'service_role'] loop
    if exists (select from pg_catalog.pg_roles where rolname = r) then
      execute format('grant usage on schema @extschema@ to %I', r);
      execute format('grant execute on all functions in schema @extschema@ to %I', r);
    end if;
  end loop;
end
$grants$;
