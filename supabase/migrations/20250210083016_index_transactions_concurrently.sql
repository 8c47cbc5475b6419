-- plover:no-transaction
-- Built without locking out writes; CREATE INDEX CONCURRENTLY cannot run inside
-- a transaction block, hence the directive above.

create index concurrently if not exists transactions_user_id_occurred_on_idx
  on public.transactions (user_id, occurred_on desc);

create index concurrently if not exists transactions_category_id_idx
  on public.transactions (category_id);
