-- plover stand-in for pgmq 1.5.1, written for plover (not pgmq's code).
--
-- pgmq keeps each queue as a table pgmq.q_<name> (and its archive pgmq.a_<name>)
-- and hands messages out with a visibility timeout. This stand-in does the same in
-- PL/pgSQL with pgmq's names, types and signatures, so migrations that create
-- queues and functions that send, read, archive and delete messages work; it is a
-- working queue. Partitioned queues (pg_partman) are created as plain ones and
-- notifications are not sent.

\echo Use "CREATE EXTENSION pgmq" to load this file. \quit

create table @extschema@.meta (
  queue_name varchar unique not null,
  is_partitioned boolean not null,
  is_unlogged boolean not null,
  created_at timestamp with time zone not null default now()
);

create type @extschema@.message_record as (
  msg_id bigint,
  read_ct integer,
  enqueued_at timestamp with time zone,
  vt timestamp with time zone,
  message jsonb,
  headers jsonb
);

create type @extschema@.queue_record as (
  queue_name varchar,
  is_partitioned boolean,
  is_unlogged boolean,
  created_at timestamp with time zone
);

create type @extschema@.metrics_result as (
  queue_name text,
  queue_length bigint,
  newest_msg_age_sec integer,
  oldest_msg_age_sec integer,
  total_messages bigint,
  scrape_time timestamp with time zone,
  queue_visible_length bigint
);

-- q_<name> or a_<name>, refusing names that would not make a table name.
create function @extschema@.format_table_name(queue_name text, prefix text)
  returns text
  language plpgsql
  immutable
as $fn$
begin
  if queue_name !~ '^[A-Za-z0-9_-]+$' then
    raise exception 'queue name contains invalid characters: %', queue_name;
  end if;
  if length(prefix || '_' || queue_name) > 47 then
    raise exception 'queue name is too long, maximum length is % characters', 47 - length(prefix) - 1;
  end if;
  return lower(prefix || '_' || queue_name);
end
$fn$;

create function @extschema@.create(queue_name text)
  returns void
  language plpgsql
as $fn$
declare
  q text := @extschema@.format_table_name(queue_name, 'q');
  a text := @extschema@.format_table_name(queue_name, 'a');
begin
  execute format(
    'create table if not exists @extschema@.%I (
       msg_id bigint primary key generated always as identity,
       read_ct integer not null default 0,
       enqueued_at timestamp with time zone not null default now(),
       vt timestamp with time zone not null,
       message jsonb,
       headers jsonb
     )', q);
  execute format(
    'create table if not exists @extschema@.%I (
       msg_id bigint primary key,
       read_ct integer not null default 0,
       enqueued_at timestamp with time zone not null default now(),
       archived_at timestamp with time zone not null default now(),
       vt timestamp with time zone not null,
       message jsonb,
       headers jsonb
     )', a);
  execute format('create index if not exists %I on @extschema@.%I (vt asc)', q || '_vt_idx', q);
  execute format('create index if not exists %I on @extschema@.%I (archived_at)', 'archived_at_idx_' || queue_name, a);
  insert into @extschema@.meta as m (queue_name, is_partitioned, is_unlogged)
  values ("create".queue_name, false, false)
  on conflict on constraint meta_queue_name_key do nothing;
end
$fn$;

create function @extschema@.create_non_partitioned(queue_name text)
  returns void
  language sql
as $fn$ select @extschema@.create(queue_name) $fn$;

create function @extschema@.create_unlogged(queue_name text)
  returns void
  language sql
as $fn$ select @extschema@.create(queue_name) $fn$;

create function @extschema@.create_partitioned(
  queue_name text,
  partition_interval text default '10000',
  retention_interval text default '100000'
)
  returns void
  language sql
as $fn$ select @extschema@.create(queue_name) $fn$;

create function @extschema@.drop_queue(queue_name text)
  returns boolean
  language plpgsql
as $fn$
begin
  if not exists (select from @extschema@.meta m where m.queue_name = drop_queue.queue_name) then
    raise notice 'pgmq: queue % does not exist', queue_name;
    return false;
  end if;
  execute format('drop table if exists @extschema@.%I', @extschema@.format_table_name(queue_name, 'q'));
  execute format('drop table if exists @extschema@.%I', @extschema@.format_table_name(queue_name, 'a'));
  delete from @extschema@.meta m where m.queue_name = drop_queue.queue_name;
  return true;
end
$fn$;

create function @extschema@.detach_archive(queue_name text)
  returns void
  language sql
as $fn$ select $fn$;

create function @extschema@.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
  returns setof bigint
  language plpgsql
as $fn$
begin
  return query execute format(
    'insert into @extschema@.%I (vt, message, headers)
     select $2, m.message, h.header
     from unnest($1) with ordinality as m(message, n)
     left join unnest($3) with ordinality as h(header, n) using (n)
     order by n
     returning msg_id',
    @extschema@.format_table_name(queue_name, 'q')
  ) using msgs, delay, headers;
end
$fn$;

create function @extschema@.send_batch(queue_name text, msgs jsonb[], delay integer default 0)
  returns setof bigint
  language sql
as $fn$
  select @extschema@.send_batch(queue_name, msgs, null::jsonb[], clock_timestamp() + make_interval(secs => delay))
$fn$;

create function @extschema@.send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone)
  returns setof bigint
  language sql
