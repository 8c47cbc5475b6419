-- plover supabase baseline v2
--
-- What this is
--   A plain PostgreSQL (15+) database shaped like the database of a local
--   Supabase project (`supabase start`), so that real projects' migrations and
--   RLS tests run on it: Supabase's roles and their memberships; the schemas
--   auth, storage, realtime, graphql_public, supabase_functions and extensions
--   with the tables, types and functions migrations reference; pgcrypto and
--   uuid-ossp in `extensions`; the search path `"$user", public, extensions`;
--   the publication supabase_realtime; Supabase's default privileges for anon,
--   authenticated and service_role. Extensions Supabase enables by default
--   (pg_graphql, pgsodium, supabase_vault, pg_net, pgjwt, pg_stat_statements) are created
--   when the server has them; without pgjwt, pgjwt's functions are defined here.
--   Written for plover from Supabase's public init scripts and services'
--   migrations: the objects and signatures, not their implementation.
--
-- Version marker
--   The first line of this file is `-- plover supabase baseline v<N>`, and the
--   baseline installs `extensions.plover_shim_version()`, which returns N:
--       select extensions.plover_shim_version();                    -- 2
--       select to_regprocedure('extensions.plover_shim_version()') is not null;
--   Bump N (here, in the function below and SHIM_VERSION in pool.rs) whenever
--   this file changes in a way that matters to a database built from it.
--   (Test template databases are keyed by this file's text, so any change
--   rebuilds them.)
--
-- Rules this file keeps
--   * Idempotent: safe to run twice on one database, on a database that v1 (the
--     shim) prepared, and on a second database of the same cluster, where the
--     (cluster-wide) roles already exist. Concurrent first runs in two databases
--     of one cluster tolerate each other's roles.
--   * No transaction control: the caller decides (normally one transaction).
--   * Harmless on a real Supabase database. Every role this file creates carries
--     the comment 'plover supabase baseline', and so do the schemas it creates.
--     When the role supabase_auth_admin exists without that comment (Supabase
--     made it), or schema auth exists without it (and without v1's version
--     function), the database is not ours: nothing below changes anything, and
--     the version function is not installed, so its absence also tells "real
--     Supabase, no baseline". The first block records the verdict in the
--     session setting plover.baseline, the others read it, the last statement
--     resets it.
--   * Another schema of the same name that the baseline did not make (say an
--     app's own `storage`) is left as it is, with a notice.
--   * Run it as a superuser (the servers' `postgres`). Without superuser the
--     roles get no SUPERUSER/REPLICATION/BYPASSRLS and objects stay owned by the
--     current user.
--   * New sessions get the search path from `ALTER DATABASE ... SET`, which
--     CREATE DATABASE ... TEMPLATE does not copy: plover's pool copies a
--     template's settings onto each clone. The session running this file gets it
--     with set_config (when its path is the server's default).

-- 0. Whose database is this? ------------------------------------------------
-- Sets plover.baseline to 'apply' for this session when the baseline may fill the
-- database, to 'skip' otherwise; every block below reads it, and the last
-- statement resets it.
do $baseline$
declare
  reason text := case
    when exists (
      select from pg_catalog.pg_roles r
      where r.rolname = 'supabase_auth_admin'
        and not starts_with(coalesce(pg_catalog.shobj_description(r.oid, 'pg_authid'), ''),
                            'plover supabase baseline')
    ) then 'role supabase_auth_admin was not made by the baseline'
    when exists (
      select from pg_catalog.pg_namespace n
      where n.nspname = 'auth'
        and not starts_with(coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), ''),
                            'plover supabase baseline')
        and pg_catalog.to_regprocedure('extensions.plover_shim_version()') is null
    ) then 'schema auth was not made by the baseline'
  end;
begin
  perform set_config('plover.baseline', case when reason is null then 'apply' else 'skip' end, false);
  if reason is not null then
    raise notice 'plover baseline: % (a real Supabase database?); changing nothing', reason;
  end if;
end
$baseline$;

-- 1. Roles (cluster-wide: each made only if missing) --------------------------
do $baseline$
declare
  su boolean := (select rolsuper from pg_catalog.pg_roles where rolname = current_user);
  r record;
  made boolean;
  setting text;
begin
  if current_setting('plover.baseline', true) is distinct from 'apply' then
    return;
  end if;

  -- name, attributes, attributes that need a superuser, role settings
  for r in
    select * from (values
      ('postgres',                   'nologin createrole createdb', 'replication bypassrls',
        array['search_path = "$user", public, extensions']),
      ('supabase_admin',             'nologin createrole createdb', 'superuser replication bypassrls',
        array['search_path = "$user", public, auth, extensions']),
      ('anon',                       'nologin inherit', '',
        array['statement_timeout = ''3s''']),
      ('authenticated',              'nologin inherit', '',
        array['statement_timeout = ''8s''']),
      ('service_role',               'nologin inherit', 'bypassrls', array[]::text[]),
      ('authenticator',              'login noinherit', '',
        array['statement_timeout = ''8s''', 'lock_timeout = ''8s''']),
      ('supabase_auth_admin',        'nologin noinherit createrole', '',
        array['search_path = auth', 'idle_in_transaction_session_timeout = 60000']),
      ('supabase_storage_admin',     'nologin noinherit createrole', '',
        array['search_path = storage']),
      ('supabase_functions_admin',   'nologin noinherit createrole', '',
        array['search_path = supabase_functions']),
      ('supabase_realtime_admin',    'nologin noinherit', '', array[]::text[]),
      ('supabase_replication_admin', 'nologin', 'replication', array[]::text[]),
      ('supabase_read_only_user',    'nologin', 'bypassrls', array[]::text[]),
      ('dashboard_user',             'nologin createrole createdb', 'replication', array[]::text[]),
      ('pgbouncer',                  'nologin', '', array[]::text[])
    ) as v(name, options, privileged, settings)
  loop
    continue when exists (select from pg_catalog.pg_roles where rolname = r.name);
    made := false;
    begin
      execute format('create role %I %s %s', r.name, r.options, case when su then r.privileged else '' end);
      made := true;
    exception when duplicate_object or unique_violation then
      -- made by a concurrent run of this file in another database
      null;
    end;
    -- Only the run that made a role touches it, so concurrent runs never
    -- update the same catalog row.
    if made then
      execute format('comment on role %I is %L', r.name, 'plover supabase baseline');
      foreach setting in array r.settings loop
        execute format('alter role %I set %s', r.name, setting);
      end loop;
    end if;
  end loop;

  -- Memberships, as Supabase grants them.
  for r in
    select * from (values
      ('anon', 'authenticator'), ('authenticated', 'authenticator'), ('service_role', 'authenticator'),
      ('anon', 'postgres'), ('authenticated', 'postgres'), ('service_role', 'postgres'),
      ('supabase_auth_admin', 'postgres'), ('supabase_storage_admin', 'postgres'),
      ('supabase_functions_admin', 'postgres'), ('supabase_realtime_admin', 'postgres'),
      ('authenticator', 'supabase_storage_admin'),
      ('pg_read_all_data', 'supabase_read_only_user'),
      ('pg_monitor', 'postgres'), ('pg_read_all_data', 'postgres'), ('pg_signal_backend', 'postgres')
    ) as v(grouprole, member)
  loop
    continue when exists (
      select from pg_catalog.pg_auth_members m
      join pg_catalog.pg_roles g on g.oid = m.roleid
      join pg_catalog.pg_roles u on u.oid = m.member
      where g.rolname = r.grouprole and u.rolname = r.member
    );
    begin
      execute format('grant %I to %I', r.grouprole, r.member);
    exception
      when duplicate_object or unique_violation then null;
      when insufficient_privilege then
        raise notice 'plover baseline: cannot grant % to % as %', r.grouprole, r.member, current_user;
    end;
  end loop;
end
$baseline$;

-- 2. extensions, public, the search path -------------------------------------
do $baseline$
declare
  db_settings text[];
  schema_name text;
  ns oid;
  marker text;
begin
  if current_setting('plover.baseline', true) is distinct from 'apply' then
    return;
  end if;

  create schema if not exists extensions;
  -- Both ship with PostgreSQL's contrib; Supabase installs them in `extensions`.
  -- A no-op when the extension is already installed, in whatever schema.
  create extension if not exists "uuid-ossp" with schema extensions;
  create extension if not exists pgcrypto with schema extensions;
  if exists (select from pg_catalog.pg_available_extensions where name = 'pg_stat_statements') then
    create extension if not exists pg_stat_statements with schema extensions;
  end if;
  if exists (select from pg_catalog.pg_available_extensions where name = 'pgjwt') then
    create extension if not exists pgjwt with schema extensions;
  end if;

  grant usage on schema public to postgres, anon, authenticated, service_role;
  grant usage on schema extensions to postgres, anon, authenticated, service_role;
  grant all on schema extensions to dashboard_user;

  -- What Supabase does: everything the migrating role (and supabase_admin)
  -- creates in public is reachable by the API roles, and Row Level Security
  -- decides which rows.
  alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
  alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
  alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
  if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    alter default privileges for role supabase_admin in schema public
      grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public
      grant all on sequences to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public
      grant all on functions to postgres, anon, authenticated, service_role;
  end if;

  -- Supabase sets the path on the role postgres (done in block 1 when the
  -- baseline made that role); every session of this database gets it here,
  -- whichever role it logs in as, unless the database already has a path.
  select s.setconfig into db_settings
  from pg_catalog.pg_db_role_setting s
  join pg_catalog.pg_database d on d.oid = s.setdatabase
  where d.datname = current_database() and s.setrole = 0;
  if not exists (select from unnest(db_settings) c where c like 'search_path=%') then
    execute format('alter database %I set search_path to "$user", public, extensions', current_database());
  end if;
  if current_setting('search_path') = '"$user", public' then
    perform set_config('search_path', '"$user", public, extensions', false);
  end if;

  -- The schemas of Supabase's services, owned by supabase_admin as there. One
  -- the baseline did not make (an app's own `storage`, say) is left alone: the
  -- blocks below fill only schemas with the baseline's comment.
  foreach schema_name in array array['auth', 'storage', 'realtime', 'graphql_public', 'supabase_functions'] loop
    ns := to_regnamespace(schema_name);
    marker := 'plover supabase baseline: stands in for Supabase''s schema ' || schema_name;
    if ns is null then
      execute format('create schema %I', schema_name);
      if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
        execute format('alter schema %I owner to supabase_admin', schema_name);
      end if;
      execute format('comment on schema %I is %L', schema_name, marker);
    elsif starts_with(coalesce(obj_description(ns, 'pg_namespace'), ''), 'plover supabase baseline') then
      null;
    elsif schema_name in ('auth', 'storage')
          and to_regprocedure('extensions.plover_shim_version()') is not null then
      -- made by v1 (the shim), owned by the role that ran it
      execute format('comment on schema %I is %L', schema_name, marker);
    else
      raise notice 'plover baseline: schema % exists and was not made by the baseline; left as it is', schema_name;
    end if;
  end loop;
end
$baseline$;

-- 3. auth: users and the tables around them, uid() / role() / email() / jwt() -
do $baseline$
declare
  su boolean := (select rolsuper from pg_catalog.pg_roles where rolname = current_user);
  t text;
begin
  if current_setting('plover.baseline', true) is distinct from 'apply'
     or not starts_with(coalesce(obj_description(to_regnamespace('auth'), 'pg_namespace'), ''),
                        'plover supabase baseline') then
    return;
  end if;

  if to_regtype('auth.aal_level') is null then
    create type auth.aal_level as enum ('aal1', 'aal2', 'aal3');
  end if;
  if to_regtype('auth.factor_type') is null then
    create type auth.factor_type as enum ('totp', 'webauthn', 'phone');
  end if;
  if to_regtype('auth.factor_status') is null then
    create type auth.factor_status as enum ('unverified', 'verified');
  end if;
  if to_regtype('auth.code_challenge_method') is null then
    create type auth.code_challenge_method as enum ('s256', 'plain');
  end if;
  if to_regtype('auth.one_time_token_type') is null then
    create type auth.one_time_token_type as enum (
      'confirmation_token', 'reauthentication_token', 'recovery_token',
      'email_change_token_new', 'email_change_token_current', 'phone_change_token');
  end if;

  -- Columns and types as in Supabase Auth's users table. Unlike Supabase, id
  -- has a default, so tests can insert users with just an email.
  create table if not exists auth.users (
    instance_id uuid,
    id uuid not null default gen_random_uuid(),
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    confirmation_sent_at timestamptz,
    recovery_token varchar(255),
    recovery_sent_at timestamptz,
    email_change_token_new varchar(255),
    email_change varchar(255),
    email_change_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text default null,
    phone_confirmed_at timestamptz,
    phone_change text default '',
    phone_change_token varchar(255) default '',
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    email_change_token_current varchar(255) default '',
    email_change_confirm_status smallint default 0,
    banned_until timestamptz,
    reauthentication_token varchar(255) default '',
    reauthentication_sent_at timestamptz,
    is_sso_user boolean not null default false,
    deleted_at timestamptz,
    is_anonymous boolean not null default false,
    constraint users_pkey primary key (id),
    constraint users_phone_key unique (phone),
    constraint users_email_change_confirm_status_check
      check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2)
  );
  create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
  create index if not exists users_instance_id_idx on auth.users (instance_id);
  create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower((email)::text));
  create index if not exists users_is_anonymous_idx on auth.users (is_anonymous);
  comment on table auth.users is 'Auth: Stores user login data within a secure schema. (plover supabase baseline)';

  create table if not exists auth.identities (
    provider_id text not null,
    user_id uuid not null,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    email text generated always as (lower(identity_data ->> 'email')) stored,
    id uuid not null default gen_random_uuid(),
    constraint identities_pkey primary key (id),
    constraint identities_provider_id_provider_unique unique (provider_id, provider),
    constraint identities_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade
  );
  create index if not exists identities_user_id_idx on auth.identities (user_id);
  create index if not exists identities_email_idx on auth.identities (email text_pattern_ops);

  create table if not exists auth.instances (
    id uuid not null,
    uuid uuid,
    raw_base_config text,
    created_at timestamptz,
    updated_at timestamptz,
    constraint instances_pkey primary key (id)
  );

  create table if not exists auth.audit_log_entries (
    instance_id uuid,
    id uuid not null,
    payload json,
    created_at timestamptz,
    ip_address varchar(64) not null default '',
    constraint audit_log_entries_pkey primary key (id)
  );
  create index if not exists audit_logs_instance_id_idx on auth.audit_log_entries (instance_id);

  create table if not exists auth.sessions (
    id uuid not null,
    user_id uuid not null,
    created_at timestamptz,
    updated_at timestamptz,
    factor_id uuid,
    aal auth.aal_level,
    not_after timestamptz,
    refreshed_at timestamp,
    user_agent text,
    ip inet,
    tag text,
    oauth_client_id uuid,
    refresh_token_hmac_key text,
    refresh_token_counter bigint,
    scopes text,
    constraint sessions_pkey primary key (id),
    constraint sessions_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade
  );
  create index if not exists sessions_user_id_idx on auth.sessions (user_id);
  create index if not exists sessions_not_after_idx on auth.sessions (not_after desc);
  create index if not exists user_id_created_at_idx on auth.sessions (user_id, created_at);

  create table if not exists auth.refresh_tokens (
    instance_id uuid,
    id bigserial not null,
    token varchar(255),
    user_id varchar(255),
    revoked boolean,
    created_at timestamptz,
    updated_at timestamptz,
    parent varchar(255),
    session_id uuid,
    constraint refresh_tokens_pkey primary key (id),
    constraint refresh_tokens_token_unique unique (token),
    constraint refresh_tokens_session_id_fkey foreign key (session_id) references auth.sessions (id) on delete cascade
  );
  create index if not exists refresh_tokens_instance_id_idx on auth.refresh_tokens (instance_id);
  create index if not exists refresh_tokens_instance_id_user_id_idx on auth.refresh_tokens (instance_id, user_id);
  create index if not exists refresh_tokens_parent_idx on auth.refresh_tokens (parent);
  create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);

  create table if not exists auth.mfa_factors (
    id uuid not null,
    user_id uuid not null,
    friendly_name text,
    factor_type auth.factor_type not null,
    status auth.factor_status not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    secret text,
    phone text,
    last_challenged_at timestamptz unique,
    web_authn_credential jsonb,
    web_authn_aaguid uuid,
    constraint mfa_factors_pkey primary key (id),
    constraint mfa_factors_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade
  );
  create index if not exists mfa_factors_user_id_idx on auth.mfa_factors (user_id);
  create index if not exists factor_id_created_at_idx on auth.mfa_factors (user_id, created_at);

  create table if not exists auth.mfa_challenges (
    id uuid not null,
    factor_id uuid not null,
    created_at timestamptz not null,
    verified_at timestamptz,
    ip_address inet not null,
    otp_code text,
    web_authn_session_data jsonb,
    constraint mfa_challenges_pkey primary key (id),
    constraint mfa_challenges_auth_factor_id_fkey foreign key (factor_id)
      references auth.mfa_factors (id) on delete cascade
  );

  create table if not exists auth.mfa_amr_claims (
    session_id uuid not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    authentication_method text not null,
    id uuid not null,
    constraint amr_id_pk primary key (id),
    constraint mfa_amr_claims_session_id_authentication_method_pkey unique (session_id, authentication_method),
    constraint mfa_amr_claims_session_id_fkey foreign key (session_id) references auth.sessions (id) on delete cascade
  );

  create table if not exists auth.one_time_tokens (
    id uuid not null,
    user_id uuid not null,
    token_type auth.one_time_token_type not null,
    token_hash text not null check (char_length(token_hash) > 0),
    relates_to text not null,
    created_at timestamp not null default now(),
    updated_at timestamp not null default now(),
    constraint one_time_tokens_pkey primary key (id),
    constraint one_time_tokens_user_id_fkey foreign key (user_id) references auth.users (id) on delete cascade
  );
  create unique index if not exists one_time_tokens_user_id_token_type_key on auth.one_time_tokens (user_id, token_type);

  create table if not exists auth.flow_state (
    id uuid not null,
    user_id uuid,
    auth_code text,
    code_challenge_method auth.code_challenge_method,
    code_challenge text,
    provider_type text not null,
    provider_access_token text,
    provider_refresh_token text,
    created_at timestamptz,
    updated_at timestamptz,
    authentication_method text not null,
    auth_code_issued_at timestamptz,
    constraint flow_state_pkey primary key (id)
  );
  create index if not exists idx_auth_code on auth.flow_state (auth_code);

  create table if not exists auth.sso_providers (
    id uuid not null,
    resource_id text,
    created_at timestamptz,
    updated_at timestamptz,
    disabled boolean,
    constraint sso_providers_pkey primary key (id)
  );
  create table if not exists auth.sso_domains (
    id uuid not null,
    sso_provider_id uuid not null,
    domain text not null,
    created_at timestamptz,
    updated_at timestamptz,
    constraint sso_domains_pkey primary key (id),
    constraint sso_domains_sso_provider_id_fkey foreign key (sso_provider_id)
      references auth.sso_providers (id) on delete cascade
  );
  create table if not exists auth.saml_providers (
    id uuid not null,
    sso_provider_id uuid not null,
    entity_id text not null unique,
    metadata_xml text not null,
    metadata_url text,
    attribute_mapping jsonb,
    created_at timestamptz,
    updated_at timestamptz,
    name_id_format text,
    constraint saml_providers_pkey primary key (id),
    constraint saml_providers_sso_provider_id_fkey foreign key (sso_provider_id)
      references auth.sso_providers (id) on delete cascade
  );
  create table if not exists auth.saml_relay_states (
    id uuid not null,
    sso_provider_id uuid not null,
    request_id text not null,
    for_email text,
    redirect_to text,
    created_at timestamptz,
    updated_at timestamptz,
    flow_state_id uuid,
    constraint saml_relay_states_pkey primary key (id),
    constraint saml_relay_states_sso_provider_id_fkey foreign key (sso_provider_id)
      references auth.sso_providers (id) on delete cascade,
    constraint saml_relay_states_flow_state_id_fkey foreign key (flow_state_id)
      references auth.flow_state (id) on delete cascade
  );

  create table if not exists auth.schema_migrations (
    version varchar(255) not null,
    constraint schema_migrations_pkey primary key (version)
  );

  -- The helpers, as Supabase defines them: the per-claim settings
  -- (request.jwt.claim.sub, PostgREST < 9) win, then the JSON in
  -- request.jwt.claims (PostgREST >= 9); '' counts as unset.
  create or replace function auth.uid()
    returns uuid
    language sql
    stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;

  create or replace function auth.role()
    returns text
    language sql
    stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $fn$;

  create or replace function auth.email()
    returns text
    language sql
    stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $fn$;

  create or replace function auth.jwt()
    returns jsonb
    language sql
    stable
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $fn$;

  comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
  comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
  comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

  -- Supabase Auth's tables have Row Level Security on and no policies: only
  -- their owner, postgres and service roles that bypass RLS see rows.
  foreach t in array array[
    'users', 'identities', 'instances', 'audit_log_entries', 'sessions', 'refresh_tokens',
    'mfa_factors', 'mfa_challenges', 'mfa_amr_claims', 'one_time_tokens', 'flow_state',
    'sso_providers', 'sso_domains', 'saml_providers', 'saml_relay_states', 'schema_migrations'
  ] loop
    execute format('alter table auth.%I enable row level security', t);
    if su then
      execute format('alter table auth.%I owner to supabase_auth_admin', t);
    end if;
  end loop;
  if su then
    alter function auth.uid() owner to supabase_auth_admin;
    alter function auth.role() owner to supabase_auth_admin;
    alter function auth.email() owner to supabase_auth_admin;
    alter function auth.jwt() owner to supabase_auth_admin;
    alter type auth.aal_level owner to supabase_auth_admin;
    alter type auth.factor_type owner to supabase_auth_admin;
    alter type auth.factor_status owner to supabase_auth_admin;
    alter type auth.code_challenge_method owner to supabase_auth_admin;
    alter type auth.one_time_token_type owner to supabase_auth_admin;
  end if;

  grant all on schema auth to supabase_auth_admin, dashboard_user;
  grant usage on schema auth to postgres, anon, authenticated, service_role;
  grant all on all tables in schema auth to supabase_auth_admin, dashboard_user, postgres;
  grant all on all sequences in schema auth to supabase_auth_admin, dashboard_user, postgres;
  grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to postgres, anon, authenticated, service_role, dashboard_user;
