//! The money tracker's queries, on one connection shared by all requests.
//!
//! Every statement is a constant with `$n` parameters, prepared once at boot (so a
//! schema the code does not match fails the boot, not a request). Values cross as
//! text both ways (`$1::text::uuid`, `amount::text`), so no decimal, date or uuid
//! crates are needed. The service connects as the database owner, which bypasses
//! Row Level Security: every query filters by `user_id` itself. This module must not
//! build SQL from values or decide HTTP statuses.

use anyhow::{Context, Result};
use plover::ConnInfo;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls, Row, Statement};

/// plover's history for this app, as `/healthz` reports it.
const HEALTH: &str = "
SELECT max(version), count(*)
  FROM plover.migrations
 WHERE app = $1 AND state = 'applied'";

/// A user's transactions with `occurred_on` in `[$2, $3)`.
const LIST_TRANSACTIONS: &str = "
SELECT t.id::text, t.category_id::text, c.name, c.kind, t.amount::text, t.occurred_on::text, t.note
  FROM public.transactions t
  JOIN public.categories c ON c.id = t.category_id AND c.user_id = t.user_id
 WHERE t.user_id = $1::text::uuid
   AND t.occurred_on >= $2::text::date
   AND t.occurred_on < $3::text::date
 ORDER BY t.occurred_on, t.created_at, t.id";

/// Inserts a transaction and returns it as [`LIST_TRANSACTIONS`] does. The composite
/// foreign key refuses a category of another user (SQLSTATE 23503).
const INSERT_TRANSACTION: &str = "
WITH t AS (
  INSERT INTO public.transactions (user_id, category_id, amount, occurred_on, note)
  VALUES ($1::text::uuid, $2::text::uuid, $3::text::numeric,
          coalesce($4::text::date, current_date), $5::text)
  RETURNING id, user_id, category_id, amount, occurred_on, note
)
SELECT t.id::text, t.category_id::text, c.name, c.kind, t.amount::text, t.occurred_on::text, t.note
  FROM t
  JOIN public.categories c ON c.id = t.category_id AND c.user_id = t.user_id";

/// A user's budgets for the month starting `$2`, against what was spent.
const BUDGETS: &str = "
SELECT b.id::text, b.category_id::text, c.name, b.month::text,
       b.amount_limit::text,
       round(coalesce(s.total, 0), 2)::text,
       round(b.amount_limit - coalesce(s.total, 0), 2)::text,
       coalesce(s.total, 0) > b.amount_limit,
       coalesce(s.transaction_count, 0)
  FROM public.budgets b
  JOIN public.categories c ON c.id = b.category_id AND c.user_id = b.user_id
  LEFT JOIN public.monthly_spending s
    ON s.user_id = b.user_id AND s.category_id = b.category_id AND s.month = b.month
 WHERE b.user_id = $1::text::uuid AND b.month = $2::text::date
 ORDER BY c.name, b.id";

/// The connection and its prepared statements.
pub struct Db {
    client: Client,
    health: Statement,
    list_transactions: Statement,
    insert_transaction: Statement,
    budgets: Statement,
}

/// What plover's history says about this app.
#[derive(Debug)]
pub struct Health {
    pub schema_version: Option<i64>,
    pub migrations: i64,
}

/// A transaction as the API shows it.
#[derive(Debug, Serialize)]
pub struct Transaction {
    pub id: String,
    pub category_id: String,
    pub category: String,
    pub kind: String,
    pub amount: String,
    pub occurred_on: String,
    pub note: Option<String>,
}

/// A transaction to record, as the API takes it; checked by the caller first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTransaction {
    pub category_id: String,
    pub amount: String,
    /// Today (the database's `current_date`) when absent.
    pub occurred_on: Option<String>,
    pub note: Option<String>,
}

/// A budget and what was spent against it.
#[derive(Debug, Serialize)]
pub struct Budget {
    pub id: String,
    pub category_id: String,
    pub category: String,
    pub month: String,
    pub amount_limit: String,
    pub spent: String,
    pub remaining: String,
    pub over_budget: bool,
    pub transaction_count: i64,
}

impl Db {
    /// Connects to `conn` and prepares every statement.
    pub async fn connect(conn: &ConnInfo) -> Result<Db> {
        let (client, connection) = conn
            .config()
            .connect(NoTls)
            .await
            .with_context(|| format!("connecting to {conn}"))?;
        tokio::spawn(async move {
            match connection.await {
                Ok(()) => tracing::debug!("database connection closed"),
                Err(e) => {
                    tracing::error!(error = %e, "database connection lost; requests will fail until the app restarts")
                }
            }
        });
        let prepare = async |sql: &str, what: &str| {
            client.prepare(sql).await.with_context(|| {
                format!(
                    "preparing the {what} query; does the schema match the embedded migrations?"
                )
            })
        };
        Ok(Db {
            health: prepare(HEALTH, "health").await?,
            list_transactions: prepare(LIST_TRANSACTIONS, "transaction list").await?,
            insert_transaction: prepare(INSERT_TRANSACTION, "transaction insert").await?,
            budgets: prepare(BUDGETS, "budget").await?,
            client,
        })
    }

    /// The newest applied version and the number of applied migrations of `app`.
    pub async fn health(&self, app: &str) -> Result<Health, tokio_postgres::Error> {
        let row = self.client.query_one(&self.health, &[&app]).await?;
        Ok(Health {
            schema_version: row.try_get(0)?,
            migrations: row.try_get(1)?,
        })
    }

    /// A user's transactions with `occurred_on` in `[from, to)` (dates as text;
    /// `-infinity` and `infinity` for no bound).
    pub async fn transactions(
        &self,
        user_id: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<Transaction>, tokio_postgres::Error> {
        let rows = self
            .client
            .query(&self.list_transactions, &[&user_id, &from, &to])
            .await?;
        rows.iter().map(transaction).collect()
    }

    /// Records a transaction for `user_id` and returns it.
    pub async fn create_transaction(
        &self,
        user_id: &str,
        new: &NewTransaction,
    ) -> Result<Transaction, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                &self.insert_transaction,
                &[
                    &user_id,
                    &new.category_id,
                    &new.amount,
                    &new.occurred_on,
                    &new.note,
                ],
            )
            .await?;
        transaction(&row)
    }

    /// A user's budgets for the month whose first day is `month` (`YYYY-MM-01`).
    pub async fn budgets(
        &self,
        user_id: &str,
        month: &str,
    ) -> Result<Vec<Budget>, tokio_postgres::Error> {
        let rows = self
            .client
            .query(&self.budgets, &[&user_id, &month])
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Budget {
                    id: r.try_get(0)?,
                    category_id: r.try_get(1)?,
                    category: r.try_get(2)?,
                    month: r.try_get(3)?,
                    amount_limit: r.try_get(4)?,
                    spent: r.try_get(5)?,
                    remaining: r.try_get(6)?,
                    over_budget: r.try_get(7)?,
                    transaction_count: r.try_get(8)?,
                })
            })
            .collect()
    }
}

fn transaction(r: &Row) -> Result<Transaction, tokio_postgres::Error> {
    Ok(Transaction {
        id: r.try_get(0)?,
        category_id: r.try_get(1)?,
        category: r.try_get(2)?,
        kind: r.try_get(3)?,
        amount: r.try_get(4)?,
        occurred_on: r.try_get(5)?,
        note: r.try_get(6)?,
    })
}
