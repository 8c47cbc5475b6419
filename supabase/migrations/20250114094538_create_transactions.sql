-- Transactions: money in or out, always positive; the category's kind gives the sign.

create table if not exists public.transactions (
  id uuid not null default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  category_id uuid not null,
  amount numeric(12, 2) not null,
  occurred_on date not null default current_date,
  note text,
  created_at timestamp with time zone not null default now(),
  constraint transactions_pkey primary key (id),
  -- the category must belong to the same user; a category that still has
  -- transactions cannot be deleted (checked at the end of the statement, so
  -- deleting the user, which cascades to both tables, still works)
  constraint transactions_category_id_user_id_fkey
    foreign key (category_id, user_id) references public.categories (id, user_id),
  constraint transactions_amount_check check (amount > 0),
  constraint transactions_note_check check (note is null or char_length(note) <= 500)
);

comment on table public.transactions is 'Money a user received or spent, one row per transaction.';

alter table public.transactions enable row level security;

drop policy if exists "Users can view their own transactions" on public.transactions;
create policy "Users can view their own transactions"
  on public.transactions
  for select
  to authenticated
  using ((select auth.uid()) = user_id);

drop policy if exists "Users can create their own transactions" on public.transactions;
create policy "Users can create their own transactions"
  on public.transactions
  for insert
  to authenticated
  with check ((select auth.uid()) = user_id);

drop policy if exists "Users can update their own transactions" on public.transactions;
create policy "Users can update their own transactions"
  on public.transactions
  for update
  to authenticated
  using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);

drop policy if exists "Users can delete their own transactions" on public.transactions;
create policy "Users can delete their own transactions"
  on public.transactions
  for delete
  to authenticated
  using ((select auth.uid()) = user_id);

revoke all on table public.transactions from anon;
grant select, insert, update, delete on table public.transactions to authenticated;
grant all on table public.transactions to service_role;
