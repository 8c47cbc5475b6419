-- plover stand-in for pg_jsonschema 0.3.3, written for plover (not Supabase's code).
--
-- The real pg_jsonschema is a Rust extension implementing JSON Schema in full.
-- This stand-in has its functions and signatures and checks the keywords that
-- CHECK constraints in migrations mostly use: type, enum, const, required,
-- properties, additionalProperties, items, minItems, maxItems, uniqueItems,
-- minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum,
-- exclusiveMaximum, anyOf, allOf, oneOf, not. Other keywords ($ref, format,
-- dependencies…) are accepted without being checked.

\echo Use "CREATE EXTENSION pg_jsonschema" to load this file. \quit

-- The errors of `instance` against `schema`, each prefixed with its JSON path.
create function @extschema@._errors(schema jsonb, instance jsonb, path text)
  returns text[]
  language plpgsql
  immutable
  set search_path from current
as $fn$
declare
  errors text[] := '{}';
  kind text := jsonb_typeof(instance);
  expected jsonb;
  key text;
  sub jsonb;
  n integer;
begin
  if schema is null or schema = 'true'::jsonb then
    return errors;
  end if;
  if schema = 'false'::jsonb then
    return array[path || ': no value is allowed here'];
  end if;
  if jsonb_typeof(schema) <> 'object' then
    return errors;
  end if;

  expected := schema -> 'type';
  if expected is not null then
    if jsonb_typeof(expected) = 'string' then
      expected := jsonb_build_array(expected);
    end if;
    if not exists (
      select from jsonb_array_elements_text(expected) t
      where t = kind
         or (t = 'integer' and case when kind = 'number' then (instance #>> '{}')::numeric % 1 = 0 else false end)
    ) then
      errors := errors || (path || ': ' || kind || ' is not of type ' || expected::text);
      return errors;
    end if;
  end if;

  if schema ? 'enum' and not (schema -> 'enum') @> jsonb_build_array(instance) then
    errors := errors || (path || ': ' || instance::text || ' is not one of ' || (schema -> 'enum')::text);
  end if;
  if schema ? 'const' and instance <> schema -> 'const' then
    errors := errors || (path || ': ' || instance::text || ' is not ' || (schema -> 'const')::text);
  end if;

  if kind = 'object' then
    for key in select jsonb_array_elements_text(coalesce(schema -> 'required', '[]')) loop
      if not instance ? key then
        errors := errors || (path || ': "' || key || '" is a required property');
      end if;
    end loop;
    for key, sub in select * from jsonb_each(instance) loop
      if schema -> 'properties' ? key then
        errors := errors || _errors(schema -> 'properties' -> key, sub, path || '.' || key);
      elsif schema ? 'additionalProperties' then
        errors := errors || _errors(schema -> 'additionalProperties', sub, path || '.' || key);
      end if;
    end loop;
  elsif kind = 'array' then
    n := jsonb_array_length(instance);
    if schema ? 'items' and jsonb_typeof(schema -> 'items') in ('object', 'boolean') then
      for key, sub in select (ordinality - 1)::text, value from jsonb_array_elements(instance) with ordinality loop
        errors := errors || _errors(schema -> 'items', sub, path || '[' || key || ']');
      end loop;
    end if;
    if n < (schema ->> 'minItems')::integer then
      errors := errors || (path || ': fewer than ' || (schema ->> 'minItems') || ' items');
    end if;
    if n > (schema ->> 'maxItems')::integer then
      errors := errors || (path || ': more than ' || (schema ->> 'maxItems') || ' items');
    end if;
    if (schema ->> 'uniqueItems')::boolean
       and (select count(distinct value) from jsonb_array_elements(instance)) < n then
      errors := errors || (path || ': items are not unique');
    end if;
  elsif kind = 'string' then
    if length(instance #>> '{}') < (schema ->> 'minLength')::integer then
      errors := errors || (path || ': shorter than ' || (schema ->> 'minLength') || ' characters');
    end if;
    if length(instance #>> '{}') > (schema ->> 'maxLength')::integer then
      errors := errors || (path || ': longer than ' || (schema ->> 'maxLength') || ' characters');
    end if;
    if schema ? 'pattern' and (instance #>> '{}') !~ (schema ->> 'pattern') then
      errors := errors || (path || ': does not match ' || (schema -> 'pattern')::text);
    end if;
  elsif kind = 'number' then
    if (instance #>> '{}')::numeric < (schema ->> 'minimum')::numeric then
      errors := errors || (path || ': less than the minimum ' || (schema ->> 'minimum'));
    end if;
    if (instance #>> '{}')::numeric > (schema ->> 'maximum')::numeric then
      errors := errors || (path || ': greater than the maximum ' || (schema ->> 'maximum'));
    end if;
    if jsonb_typeof(schema -> 'exclusiveMinimum') = 'number'
       and (instance #>> '{}')::numeric <= (schema ->> 'exclusiveMinimum')::numeric then
      errors := errors || (path || ': not greater than ' || (schema ->> 'exclusiveMinimum'));
    end if;
    if jsonb_typeof(schema -> 'exclusiveMaximum') = 'number'
       and (instance #>> '{}')::numeric >= (schema ->> 'exclusiveMaximum')::numeric then
      errors := errors || (path || ': not less than ' || (schema ->> 'exclusiveMaximum'));
    end if;
  end if;

  for sub in select jsonb_array_elements(coalesce(schema -> 'allOf', '[]')) loop
    errors := errors || _errors(sub, instance, path);
  end loop;
  if schema ? 'anyOf' and not exists (
    select from jsonb_array_elements(schema -> 'anyOf') s
    where cardinality(_errors(s, instance, path)) = 0
  ) then
    errors := errors || (path || ': matches none of anyOf');
  end if;
  if schema ? 'oneOf' and (
    select count(*) from jsonb_array_elements(schema -> 'oneOf') s
    where cardinality(_errors(s, instance, path)) = 0
  ) <> 1 then
    errors := errors || (path || ': does not match exactly one of oneOf');
  end if;
  if schema ? 'not' and cardinality(_errors(schema -> 'not', instance, path)) = 0 then
    errors := errors || (path || ': matches the schema in not');
  end if;
  return errors;
end
$fn$;

create function @extschema@.jsonb_matches_schema(schema json, instance jsonb)
  returns boolean
  language sql
  immutable
  set search_path from current
as $fn$ select cardinality(_errors(schema::jsonb, instance, '$')) = 0 $fn$;

create function @extschema@.json_matches_schema(schema json, instance json)
  returns boolean
  language sql
  immutable
  set search_path from current
as $fn$ select cardinality(_errors(schema::jsonb, instance::jsonb, '$')) = 0 $fn$;

create function @extschema@.jsonschema_validation_errors(schema json, instance json)
  returns text[]
  language sql
  immutable
  set search_path from current
as $fn$ select _errors(schema::jsonb, instance::jsonb, '$') $fn$;

-- A schema is accepted when it is an object or a boolean.
create function @extschema@.jsonschema_is_valid(schema json)
  returns boolean
  language sql
  immutable
as $fn$ select json_typeof(schema) in ('object', 'boolean') $fn$;
