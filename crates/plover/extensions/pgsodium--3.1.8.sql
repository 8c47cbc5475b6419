-- plover stand-in for pgsodium 3.1.8, written for plover (not pgsodium's code).
--
-- The real pgsodium is a C extension over libsodium, with a server key loaded at
-- start-up and Transparent Column Encryption driven by SECURITY LABELs. This
-- stand-in keeps the roles, the key table and the functions migrations call most
-- (random bytes, key generation, secretbox, deterministic AEAD by key id), built
-- on pgcrypto's AES so a value encrypted here decrypts here. SECURITY LABEL FOR
-- pgsodium still fails (a label provider needs C): such migrations need the real
-- extension.

\echo Use "CREATE EXTENSION pgsodium" to load this file. \quit

do $roles$
declare
  r text;
begin
  foreach r in array array['pgsodium_keyiduser', 'pgsodium_keyholder', 'pgsodium_keymaker'] loop
    if not exists (select from pg_catalog.pg_roles where rolname = r) then
      execute format('create role %I nologin', r);
    end if;
  end loop;
end
$roles$;

create type @extschema@.key_status as enum ('default', 'valid', 'invalid', 'expired');
create type @extschema@.key_type as enum (
  'aead-ietf', 'aead-det', 'hmacsha512', 'hmacsha256', 'auth', 'shorthash',
  'generichash', 'kdf', 'secretbox', 'secretstream', 'stream_xchacha20'
);

create sequence @extschema@.key_key_id_seq;

create table @extschema@.key (
  id uuid not null default gen_random_uuid(),
  status @extschema@.key_status default 'valid',
  created timestamp with time zone not null default current_timestamp,
  expires timestamp with time zone,
  key_type @extschema@.key_type,
  key_id bigint default nextval('@extschema@.key_key_id_seq'::regclass),
  key_context bytea default '\x7067736f6469756d'::bytea,
  name text,
  associated_data text default 'associated',
  raw_key bytea default gen_random_bytes(32),
  raw_key_nonce bytea,
  parent_key uuid,
  comment text,
  user_data text,
  constraint key_pkey primary key (id),
  constraint pgsodium_key_unique_name unique (name)
);

create view @extschema@.valid_key as
  select id, name, status, key_type, key_id, key_context, created, expires, associated_data
  from @extschema@.key
  where status in ('valid', 'default') and (expires is null or expires > now());

create function @extschema@.create_key(
  key_type @extschema@.key_type default 'aead-det',
  name text default null,
  raw_key bytea default null,
  raw_key_nonce bytea default null,
  parent_key uuid default null,
  key_context bytea default '\x7067736f6469756d'::bytea,
  expires timestamp with time zone default null,
  associated_data text default ''
)
  returns @extschema@.valid_key
  language sql
  volatile
  security definer
  set search_path from current
as $fn$
  insert into key (key_type, name, raw_key, raw_key_nonce, parent_key, key_context, expires, associated_data)
  values (key_type, name, coalesce(raw_key, gen_random_bytes(32)), raw_key_nonce, parent_key,
          key_context, expires, associated_data)
  returning id, name, status, key_type, key_id, key_context, created, expires, associated_data
$fn$;

create function @extschema@.randombytes_buf(size integer)
  returns bytea
  language sql
  volatile
  set search_path from current
as $fn$ select gen_random_bytes(size) $fn$;

create function @extschema@.randombytes_random()
  returns integer
  language sql
  volatile
  set search_path from current
as $fn$ select ('x' || encode(gen_random_bytes(4), 'hex'))::bit(32)::integer $fn$;

create function @extschema@.crypto_secretbox_keygen()
  returns bytea
  language sql
  volatile
  set search_path from current
as $fn$ select gen_random_bytes(32) $fn$;

create function @extschema@.crypto_secretbox_noncegen()
  returns bytea
  language sql
  volatile
  set search_path from current
as $fn$ select gen_random_bytes(24) $fn$;

-- AES-CBC under the key, with the first 16 bytes of the nonce as the IV.
create function @extschema@.crypto_secretbox(message bytea, nonce bytea, key bytea)
  returns bytea
  language sql
  immutable
  set search_path from current
as $fn$ select encrypt_iv(message, key, substring(nonce from 1 for 16), 'aes-cbc') $fn$;

create function @extschema@.crypto_secretbox_open(ciphertext bytea, nonce bytea, key bytea)
  returns bytea
  language sql
  immutable
  set search_path from current
as $fn$ select decrypt_iv(ciphertext, key, substring(nonce from 1 for 16), 'aes-cbc') $fn$;

-- Deterministic: the IV is derived from the key and the associated data.
create function @extschema@.crypto_aead_det_encrypt(message bytea, additional bytea, key_uuid uuid, nonce bytea default null)
  returns bytea
  language sql
  stable
  security definer
  set search_path from current
as $fn$
  select encrypt_iv(message, k.raw_key,
                    substring(coalesce(nonce, hmac(coalesce(additional, ''::bytea), k.raw_key, 'sha256')) from 1 for 16),
                    'aes-cbc')
  from key k where k.id = key_uuid
$fn$;

create function @extschema@.crypto_aead_det_decrypt(message bytea, additional bytea, key_uuid uuid, nonce bytea default null)
  returns bytea
  language sql
  stable
  security definer
  set search_path from current
as $fn$
  select decrypt_iv(message, k.raw_key,
                    substring(coalesce(nonce, hmac(coalesce(additional, ''::bytea), k.raw_key, 'sha256')) from 1 for 16),
                    'aes-cbc')
  from key k where k.id = key_uuid
$fn$;

create function @extschema@.crypto_aead_det_keygen()
  returns bytea
  language sql
  volatile
  set search_path from current
as $fn$ select gen_random_bytes(32) $fn$;

revoke all on @extschema@.key from public;
grant select on @extschema@.valid_key to pgsodium_keyiduser;
grant usage on schema @extschema@ to pgsodium_keyiduser, pgsodium_keyholder, pgsodium_keymaker;
grant pgsodium_keyiduser to pgsodium_keyholder;
grant pgsodium_keyholder to pgsodium_keymaker;
grant all on @extschema@.key to pgsodium_keymaker;
grant execute on function @extschema@.crypto_aead_det_encrypt(bytea, bytea, uuid, bytea),
  @extschema@.crypto_aead_det_decrypt(bytea, bytea, uuid, bytea) to pgsodium_keyiduser;
grant execute on function @extschema@.create_key(@extschema@.key_type, text, bytea, bytea, uuid, bytea, timestamp with time zone, text)
  to pgsodium_keymaker;