as $fn$ select @extschema@.send_batch(queue_name, msgs, null::jsonb[], delay) $fn$;

create function @extschema@.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer default 0)
  returns setof bigint
  language sql
as $fn$
  select @extschema@.send_batch(queue_name, msgs, headers, clock_timestamp() + make_interval(secs => delay))
$fn$;

create function @extschema@.send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone)
  returns setof bigint
  language sql
as $fn$ select @extschema@.send_batch(queue_name, array[msg], array[headers], delay) $fn$;

create function @extschema@.send(queue_name text, msg jsonb, delay integer default 0)
  returns setof bigint
  language sql
as $fn$
  select @extschema@.send_batch(queue_name, array[msg], null::jsonb[], clock_timestamp() + make_interval(secs => delay))
$fn$;

create function @extschema@.send(queue_name text, msg jsonb, delay timestamp with time zone)
  returns setof bigint
  language sql
as $fn$ select @extschema@.send_batch(queue_name, array[msg], null::jsonb[], delay) $fn$;

create function @extschema@.send(queue_name text, msg jsonb, headers jsonb, delay integer default 0)
  returns setof bigint
  language sql
as $fn$
  select @extschema@.send_batch(queue_name, array[msg], array[headers], clock_timestamp() + make_interval(secs => delay))
$fn$;

-- Hands out up to qty visible messages, hiding them for vt seconds.
create function @extschema@.read(queue_name text, vt integer, qty integer, conditional jsonb default '{}')
  returns setof @extschema@.message_record
  language plpgsql
as $fn$
begin
  return query execute format(
    'with picked as (
       select msg_id from @extschema@.%1$I
       where vt <= clock_timestamp() and message @> $3
       order by msg_id
       limit $2
       for update skip locked
     )
     update @extschema@.%1$I q
     set vt = clock_timestamp() + make_interval(secs => $1), read_ct = q.read_ct + 1
     from picked
     where q.msg_id = picked.msg_id
     returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers',
    @extschema@.format_table_name(queue_name, 'q')
  ) using vt, qty, coalesce(conditional, '{}');
end
$fn$;

create function @extschema@.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer default 5,
  poll_interval_ms integer default 100,
  conditional jsonb default '{}'
)
  returns setof @extschema@.message_record
  language plpgsql
as $fn$
declare
  stop_at timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
  r @extschema@.message_record;
  found boolean;
begin
  loop
    found := false;
    for r in select * from @extschema@.read(queue_name, vt, qty, conditional) loop
      found := true;
      return next r;
    end loop;
    exit when found or clock_timestamp() >= stop_at;
    perform pg_sleep(poll_interval_ms / 1000.0);
  end loop;
  return;
