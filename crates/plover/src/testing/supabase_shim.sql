-- plover supabase shim v1
--
-- What this is
--   The parts of a Supabase database that application migrations and RLS tests
--   depend on, for a plain PostgreSQL (13+) server: the API roles (anon,
--   authenticated, service_role, authenticator, supabase_admin), the schemas
--   auth, storage and extensions, auth.users / auth.identities, auth.uid(),
--   auth.role(), auth.email(), auth.jwt() (reading the request.jwt.claim(s)
--   settings exactly as PostgREST sets them), minimal storage.buckets /
--   storage.objects, and Supabase's default privileges on schema public.
--
-- Version marker
--   The first line of this file is `-- plover supabase shim v<N>`, and the shim
--   installs the function `extensions.plover_shim_version()`, which returns N
--   (an integer). To read it:
--       select extensions.plover_shim_version();                    -- 1
--   To test for it without an error when it is absent:
--       select to_regprocedure('extensions.plover_shim_version()') is not null;
--   Bump N (both places) whenever this file changes in a way that matters to a
--   database built from it (template databases are keyed by it).
--
-- Rules this file keeps
--   * Idempotent: safe to run twice on one database, and on a second database of
--     the same cluster where the (cluster-wide) roles already exist. Concurrent
--     first runs in two databases of one cluster tolerate each other's roles.
--   * No transaction control: the caller decides (normally one transaction).
--   * Harmless on a real Supabase database: if the role `supabase_auth_admin`
--     exists (Supabase's auth service owns auth.* there; this shim never creates
--     it), every block below does nothing and the version function is not
--     installed, so its absence also tells "real Supabase, no shim".
--   * Objects in auth/storage are only created or replaced when their schema is
--     owned by the current user (i.e. the shim created it).

-- 1. Roles (cluster-wide: each created only if missing) -----------------------
do $shim$
declare
  r record;
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    raise notice 'plover shim: real Supabase database detected, skipping roles';
    return;
  end if;

  for r in
    select * from (values
      ('anon',           'nologin noinherit'),
      ('authenticated',  'nologin noinherit'),
      ('service_role',   'nologin noinherit bypassrls'),
      ('authenticator',  'login noinherit'),
      ('supabase_admin', 'nologin')
    ) as v(name, options)
  loop
    if not exists (select from pg_catalog.pg_roles where rolname = r.name) then
      begin
        execute format('create role %I %s', r.name, r.options);
      exception when duplicate_object or unique_violation then
        -- created by a concurrent run of this shim in another database
        null;
      end;
    end if;
  end loop;

  -- PostgREST connects as authenticator and switches to one of these.
  for r in select unnest(array['anon', 'authenticated', 'service_role']) as name loop
    if not exists (
      select from pg_catalog.pg_auth_members m
      join pg_catalog.pg_roles g on g.oid = m.roleid
      join pg_catalog.pg_roles u on u.oid = m.member
      where g.rolname = r.name and u.rolname = 'authenticator'
    ) then
      begin
        execute format('grant %I to authenticator', r.name);
      exception when duplicate_object or unique_violation then
        null;
      end;
    end if;
  end loop;
end
$shim$;

-- 2. Schemas, extensions, schema public's privileges ---------------------------
do $shim$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    raise notice 'plover shim: real Supabase database detected, skipping schemas';
    return;
  end if;

  create schema if not exists extensions;
  create schema if not exists auth;
  create schema if not exists storage;

  -- Both ship with PostgreSQL's contrib; Supabase installs them in `extensions`.
  -- (gen_random_uuid() itself is core since PostgreSQL 13.) A no-op when the
  -- extension is already installed, in whatever schema.
  create extension if not exists pgcrypto with schema extensions;
  create extension if not exists "uuid-ossp" with schema extensions;

  grant usage on schema public to anon, authenticated, service_role;
  grant usage on schema extensions to anon, authenticated, service_role;

  -- What Supabase does: everything created in public by the migrating role is
  -- reachable by the API roles, and Row Level Security decides which rows.
  -- (Applies to objects created later by the role running this shim.)
  alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
  alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
  alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
end
$shim$;

