-- plover's pgjwt-compatible extension 0.2.0, written for plover (not pgjwt's code).
--
-- pgjwt is a SQL-only extension Supabase ships (deprecated there). This one has
-- its function names and signatures and really signs and verifies HMAC tokens
-- with pgcrypto's hmac(), so tests of code that mints tokens in SQL work.

\echo Use "CREATE EXTENSION pgjwt" to load this file. \quit

-- base64url without padding (RFC 7515).
create function @extschema@.url_encode(data bytea)
  returns text
  language sql
  immutable
as $fn$
  select translate(encode(data, 'base64'), E'+/=\n', '-_')
$fn$;

create function @extschema@.url_decode(data text)
  returns bytea
  language sql
  immutable
as $fn$
  select decode(
    translate(data, '-_', '+/') || repeat('=', (4 - length(data) % 4) % 4),
    'base64'
  )
$fn$;

create function @extschema@.algorithm_sign(signables text, secret text, algorithm text)
  returns text
  language sql
  immutable
  set search_path from current
as $fn$
  select url_encode(hmac(
    signables,
    secret,
    case algorithm
      when 'HS256' then 'sha256'
      when 'HS384' then 'sha384'
      when 'HS512' then 'sha512'
    end
  ))
$fn$;

create function @extschema@.sign(payload json, secret text, algorithm text default 'HS256')
  returns text
  language sql
  immutable
  set search_path from current
as $fn$
  with parts as (
    select url_encode(convert_to(json_build_object('alg', algorithm, 'typ', 'JWT')::text, 'utf8'))
           || '.' || url_encode(convert_to(payload::text, 'utf8')) as signables
  )
  select signables || '.' || algorithm_sign(signables, secret, algorithm) from parts
$fn$;

create function @extschema@.try_cast_double(inp text)
  returns double precision
  language plpgsql
  immutable
as $fn$
begin
  return inp::double precision;
exception when others then
  return null;
end
$fn$;

create function @extschema@.verify(token text, secret text, algorithm text default 'HS256')
  returns table(header json, payload json, valid boolean)
  language sql
  stable
  set search_path from current
as $fn$
  with jwt as (
    select string_to_array(token, '.') as part
  )
  select
    convert_from(url_decode(part[1]), 'utf8')::json,
    convert_from(url_decode(part[2]), 'utf8')::json,
    part[3] = algorithm_sign(part[1] || '.' || part[2], secret, algorithm)
      and coalesce(
        to_timestamp(try_cast_double(convert_from(url_decode(part[2]), 'utf8')::json ->> 'exp')) > now(),
        true
      )
      and coalesce(
        to_timestamp(try_cast_double(convert_from(url_decode(part[2]), 'utf8')::json ->> 'nbf')) <= now(),
        true
      )
  from jwt
$fn$;
