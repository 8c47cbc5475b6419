-- The money tracker's tables, their row level security and policies.
begin;
select plan(7);

select has_table('public', 'categories', 'categories exists');
select has_table('public', 'transactions', 'transactions exists');
select has_table('public', 'budgets', 'budgets exists');
select ok(
  (select bool_and(relrowsecurity) from pg_class
   where oid in ('public.categories'::regclass, 'public.transactions'::regclass, 'public.budgets'::regclass)),
  'row level security is on for every table'
);
select policies_are(
  'public', 'categories',
  array[
    'Users can view their own categories',
    'Users can create their own categories',
    'Users can update their own categories',
    'Users can delete their own categories'
  ]
);
select col_is_pk('public', 'transactions', 'id', 'transactions are keyed by id');
select table_privs_are('public', 'categories', 'anon', array[]::text[], 'anon has no access to categories');

select * from finish();
rollback;
