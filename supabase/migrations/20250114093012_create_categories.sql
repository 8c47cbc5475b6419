-- Categories: each user's own list of income and expense categories.

create table if not exists public.categories (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null,
  kind text not null,
  created_at timestamp with time zone not null default now(),
  constraint categories_pkey primary key (id),
  -- target of the (category_id, user_id) foreign keys: a row can only point at
  -- a category of the same user
  constraint categories_id_user_id_key unique (id, user_id),
  constraint categories_user_id_kind_name_key unique (user_id, kind, name),
  constraint categories_kind_check check (kind in ('income', 'expense')),
  constraint categories_name_check check (char_length(btrim(name)) between 1 and 80)
);

comment on table public.categories is 'A user''s income and expense categories.';
comment on column public.categories.kind is 'income or expense; decides the sign of a transaction''s amount.';

alter table public.categories enable row level security;

drop policy if exists "Users can view their own categories" on public.categories;
create policy "Users can view their own categories"
  on public.categories
  for select
  to authenticated
  using ((select auth.uid()) = user_id);

drop policy if exists "Users can create their own categories" on public.categories;
create policy "Users can create their own categories"
  on public.categories
  for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

drop policy if exists "Users can update their own categories" on public.categories;
create policy "Users can update their own categories"
  on public.categories
  for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

drop policy if exists "Users can delete their own categories" on public.categories;
create policy "Users can delete their own categories"
  on public.categories
  for delete
  to authenticated
  using ((select auth.uid()) = user_id);

revoke all on table public.categories from anon;
grant select, insert, update, delete on table public.categories to authenticated;
grant all on table public.categories to service_role;