-- 3. auth: users, identities, uid() / role() / email() / jwt() ----------------
do $shim$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    raise notice 'plover shim: real Supabase database detected, skipping auth';
    return;
  end if;
  if not exists (
    select from pg_catalog.pg_namespace
    where nspname = 'auth' and nspowner = (select oid from pg_catalog.pg_roles where rolname = current_user)
  ) then
    raise notice 'plover shim: schema auth is not owned by %, skipping auth', current_user;
    return;
  end if;

  -- Columns and types as in Supabase's auth.users (GoTrue). Unlike Supabase,
  -- id has a default, so tests can insert users with just an email.
  create table if not exists auth.users (
    instance_id uuid,
    id uuid not null default gen_random_uuid(),
    aud character varying(255),
    role character varying(255),
    email character varying(255),
    encrypted_password character varying(255),
    email_confirmed_at timestamp with time zone,
    invited_at timestamp with time zone,
    confirmation_token character varying(255),
    confirmation_sent_at timestamp with time zone,
    recovery_token character varying(255),
    recovery_sent_at timestamp with time zone,
    email_change_token_new character varying(255),
    email_change character varying(255),
    email_change_sent_at timestamp with time zone,
    last_sign_in_at timestamp with time zone,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    phone text default null,
    phone_confirmed_at timestamp with time zone,
    phone_change text default '',
    phone_change_token character varying(255) default '',
    phone_change_sent_at timestamp with time zone,
    confirmed_at timestamp with time zone
      generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    email_change_token_current character varying(255) default '',
    email_change_confirm_status smallint default 0,
    banned_until timestamp with time zone,
    reauthentication_token character varying(255) default '',
    reauthentication_sent_at timestamp with time zone,
    is_sso_user boolean not null default false,
    deleted_at timestamp with time zone,
    is_anonymous boolean not null default false,
    constraint users_pkey primary key (id),
    constraint users_phone_key unique (phone),
    constraint users_email_change_confirm_status_check
      check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2)
  );
  create unique index if not exists users_email_partial_key
    on auth.users (email) where (is_sso_user = false);
  create index if not exists users_instance_id_idx on auth.users (instance_id);
  create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower((email)::text));
  comment on table auth.users is
    'Auth: Stores user login data within a secure schema. (plover supabase shim)';

  create table if not exists auth.identities (
    provider_id text not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamp with time zone,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    email text generated always as (lower(identity_data ->> 'email')) stored,
    id uuid not null default gen_random_uuid(),
    constraint identities_pkey primary key (id),
    constraint identities_provider_id_provider_unique unique (provider_id, provider)
  );
  create index if not exists identities_user_id_idx on auth.identities (user_id);
  create index if not exists identities_email_idx on auth.identities (email text_pattern_ops);

  -- The four helpers, as Supabase defines them: the per-claim settings
  -- (request.jwt.claim.sub, PostgREST < 9) win, then the JSON in
  -- request.jwt.claims (PostgREST >= 9); '' counts as unset.
  create or replace function auth.uid()
    returns uuid
    language sql
    stable
  as $fn$
    select
    coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;

  create or replace function auth.role()
    returns text
    language sql
    stable
  as $fn$
    select
    coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $fn$;

  create or replace function auth.email()
    returns text
    language sql
    stable
  as $fn$
    select
    coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $fn$;

  create or replace function auth.jwt()
    returns jsonb
    language sql
    stable
  as $fn$
    select
      coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
  $fn$;

  comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
  comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
  comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

  grant usage on schema auth to anon, authenticated, service_role;
  grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to anon, authenticated, service_role;

  -- The version marker (see the top of this file).
  create or replace function extensions.plover_shim_version()
    returns integer
    language sql
    immutable
  as $fn$ select 1 $fn$;
  comment on function extensions.plover_shim_version() is 'plover supabase shim v1';
  grant execute on function extensions.plover_shim_version() to anon, authenticated, service_role;
end
$shim$;

-- 4. storage: buckets, objects and the path helpers policies use --------------
do $shim$
begin
  if exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    raise notice 'plover shim: real Supabase database detected, skipping storage';
    return;
  end if;
  if not exists (
    select from pg_catalog.pg_namespace
    where nspname = 'storage' and nspowner = (select oid from pg_catalog.pg_roles where rolname = current_user)
  ) then
    raise notice 'plover shim: schema storage is not owned by %, skipping storage', current_user;
    return;
  end if;

  create table if not exists storage.buckets (
    id text not null,
    name text not null,
    owner uuid,
    created_at timestamp with time zone default now(),
    updated_at timestamp with time zone default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[],
    owner_id text,
    constraint buckets_pkey primary key (id)
  );
  create unique index if not exists bname on storage.buckets (name);

  create table if not exists storage.objects (
    id uuid not null default gen_random_uuid(),
    bucket_id text references storage.buckets (id),
    name text,
    owner uuid,
    created_at timestamp with time zone default now(),
    updated_at timestamp with time zone default now(),
    last_accessed_at timestamp with time zone default now(),
    metadata jsonb,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    version text,
    owner_id text,
    user_metadata jsonb,
    constraint objects_pkey primary key (id)
  );
  create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
  create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);

  alter table storage.objects enable row level security;

  create or replace function storage.foldername(name text)
    returns text[]
    language plpgsql
    immutable
  as $fn$
  declare
    _parts text[];
  begin
    select string_to_array(name, '/') into _parts;
    return _parts[1:array_length(_parts, 1) - 1];
  end
  $fn$;

  create or replace function storage.filename(name text)
    returns text
    language plpgsql
    immutable
  as $fn$
  declare
    _parts text[];
  begin
    select string_to_array(name, '/') into _parts;
    return _parts[array_length(_parts, 1)];
  end
  $fn$;

  create or replace function storage.extension(name text)
    returns text
    language plpgsql
    immutable
  as $fn$
  declare
    _parts text[];
    _filename text;
  begin
    select string_to_array(name, '/') into _parts;
    select _parts[array_length(_parts, 1)] into _filename;
    return reverse(split_part(reverse(_filename), '.', 1));
  end
  $fn$;

  grant usage on schema storage to anon, authenticated, service_role;
  grant all on table storage.buckets, storage.objects to anon, authenticated, service_role;
  grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
    to anon, authenticated, service_role;
end
$shim$;
