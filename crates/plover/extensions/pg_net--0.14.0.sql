-- plover stand-in for pg_net 0.14.0, written for plover (not Supabase's code).
--
-- The real pg_net is a C extension whose background worker sends queued HTTP
-- requests after the transaction commits. This stand-in keeps the schema `net`,
-- the queue and response tables, the types and the function signatures that
-- migrations and trigger functions use, so they create and run; requests are
-- recorded in net.http_request_queue and never sent (no worker, no network).
-- Tests can read the queue to check that a trigger asked for a request.

\echo Use "CREATE EXTENSION pg_net" to load this file. \quit

create schema if not exists net;

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');

create type net.http_response as (
  status_code integer,
  headers jsonb,
  body text
);

create type net.http_response_result as (
  status net.request_status,
  message text,
  response net.http_response
);

create unlogged table net.http_request_queue (
  id bigserial not null,
  method text not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);

create unlogged table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamp with time zone not null default now()
);
create index _http_response_created_idx on net._http_response (created);

-- Percent-encodes everything but RFC 3986's unreserved characters.
create function net._urlencode_string(string text)
  returns text
  language sql
  immutable
as $fn$
  select coalesce(string_agg(
    case when ch ~ '^[A-Za-z0-9._~-]$' then ch
         else upper(regexp_replace(encode(convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
    end, '' order by i), '')
  from regexp_split_to_table(string, '') with ordinality as t(ch, i)
$fn$;

-- Builds `url?k=v&...` from a jsonb object of parameters.
create function net._with_params(url text, params jsonb)
  returns text
  language sql
  immutable
as $fn$
  select case
    when params is null or params = '{}'::jsonb then url
    else url || case when strpos(url, '?') > 0 then '&' else '?' end || (
      select string_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value), '&' order by key)
      from jsonb_each_text(params)
    )
  end
$fn$;

create function net._enqueue(method text, url text, headers jsonb, body bytea, timeout_milliseconds integer)
  returns bigint
  language sql
  volatile
as $fn$
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (method, url, coalesce(headers, '{}'::jsonb), body, timeout_milliseconds)
  returning id
$fn$;

create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
)
  returns bigint
  language sql
  volatile
  security definer
as $fn$
  select net._enqueue('GET', net._with_params(url, params), headers, null, timeout_milliseconds)
$fn$;

create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
)
  returns bigint
  language sql
  volatile
  security definer
as $fn$
  select net._enqueue('POST', net._with_params(url, params), headers,
                      convert_to(body::text, 'UTF8'), timeout_milliseconds)
$fn$;

create function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000,
  body jsonb default null
)
  returns bigint
  language sql
  volatile
  security definer
as $fn$
  select net._enqueue('DELETE', net._with_params(url, params), headers,
                      convert_to(body::text, 'UTF8'), timeout_milliseconds)
$fn$;

-- No request is ever sent, so every request stays pending.
create function net.http_collect_response(request_id bigint, async boolean default true)
  returns net.http_response_result
  language sql
  volatile
as $fn$
  select row('PENDING', 'request is pending (plover stand-in: pg_net never sends requests)', null)::net.http_response_result
$fn$;

create function net.wake()
  returns void
  language sql
as $fn$ select $fn$;

create function net.worker_restart()
  returns boolean
  language sql
as $fn$ select true $fn$;

comment on schema net is 'plover stand-in for pg_net: requests are queued, never sent';

-- As on Supabase: the API and functions roles may queue requests.
do $grants$
declare
  r text;
begin
  foreach r in array array['postgres', 'anon', 'authenticated', 'service_role', 'supabase_functions_admin'] loop
    if exists (select from pg_catalog.pg_roles where rolname = r) then
      execute format('grant usage on schema net to %I', r);
      execute format('grant execute on all functions in schema net to %I', r);
    end if;
  end loop;
end
$grants$;
