-- Each user sees and changes only their own rows.
begin;
select plan(5);

insert into auth.users (id, email) values
  ('11111111-1111-1111-1111-111111111111', 'ada@example.com'),
  ('22222222-2222-2222-2222-222222222222', 'bob@example.com');

insert into public.categories (id, user_id, name, kind) values
  ('aaaaaaaa-0000-0000-0000-000000000001', '11111111-1111-1111-1111-111111111111', 'Rent', 'expense'),
  ('bbbbbbbb-0000-0000-0000-000000000002', '22222222-2222-2222-2222-222222222222', 'Salary', 'income');

-- Act as Ada, as PostgREST would for her token.
set local role authenticated;
set local request.jwt.claims to '{"sub": "11111111-1111-1111-1111-111111111111", "role": "authenticated"}';

select results_eq(
  'select name from public.categories',
  array['Rent'],
  'Ada sees only her category'
);
select lives_ok(
  $$insert into public.categories (name, kind) values ('Food', 'expense')$$,
  'Ada can add a category (user_id defaults to auth.uid())'
);
select throws_ok(
  $$insert into public.categories (user_id, name, kind)
    values ('22222222-2222-2222-2222-222222222222', 'Sneaky', 'expense')$$,
  '42501',
  null,
  'Ada cannot add a category for Bob'
);
select is_empty(
  $$update public.categories set name = 'Mine' where kind = 'income' returning id$$,
  'Ada cannot change Bob''s category'
);

reset role;
set local role anon;
select throws_ok(
  'select count(*) from public.categories',
  '42501',
  null,
  'anon has no access at all'
);

select * from finish();
rollback;
