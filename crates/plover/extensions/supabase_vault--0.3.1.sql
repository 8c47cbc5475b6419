-- plover stand-in for supabase_vault 0.3.1, written for plover (not Supabase's code).
--
-- The real Vault encrypts secrets with a key the database cannot read (pgsodium's
-- server key). This stand-in keeps Vault's table, view and functions with their
-- signatures and encrypts with pgcrypto (AES-CBC) under a random key kept in
-- vault._key, readable by the superuser: fine for local and test databases, no
-- protection for real secrets.

\echo Use "CREATE EXTENSION supabase_vault" to load this file. \quit

create table @extschema@._key (
  one boolean primary key default true check (one),
  key bytea not null default gen_random_bytes(32)
);
insert into @extschema@._key default values;
revoke all on @extschema@._key from public;

create table @extschema@.secrets (
  id uuid not null default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea default gen_random_bytes(16),
  created_at timestamp with time zone not null default current_timestamp,
  updated_at timestamp with time zone not null default current_timestamp,
  constraint secrets_pkey primary key (id)
);
create unique index secrets_name_idx on @extschema@.secrets (name) where name is not null;
comment on table @extschema@.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk. (plover stand-in)';

create function @extschema@._crypt(secret text, nonce bytea)
  returns text
  language sql
  volatile
  security definer
  set search_path from current
as $fn$
  select encode(encrypt_iv(convert_to(secret, 'utf8'), (select key from _key), nonce, 'aes-cbc'), 'base64')
$fn$;

create function @extschema@._decrypt(secret text, nonce bytea)
  returns text
  language sql
  stable
  security definer
  set search_path from current
as $fn$
  select convert_from(decrypt_iv(decode(secret, 'base64'), (select key from _key), nonce, 'aes-cbc'), 'utf8')
$fn$;

-- Rows inserted or updated directly (as Supabase's docs show) are encrypted too.
create function @extschema@.secrets_encrypt_secret()
  returns trigger
  language plpgsql
  set search_path from current
as $fn$
begin
  if tg_op = 'INSERT' or new.secret is distinct from old.secret or new.nonce is distinct from old.nonce then
    new.nonce := coalesce(new.nonce, gen_random_bytes(16));
    new.secret := _crypt(new.secret, new.nonce);
  end if;
  new.updated_at := current_timestamp;
  return new;
end
$fn$;

create trigger secrets_encrypt_secret_trigger_secret
  before insert or update on @extschema@.secrets
  for each row execute function @extschema@.secrets_encrypt_secret();

create view @extschema@.decrypted_secrets as
  select id, name, description, secret,
         @extschema@._decrypt(secret, nonce) as decrypted_secret,
         key_id, nonce, created_at, updated_at
  from @extschema@.secrets;

create function @extschema@.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
)
  returns uuid
  language sql
  volatile
  security definer
  set search_path from current
as $fn$
  insert into secrets (secret, name, description, key_id)
  values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
  returning id
$fn$;

create function @extschema@.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
)
  returns void
  language sql
  volatile
  security definer
  set search_path from current
as $fn$
  update secrets set
    secret = coalesce(new_secret, _decrypt(secret, nonce)),
    nonce = case when new_secret is null then nonce else gen_random_bytes(16) end,
    name = coalesce(new_name, name),
    description = coalesce(new_description, description),
    key_id = coalesce(new_key_id, key_id)
  where id = secret_id
$fn$;

revoke all on function @extschema@._crypt(text, bytea), @extschema@._decrypt(text, bytea) from public;
revoke all on @extschema@.secrets, @extschema@.decrypted_secrets from public;
revoke all on function @extschema@.create_secret(text, text, text, uuid),
  @extschema@.update_secret(uuid, text, text, text, uuid) from public;

do $grants$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    grant usage on schema @extschema@ to service_role;
    grant select, delete on @extschema@.secrets, @extschema@.decrypted_secrets to service_role;
    grant execute on function @extschema@.create_secret(text, text, text, uuid),
      @extschema@.update_secret(uuid, text, text, text, uuid),
      @extschema@._crypt(text, bytea), @extschema@._decrypt(text, bytea) to service_role;
  end if;
end
$grants$;
