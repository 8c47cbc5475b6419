-- Budgets: a monthly spending limit per expense category.

create table if not exists public.budgets (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  category_id uuid not null,
  month date not null,
  amount_limit numeric(12, 2) not null,
  created_at timestamp with time zone not null default now(),
  constraint budgets_pkey primary key (id),
  constraint budgets_category_id_user_id_fkey
    foreign key (category_id, user_id) references public.categories (id, user_id) on delete cascade,
  constraint budgets_user_id_category_id_month_key unique (user_id, category_id, month),
  constraint budgets_month_check check (month = date_trunc('month', month)::date),
  constraint budgets_amount_limit_check check (amount_limit > 0)
);

create index if not exists budgets_category_id_idx on public.budgets (category_id);

comment on table public.budgets is 'A spending limit for one category in one month.';
comment on column public.budgets.month is 'The first day of the month the budget applies to.';

alter table public.budgets enable row level security;

drop policy if exists "Users can view their own budgets" on public.budgets;
create policy "Users can view their own budgets"
  on public.budgets
  for select
  to authenticated
  using ((select auth.uid()) = user_id);

drop policy if exists "Users can create their own budgets" on public.budgets;
create policy "Users can create their own budgets"
  on public.budgets
  for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

drop policy if exists "Users can update their own budgets" on public.budgets;
create policy "Users can update their own budgets"
  on public.budgets
  for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

drop policy if exists "Users can delete their own budgets" on public.budgets;
create policy "Users can delete their own budgets"
  on public.budgets
  for delete
  to authenticated
  using ((select auth.uid()) = user_id);

revoke all on table public.budgets from anon;
grant select, insert, update, delete on table public.budgets to authenticated;
grant all on table public.budgets to service_role;