end
$fn$;

create function @extschema@.pop(queue_name text)
  returns setof @extschema@.message_record
  language plpgsql
as $fn$
begin
  return query execute format(
    'with picked as (
       select msg_id from @extschema@.%1$I
       where vt <= clock_timestamp()
       order by msg_id
       limit 1
       for update skip locked
     )
     delete from @extschema@.%1$I q using picked
     where q.msg_id = picked.msg_id
     returning q.msg_id, q.read_ct, q.enqueued_at, q.vt, q.message, q.headers',
    @extschema@.format_table_name(queue_name, 'q')
  );
end
$fn$;

create function @extschema@.archive(queue_name text, msg_ids bigint[])
  returns setof bigint
  language plpgsql
as $fn$
begin
  return query execute format(
    'with gone as (
       delete from @extschema@.%I where msg_id = any($1)
       returning msg_id, read_ct, enqueued_at, vt, message, headers
     )
     insert into @extschema@.%I (msg_id, read_ct, enqueued_at, vt, message, headers)
     select msg_id, read_ct, enqueued_at, vt, message, headers from gone
     returning msg_id',
    @extschema@.format_table_name(queue_name, 'q'),
    @extschema@.format_table_name(queue_name, 'a')
  ) using msg_ids;
end
$fn$;

create function @extschema@.archive(queue_name text, msg_id bigint)
  returns boolean
  language sql
as $fn$ select exists (select from @extschema@.archive(queue_name, array[msg_id])) $fn$;

create function @extschema@.delete(queue_name text, msg_ids bigint[])
  returns setof bigint
  language plpgsql
as $fn$
begin
  return query execute format(
    'delete from @extschema@.%I where msg_id = any($1) returning msg_id',
    @extschema@.format_table_name(queue_name, 'q')
  ) using msg_ids;
end
$fn$;

create function @extschema@.delete(queue_name text, msg_id bigint)
  returns boolean
  language sql
as $fn$ select exists (select from @extschema@.delete(queue_name, array[msg_id])) $fn$;

create function @extschema@.purge_queue(queue_name text)
  returns bigint
  language plpgsql
as $fn$
declare
  n bigint;
begin
  execute format('with gone as (delete from @extschema@.%I returning 1) select count(*) from gone',
                 @extschema@.format_table_name(queue_name, 'q')) into n;
  return n;
end
$fn$;

create function @extschema@.set_vt(queue_name text, msg_id bigint, vt integer)
  returns setof @extschema@.message_record
  language plpgsql
as $fn$
begin
  return query execute format(
    'update @extschema@.%I set vt = clock_timestamp() + make_interval(secs => $2)
     where msg_id = $1
     returning msg_id, read_ct, enqueued_at, vt, message, headers',
    @extschema@.format_table_name(queue_name, 'q')
  ) using msg_id, vt;
end
$fn$;

create function @extschema@.list_queues()
  returns setof @extschema@.queue_record
  language sql
  stable
as $fn$ select queue_name, is_partitioned, is_unlogged, created_at from @extschema@.meta order by queue_name $fn$;

create function @extschema@.metrics(queue_name text)
  returns @extschema@.metrics_result
  language plpgsql
as $fn$
declare
  result @extschema@.metrics_result;
begin
  execute format(
    'select $1, count(*),
            extract(epoch from clock_timestamp() - max(enqueued_at))::integer,
            extract(epoch from clock_timestamp() - min(enqueued_at))::integer,
            coalesce((select max(msg_id) from @extschema@.%1$I), 0),
            clock_timestamp(),
            count(*) filter (where vt <= clock_timestamp())
     from @extschema@.%1$I',
    @extschema@.format_table_name(queue_name, 'q')
  ) into result using queue_name;
  return result;
end
$fn$;

create function @extschema@.metrics_all()
  returns setof @extschema@.metrics_result
  language sql
as $fn$ select (@extschema@.metrics(queue_name)).* from @extschema@.meta order by queue_name $fn$;
