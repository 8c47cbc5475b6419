-- Monthly spending per expense category, and each budget against it.
-- security_invoker: the view runs with the caller's rights, so the RLS
-- policies of transactions and categories still apply through it.

create or replace view public.monthly_spending
with (security_invoker = true)
as
select
  t.user_id,
  date_trunc('month', t.occurred_on)::date as month,
  c.id as category_id,
  c.name as category_name,
  sum(t.amount) as total,
  count(*) as transaction_count
from public.transactions t
join public.categories c
  on c.id = t.category_id
  and c.user_id = t.user_id
where c.kind = 'expense'
group by t.user_id, date_trunc('month', t.occurred_on)::date, c.id, c.name;

comment on view public.monthly_spending is 'Spending per user, month and expense category.';

revoke all on table public.monthly_spending from anon;
grant select on table public.monthly_spending to authenticated, service_role;

create or replace function public.budget_status(
  p_month date default date_trunc('month', current_date)::date
)
returns table (
  category_id uuid,
  category_name text,
  month date,
  amount_limit numeric,
  spent numeric,
  remaining numeric
)
language sql
stable
security invoker
set search_path = ''
as $$
  select
    b.category_id,
    c.name,
    b.month,
    b.amount_limit,
    coalesce(s.total, 0),
    b.amount_limit - coalesce(s.total, 0)
  from public.budgets b
  join public.categories c
    on c.id = b.category_id
    and c.user_id = b.user_id
  left join public.monthly_spending s
    on s.user_id = b.user_id
    and s.category_id = b.category_id
    and s.month = b.month
  where b.month = date_trunc('month', p_month)::date
  order by c.name;
$$;

comment on function public.budget_status(date) is
  'The caller''s budgets for the month of p_month, with what was spent and what remains.';

revoke execute on function public.budget_status(date) from public, anon;
grant execute on function public.budget_status(date) to authenticated, service_role;
