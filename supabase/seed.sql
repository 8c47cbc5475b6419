-- Seed data for local development (`supabase db reset`, `cargo xtask db reset-local`).
-- Idempotent: every insert skips rows that already exist.
--
-- Two users, both with the password `password123`:
--   alice@example.com  11111111-1111-4111-8111-111111111111
--   bob@example.com    22222222-2222-4222-8222-222222222222

insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
  confirmation_token, recovery_token, email_change_token_new, email_change
)
values
  (
    '00000000-0000-0000-0000-000000000000', '11111111-1111-4111-8111-111111111111',
    'authenticated', 'authenticated', 'alice@example.com',
    extensions.crypt('password123', extensions.gen_salt('bf')), now(),
    '{"provider": "email", "providers": ["email"]}', '{"display_name": "Alice"}', false, now(), now(),
    '', '', '', ''
  ),
  (
    '00000000-0000-0000-0000-000000000000', '22222222-2222-4222-8222-222222222222',
    'authenticated', 'authenticated', 'bob@example.com',
    extensions.crypt('password123', extensions.gen_salt('bf')), now(),
    '{"provider": "email", "providers": ["email"]}', '{"display_name": "Bob"}', false, now(), now(),
    '', '', '', ''
  )
on conflict (id) do nothing;

-- Email sign-in needs an identity per user.
insert into auth.identities (id, user_id, provider_id, provider, identity_data, last_sign_in_at, created_at, updated_at)
select
  u.id, u.id, u.id::text, 'email',
  jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true),
  now(), now(), now()
from auth.users u
where u.id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222')
on conflict do nothing;

insert into public.categories (id, user_id, name, kind)
values
  ('a0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111', 'Salary', 'income'),
  ('a0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111', 'Groceries', 'expense'),
  ('a0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111', 'Rent', 'expense'),
  ('a0000000-0000-4000-8000-000000000004', '11111111-1111-4111-8111-111111111111', 'Eating out', 'expense'),
  ('b0000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222', 'Freelance', 'income'),
  ('b0000000-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222', 'Groceries', 'expense')
on conflict do nothing;

insert into public.transactions (id, user_id, category_id, amount, occurred_on, note)
values
  ('a1000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   'a0000000-0000-4000-8000-000000000001', 3200.00, '2025-03-01', 'March salary'),
  ('a1000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'a0000000-0000-4000-8000-000000000003', 1150.00, '2025-03-02', 'Rent'),
  ('a1000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111',
   'a0000000-0000-4000-8000-000000000002', 84.37, '2025-03-04', 'Weekly shop'),
  ('a1000000-0000-4000-8000-000000000004', '11111111-1111-4111-8111-111111111111',
   'a0000000-0000-4000-8000-000000000002', 61.90, '2025-03-11', 'Weekly shop'),
  ('a1000000-0000-4000-8000-000000000005', '11111111-1111-4111-8111-111111111111',
   'a0000000-0000-4000-8000-000000000004', 42.50, '2025-03-14', 'Dinner with Sam'),
  ('b1000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222',
   'b0000000-0000-4000-8000-000000000001', 900.00, '2025-03-05', 'Invoice #12'),
  ('b1000000-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222',
   'b0000000-0000-4000-8000-000000000002', 120.15, '2025-03-06', null)
on conflict do nothing;

insert into public.budgets (id, user_id, category_id, month, amount_limit)
values
  ('a2000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   'a0000000-0000-4000-8000-000000000002', '2025-03-01', 400.00)
on conflict do nothing;