end
$baseline$;

-- 4. storage: buckets, objects, uploads, and the path helpers policies use ----
do $baseline$
declare
  su boolean := (select rolsuper from pg_catalog.pg_roles where rolname = current_user);
  t text;
begin
  if current_setting('plover.baseline', true) is distinct from 'apply'
     or not starts_with(coalesce(obj_description(to_regnamespace('storage'), 'pg_namespace'), ''),
                        'plover supabase baseline') then
    return;
  end if;

  if to_regtype('storage.buckettype') is null then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;

  create table if not exists storage.buckets (
    id text not null,
    name text not null,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[],
    owner_id text,
    type storage.buckettype not null default 'STANDARD',
    constraint buckets_pkey primary key (id)
  );
  -- v1 made buckets without it
  alter table storage.buckets add column if not exists type storage.buckettype not null default 'STANDARD';
  create unique index if not exists bname on storage.buckets (name);
  comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

  create table if not exists storage.objects (
    id uuid not null default gen_random_uuid(),
    bucket_id text,
    name text,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata jsonb,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    version text,
    owner_id text,
    user_metadata jsonb,
    constraint objects_pkey primary key (id),
    constraint "objects_bucketId_fkey" foreign key (bucket_id) references storage.buckets (id)
  );
  create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
  create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);
  create index if not exists idx_objects_bucket_id_name on storage.objects (bucket_id, name collate "C");
  comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

  create table if not exists storage.migrations (
    id integer not null,
    name varchar(100) not null unique,
    hash varchar(40) not null,
    executed_at timestamp default current_timestamp,
    constraint migrations_pkey primary key (id)
  );

  create table if not exists storage.s3_multipart_uploads (
    id text not null,
    in_progress_size bigint not null default 0,
    upload_signature text not null,
    bucket_id text not null,
    key text collate "C" not null,
    version text not null,
    owner_id text,
    created_at timestamptz not null default now(),
    user_metadata jsonb,
    constraint s3_multipart_uploads_pkey primary key (id),
    constraint s3_multipart_uploads_bucket_id_fkey foreign key (bucket_id) references storage.buckets (id)
  );
  create table if not exists storage.s3_multipart_uploads_parts (
    id uuid not null default gen_random_uuid(),
    upload_id text not null,
    size bigint not null default 0,
    part_number integer not null,
    bucket_id text not null,
    key text collate "C" not null,
    etag text not null,
    owner_id text,
    version text not null,
    created_at timestamptz not null default now(),
    constraint s3_multipart_uploads_parts_pkey primary key (id),
    constraint s3_multipart_uploads_parts_upload_id_fkey foreign key (upload_id)
      references storage.s3_multipart_uploads (id) on delete cascade,
    constraint s3_multipart_uploads_parts_bucket_id_fkey foreign key (bucket_id) references storage.buckets (id)
  );

  -- 'a/b/c.png' -> {a,b}
  create or replace function storage.foldername(name text)
    returns text[]
    language sql
    immutable
  as $fn$
    select parts[1:array_length(parts, 1) - 1] from (select string_to_array(name, '/') as parts) p
  $fn$;

  -- 'a/b/c.png' -> 'c.png'
  create or replace function storage.filename(name text)
    returns text
    language sql
    immutable
  as $fn$
    select parts[array_length(parts, 1)] from (select string_to_array(name, '/') as parts) p
  $fn$;

  -- 'a/b/c.tar.gz' -> 'gz'
  create or replace function storage.extension(name text)
    returns text
    language sql
    immutable
  as $fn$
    select reverse(split_part(reverse(storage.filename(name)), '.', 1))
  $fn$;

  -- The storage service's listing call, simplified: the objects of a bucket
  -- under a prefix whose names contain `search`, by name.
  create or replace function storage.search(
    prefix text,
    bucketname text,
    limits integer default 100,
    levels integer default 1,
    offsets integer default 0,
    search text default '',
    sortcolumn text default 'name',
    sortorder text default 'asc'
  )
    returns table (
      name text, id uuid, updated_at timestamptz, created_at timestamptz,
      last_accessed_at timestamptz, metadata jsonb
    )
    language sql
    stable
  as $fn$
    select o.name, o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata
    from storage.objects o
    where o.bucket_id = bucketname
      and left(o.name, length(prefix)) = prefix
      and strpos(lower(o.name), lower(search)) > 0
    order by o.name
    limit limits offset offsets
  $fn$;

  create or replace function storage.get_size_by_bucket()
    returns table (size bigint, bucket_id text)
    language sql
    stable
  as $fn$
    select sum((o.metadata ->> 'size')::bigint)::bigint, o.bucket_id
    from storage.objects o
    group by o.bucket_id
  $fn$;

  create or replace function storage.operation()
    returns text
    language sql
    stable
  as $fn$ select current_setting('storage.operation', true) $fn$;

  create or replace function storage.update_updated_at_column()
    returns trigger
    language plpgsql
  as $fn$
  begin
    new.updated_at := now();
    return new;
  end
  $fn$;
  if not exists (
    select from pg_catalog.pg_trigger
    where tgname = 'update_objects_updated_at' and tgrelid = 'storage.objects'::regclass
  ) then
    create trigger update_objects_updated_at before update on storage.objects
      for each row execute function storage.update_updated_at_column();
  end if;

  foreach t in array array['buckets', 'objects', 'migrations', 's3_multipart_uploads', 's3_multipart_uploads_parts'] loop
    execute format('alter table storage.%I enable row level security', t);
    if su then
      execute format('alter table storage.%I owner to supabase_storage_admin', t);
    end if;
  end loop;
  if su then
    alter type storage.buckettype owner to supabase_storage_admin;
    alter function storage.foldername(text) owner to supabase_storage_admin;
    alter function storage.filename(text) owner to supabase_storage_admin;
    alter function storage.extension(text) owner to supabase_storage_admin;
    alter function storage.search(text, text, integer, integer, integer, text, text, text) owner to supabase_storage_admin;
    alter function storage.get_size_by_bucket() owner to supabase_storage_admin;
    alter function storage.operation() owner to supabase_storage_admin;
    alter function storage.update_updated_at_column() owner to supabase_storage_admin;
    alter default privileges for role supabase_storage_admin in schema storage
      grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_storage_admin in schema storage
      grant all on sequences to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_storage_admin in schema storage
      grant all on functions to postgres, anon, authenticated, service_role;
  end if;

  grant all on schema storage to supabase_storage_admin, dashboard_user;
  grant usage on schema storage to postgres, anon, authenticated, service_role;
  alter default privileges in schema storage grant all on tables to postgres, anon, authenticated, service_role;
  alter default privileges in schema storage grant all on sequences to postgres, anon, authenticated, service_role;
  alter default privileges in schema storage grant all on functions to postgres, anon, authenticated, service_role;
  grant all on storage.buckets, storage.objects, storage.migrations
    to postgres, anon, authenticated, service_role;
  grant all on storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts to postgres, service_role;
  grant select on storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts to anon, authenticated;
  grant execute on all functions in schema storage to postgres, anon, authenticated, service_role;
