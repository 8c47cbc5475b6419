-- updated_at on every table, maintained by a trigger.

create or replace function public.set_updated_at()
returns trigger
language plpgsql
security invoker
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;

comment on function public.set_updated_at() is 'Trigger: sets updated_at to now() on every update.';

revoke execute on function public.set_updated_at() from public, anon, authenticated;

alter table public.categories
  add column if not exists updated_at timestamp with time zone not null default now();
alter table public.transactions
  add column if not exists updated_at timestamp with time zone not null default now();
alter table public.budgets
  add column if not exists updated_at timestamp with time zone not null default now();

create or replace trigger categories_set_updated_at
  before update on public.categories
  for each row execute function public.set_updated_at();

create or replace trigger transactions_set_updated_at
  before update on public.transactions
  for each row execute function public.set_updated_at();

create or replace trigger budgets_set_updated_at
  before update on public.budgets
  for each row execute function public.set_updated_at();
