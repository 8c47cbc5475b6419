-- plover stand-in for http (pgsql-http) 1.6, written for plover (not pgsql-http's
-- code).
--
-- The real http extension is a C extension that makes synchronous HTTP requests
-- with libcurl. Debian packages it for PostgreSQL 17 (plover's 17 image has the
-- real one) but not for 15. This stand-in keeps its types and function signatures,
-- so migrations that create the extension and functions calling it apply; calling
-- any request function raises an error: nothing is ever sent.

\echo Use "CREATE EXTENSION http" to load this file. \quit

create domain @extschema@.http_method as text
  check (value ilike 'get' or value ilike 'post' or value ilike 'put' or value ilike 'delete'
         or value ilike 'patch' or value ilike 'head');

create domain @extschema@.content_type as text
  check (value ~ '^\S+\/\S+');

create type @extschema@.http_header as (
  field varchar,
  value varchar
);

create type @extschema@.http_response as (
  status integer,
  content_type varchar,
  headers @extschema@.http_header[],
  content varchar
);

create type @extschema@.http_request as (
  method @extschema@.http_method,
  uri varchar,
  headers @extschema@.http_header[],
  content_type varchar,
  content varchar
);

create function @extschema@.http_header(field varchar, value varchar)
  returns @extschema@.http_header
  language sql
  immutable
as $fn$ select row(field, value)::@extschema@.http_header $fn$;

create function @extschema@.http(request @extschema@.http_request)
  returns @extschema@.http_response
  language plpgsql
as $fn$
begin
  raise exception 'http is a plover stand-in here: % % was not sent', request.method, request.uri
    using errcode = 'feature_not_supported',
          hint = 'use a server with the real http extension (plover''s PostgreSQL 17 image has it)';
end
$fn$;

create function @extschema@.http_get(uri varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('GET', uri, null, null, null)::@extschema@.http_request) $fn$;

create function @extschema@.http_get(uri varchar, data jsonb)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('GET', uri, null, null, null)::@extschema@.http_request) $fn$;

create function @extschema@.http_post(uri varchar, content varchar, content_type varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('POST', uri, null, content_type, content)::@extschema@.http_request) $fn$;

create function @extschema@.http_post(uri varchar, data jsonb)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('POST', uri, null, 'application/x-www-form-urlencoded', data::text)::@extschema@.http_request) $fn$;

create function @extschema@.http_put(uri varchar, content varchar, content_type varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('PUT', uri, null, content_type, content)::@extschema@.http_request) $fn$;

create function @extschema@.http_patch(uri varchar, content varchar, content_type varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('PATCH', uri, null, content_type, content)::@extschema@.http_request) $fn$;

create function @extschema@.http_delete(uri varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('DELETE', uri, null, null, null)::@extschema@.http_request) $fn$;

create function @extschema@.http_delete(uri varchar, content varchar, content_type varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('DELETE', uri, null, content_type, content)::@extschema@.http_request) $fn$;

create function @extschema@.http_head(uri varchar)
  returns @extschema@.http_response
  language sql
as $fn$ select @extschema@.http(row('HEAD', uri, null, null, null)::@extschema@.http_request) $fn$;

create function @extschema@.http_set_curlopt(curlopt varchar, value varchar)
  returns boolean
  language sql
as $fn$ select true $fn$;

create function @extschema@.http_reset_curlopt()
  returns boolean
  language sql
as $fn$ select true $fn$;

create function @extschema@.http_list_curlopt()
  returns table(curlopt text, value text)
  language sql
as $fn$ select null::text, null::text where false $fn$;

-- Percent-encodes everything but RFC 3986's unreserved characters.
create function @extschema@.urlencode(string varchar)
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

create function @extschema@.urlencode(data jsonb)
  returns text
  language sql
  immutable
as $fn$
  select string_agg(@extschema@.urlencode(key) || '=' || @extschema@.urlencode(value), '&' order by key)
  from jsonb_each_text(data)
$fn$;

create function @extschema@.text_to_bytea(data text)
  returns bytea
  language sql
  immutable
as $fn$ select convert_to(data, 'UTF8') $fn$;

create function @extschema@.bytea_to_text(data bytea)
  returns text
  language sql
  immutable
as $fn$ select convert_from(data, 'UTF8') $fn$;