end
$baseline$;

-- 5. realtime: broadcast messages, subscriptions; publication supabase_realtime
do $baseline$
declare
  su boolean := (select rolsuper from pg_catalog.pg_roles where rolname = current_user);
begin
  if current_setting('plover.baseline', true) is distinct from 'apply' then
    return;
  end if;

  -- Supabase creates it empty; apps add their tables to it.
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;

  if not starts_with(coalesce(obj_description(to_regnamespace('realtime'), 'pg_namespace'), ''),
                     'plover supabase baseline') then
    return;
  end if;

  if to_regtype('realtime.equality_op') is null then
    create type realtime.equality_op as enum ('eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'in');
  end if;
  if to_regtype('realtime.action') is null then
    create type realtime.action as enum ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'ERROR');
  end if;
  if to_regtype('realtime.user_defined_filter') is null then
    create type realtime.user_defined_filter as (column_name text, op realtime.equality_op, value text);
  end if;

  create or replace function realtime.to_regrole(role_name text)
    returns regrole
    language sql
    immutable
  as $fn$ select role_name::regrole $fn$;

  create table if not exists realtime.subscription (
    id bigint not null generated always as identity,
    subscription_id uuid not null,
    entity regclass not null,
    filters realtime.user_defined_filter[] not null default '{}',
    claims jsonb not null,
    claims_role regrole not null generated always as (realtime.to_regrole(claims ->> 'role')) stored,
    created_at timestamp not null default timezone('utc', now()),
    action_filter text default '*' check (action_filter in ('*', 'INSERT', 'UPDATE', 'DELETE')),
    constraint pk_subscription primary key (id)
  );
  create index if not exists ix_realtime_subscription_entity on realtime.subscription (entity);

  -- Broadcast messages (Realtime Authorization's RLS policies go on this
  -- table). Realtime partitions it by day and makes the partitions itself;
  -- here there is none, so an insert fails and realtime.send only warns.
  create table if not exists realtime.messages (
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp not null default now(),
    inserted_at timestamp not null default now(),
    id uuid not null default gen_random_uuid(),
    constraint messages_pkey primary key (id, inserted_at)
  ) partition by range (inserted_at);
  create index if not exists messages_inserted_at_topic_index
    on realtime.messages (inserted_at desc, topic) where (extension = 'broadcast' and private is true);
  alter table realtime.messages enable row level security;

  create table if not exists realtime.schema_migrations (
    version bigint not null,
    inserted_at timestamp(0),
    constraint schema_migrations_pkey primary key (version)
  );

  create or replace function realtime.topic()
    returns text
    language sql
    stable
  as $fn$ select nullif(current_setting('realtime.topic', true), '')::text $fn$;

  create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
    returns void
    language plpgsql
  as $fn$
  declare
    message_id uuid := gen_random_uuid();
  begin
    begin
      perform set_config('realtime.topic', topic, true);
      insert into realtime.messages (id, payload, event, topic, private, extension)
      values (
        message_id,
        case when payload ? 'id' then payload else jsonb_set(payload, '{id}', to_jsonb(message_id)) end,
        event, topic, private, 'broadcast');
    exception when others then
      raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
    end;
  end
  $fn$;

  create or replace function realtime.broadcast_changes(
    topic_name text, event_name text, operation text, table_name text, table_schema text,
    new record, old record, level text default 'ROW'
  )
    returns void
    language plpgsql
  as $fn$
  begin
    if level = 'STATEMENT' then
      raise exception 'function can only be triggered for each row, not for each statement';
    end if;
    if operation not in ('INSERT', 'UPDATE', 'DELETE') then
      raise exception 'Unexpected operation type: %', operation;
    end if;
    perform realtime.send(
      jsonb_build_object('old_record', old, 'record', new, 'operation', operation,
                         'table', table_name, 'schema', table_schema),
      event_name, topic_name);
  end
  $fn$;

  if su then
    alter table realtime.subscription owner to supabase_realtime_admin;
    alter table realtime.messages owner to supabase_realtime_admin;
    alter table realtime.schema_migrations owner to supabase_realtime_admin;
    alter type realtime.equality_op owner to supabase_realtime_admin;
    alter type realtime.action owner to supabase_realtime_admin;
    alter type realtime.user_defined_filter owner to supabase_realtime_admin;
    alter function realtime.to_regrole(text) owner to supabase_realtime_admin;
    alter function realtime.topic() owner to supabase_realtime_admin;
    alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;
    alter function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
      owner to supabase_realtime_admin;
  end if;

  grant all on schema realtime to supabase_realtime_admin;
  grant usage on schema realtime to postgres, anon, authenticated, service_role;
  grant all on realtime.subscription, realtime.schema_migrations to postgres, dashboard_user;
  grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;
  grant execute on all functions in schema realtime to postgres, anon, authenticated, service_role;
