-- Undoes 20250224113540_add_updated_at_columns.sql (`cargo xtask db down`): the
-- triggers, the columns (their values are lost) and the function.

drop trigger if exists budgets_set_updated_at on public.budgets;
drop trigger if exists transactions_set_updated_at on public.transactions;
drop trigger if exists categories_set_updated_at on public.categories;

alter table public.budgets drop column if exists updated_at;
alter table public.transactions drop column if exists updated_at;
alter table public.categories drop column if exists updated_at;

drop function if exists public.set_updated_at();