end
$baseline$;

-- 6. The extensions Supabase enables by default, when this server has them ---
-- (pg_graphql makes schema graphql, pgsodium schema pgsodium, supabase_vault
-- schema vault, pg_net schema net; their control files name the schema.)
do $baseline$
declare
  ext text;
begin
  if current_setting('plover.baseline', true) is distinct from 'apply' then
    return;
  end if;

  foreach ext in array array['pg_graphql', 'pgsodium', 'supabase_vault'] loop
    if exists (select from pg_catalog.pg_available_extensions where name = ext) then
      execute format('create extension if not exists %I cascade', ext);
    end if;
  end loop;
  -- The Supabase CLI enables pg_net for database webhooks.
  if exists (select from pg_catalog.pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_net with schema extensions;
  end if;
  if to_regnamespace('net') is not null then
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
    grant execute on all functions in schema net
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
end
$baseline$;

-- 7. graphql_public: the GraphQL endpoint PostgREST exposes --------------------
do $baseline$
begin
  if current_setting('plover.baseline', true) is distinct from 'apply'
     or not starts_with(coalesce(obj_description(to_regnamespace('graphql_public'), 'pg_namespace'), ''),
                        'plover supabase baseline') then
    return;
  end if;

  grant usage on schema graphql_public to postgres, anon, authenticated, service_role;
  alter default privileges in schema graphql_public grant all on tables to postgres, anon, authenticated, service_role;
  alter default privileges in schema graphql_public grant all on sequences to postgres, anon, authenticated, service_role;
  alter default privileges in schema graphql_public grant all on functions to postgres, anon, authenticated, service_role;

  if to_regnamespace('graphql') is not null then
    grant usage on schema graphql to postgres, anon, authenticated, service_role;
    grant execute on all functions in schema graphql to postgres, anon, authenticated, service_role;
  end if;

  -- With pg_graphql: a wrapper of graphql.resolve, as Supabase installs it (with
  -- a fixed search path, so `db lint --live` has nothing to say about it).
  begin
    create or replace function graphql_public.graphql(
      "operationName" text default null,
      query text default null,
      variables jsonb default null,
      extensions jsonb default null
    )
      returns jsonb
      language sql
      set search_path = ''
    as $fn$
      select graphql.resolve(
        query := query,
        variables := coalesce(variables, '{}'),
        "operationName" := "operationName",
        extensions := extensions
      )
    $fn$;
  exception when undefined_function or invalid_schema_name or undefined_object then
    -- Without it: the placeholder Supabase keeps while pg_graphql is off.
    create or replace function graphql_public.graphql(
      "operationName" text default null,
      query text default null,
      variables jsonb default null,
      extensions jsonb default null
    )
      returns jsonb
      language sql
      set search_path = ''
    as $fn$
      select jsonb_build_object(
        'errors', jsonb_build_array(jsonb_build_object('message', 'pg_graphql extension is not enabled.')))
    $fn$;
  end;
  grant execute on function graphql_public.graphql(text, text, jsonb, jsonb)
    to postgres, anon, authenticated, service_role;
end
$baseline$;

-- 8. supabase_functions: database webhooks (the CLI's local set-up) ----------
do $baseline$
declare
  su boolean := (select rolsuper from pg_catalog.pg_roles where rolname = current_user);
begin
  if current_setting('plover.baseline', true) is distinct from 'apply'
     or not starts_with(coalesce(obj_description(to_regnamespace('supabase_functions'), 'pg_namespace'), ''),
                        'plover supabase baseline') then
    return;
  end if;

  create table if not exists supabase_functions.migrations (
    version text not null,
    inserted_at timestamptz not null default now(),
    constraint migrations_pkey primary key (version)
  );
  insert into supabase_functions.migrations (version)
  values ('initial'), ('20210809183423_update_grants')
  on conflict do nothing;

  create table if not exists supabase_functions.hooks (
    id bigserial not null,
    hook_table_id integer not null,
    hook_name text not null,
    created_at timestamptz not null default now(),
    request_id bigint,
    constraint hooks_pkey primary key (id)
  );
  create index if not exists supabase_functions_hooks_request_id_idx on supabase_functions.hooks (request_id);
  create index if not exists supabase_functions_hooks_h_table_id_h_name_idx
    on supabase_functions.hooks (hook_table_id, hook_name);
  comment on table supabase_functions.hooks is 'Supabase Functions Hooks: Audit trail for triggered hooks.';

  -- The trigger function webhooks use: its arguments are the URL, the method
  -- (GET or POST), headers and params (JSON) and a timeout in ms. It calls
  -- pg_net (net.http_get / net.http_post) when the row changes.
  create or replace function supabase_functions.http_request()
    returns trigger
    language plpgsql
    security definer
    set search_path = supabase_functions
  as $fn$
  declare
    url text := tg_argv[0]::text;
    method text := tg_argv[1]::text;
    headers jsonb := coalesce(nullif(tg_argv[2], 'null')::jsonb, '{"Content-Type": "application/json"}');
    params jsonb := coalesce(nullif(tg_argv[3], 'null')::jsonb, '{}');
    timeout_ms integer := coalesce(nullif(tg_argv[4], 'null')::integer, 1000);
    request_id bigint;
  begin
    if url is null or url = 'null' then
      raise exception 'url argument is missing';
    end if;
    if method = 'GET' then
      select net.http_get(url, params, headers, timeout_ms) into request_id;
    elsif method = 'POST' then
      select net.http_post(
        url,
        jsonb_build_object('old_record', old, 'record', new, 'type', tg_op,
                           'table', tg_table_name, 'schema', tg_table_schema),
        params, headers, timeout_ms
      ) into request_id;
    else
      raise exception 'method argument % is invalid', method;
    end if;
    insert into supabase_functions.hooks (hook_table_id, hook_name, request_id)
    values (tg_relid, tg_name, request_id);
    return new;
  end
  $fn$;
  revoke all on function supabase_functions.http_request() from public;

  if su then
    alter table supabase_functions.migrations owner to supabase_functions_admin;
    alter table supabase_functions.hooks owner to supabase_functions_admin;
    alter function supabase_functions.http_request() owner to supabase_functions_admin;
  end if;
  grant all on schema supabase_functions to supabase_functions_admin;
  grant usage on schema supabase_functions to postgres, anon, authenticated, service_role;
  alter default privileges in schema supabase_functions grant all on tables to postgres, anon, authenticated, service_role;
  alter default privileges in schema supabase_functions grant all on sequences to postgres, anon, authenticated, service_role;
  alter default privileges in schema supabase_functions grant all on functions to postgres, anon, authenticated, service_role;
  grant all on all tables in schema supabase_functions to supabase_functions_admin, postgres, anon, authenticated, service_role;
  grant all on all sequences in schema supabase_functions to supabase_functions_admin, postgres, anon, authenticated, service_role;
  grant execute on function supabase_functions.http_request() to postgres, anon, authenticated, service_role;
end
$baseline$;

-- 9. pgjwt's functions, when the pgjwt extension is not there ----------------
do $baseline$
begin
  if current_setting('plover.baseline', true) is distinct from 'apply'
     or exists (select from pg_catalog.pg_extension where extname = 'pgjwt') then
    return;
  end if;

  -- base64url without padding
  create or replace function extensions.url_encode(data bytea)
    returns text
    language sql
    immutable
  as $fn$ select translate(encode(data, 'base64'), E'+/=\n', '-_') $fn$;

  create or replace function extensions.url_decode(data text)
    returns bytea
    language sql
    immutable
  as $fn$
    select decode(rpad(translate(data, '-_', '+/'), (length(data) + 3) / 4 * 4, '='), 'base64')
  $fn$;

  -- HS256, HS384 or HS512 over `signables`, base64url-encoded. pgcrypto's hmac
  -- is looked up when called, in extensions then public.
  create or replace function extensions.algorithm_sign(signables text, secret text, algorithm text)
    returns text
    language plpgsql
    immutable
    set search_path = extensions, public
  as $fn$
  declare
    digest text := case algorithm
      when 'HS256' then 'sha256' when 'HS384' then 'sha384' when 'HS512' then 'sha512' end;
  begin
    if digest is null then
      raise exception 'unsupported JWT algorithm %', algorithm;
    end if;
    return extensions.url_encode(hmac(signables, secret, digest));
  end
  $fn$;

  create or replace function extensions.sign(payload json, secret text, algorithm text default 'HS256')
    returns text
    language sql
    immutable
  as $fn$
    select signables || '.' || extensions.algorithm_sign(signables, secret, algorithm)
    from (
      select extensions.url_encode(convert_to(json_build_object('alg', algorithm, 'typ', 'JWT')::text, 'utf8'))
             || '.' || extensions.url_encode(convert_to(payload::text, 'utf8')) as signables
    ) s
  $fn$;

  create or replace function extensions.try_cast_double(inp text)
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

  -- The signature is checked, and `exp` / `nbf` when the payload has them.
  create or replace function extensions.verify(token text, secret text, algorithm text default 'HS256')
    returns table (header json, payload json, valid boolean)
    language sql
    immutable
  as $fn$
    select h, p,
           parts[3] = extensions.algorithm_sign(parts[1] || '.' || parts[2], secret, algorithm)
           and coalesce(extensions.try_cast_double(p ->> 'exp') > extract(epoch from now()), true)
           and coalesce(extensions.try_cast_double(p ->> 'nbf') <= extract(epoch from now()), true)
    from (select string_to_array(token, '.') as parts) t,
         lateral (select convert_from(extensions.url_decode(parts[1]), 'utf8')::json as h,
                         convert_from(extensions.url_decode(parts[2]), 'utf8')::json as p) d
  $fn$;
end
$baseline$;

-- 10. The version marker (see the top of this file) ---------------------------
do $baseline$
begin
  if current_setting('plover.baseline', true) is distinct from 'apply' then
    return;
  end if;
  create or replace function extensions.plover_shim_version()
    returns integer
    language sql
    immutable
  as $fn$ select 2 $fn$;
  comment on function extensions.plover_shim_version() is 'plover supabase baseline v2';
  grant execute on function extensions.plover_shim_version() to anon, authenticated, service_role;
end
$baseline$;

reset plover.baseline;
