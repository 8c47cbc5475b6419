//! The HTTP API: routes, request checking, and statuses for results and database
//! errors.
//!
//! Every response body is JSON, errors included (`{"error": "..."}`). Bad input is a
//! 400, whether this module or a database constraint catches it; a server-side fault
//! is a 500 whose details go to the log, not to the client. This module holds no SQL.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio_postgres::error::SqlState;

use plover::describe;

use crate::db::{Budget, Db, NewTransaction, Transaction};
use crate::input::{self, Month};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Db>,
    /// The app name of plover's history rows.
    pub app: &'static str,
}

/// All routes; anything else is a JSON 404.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/users/{user_id}/transactions",
            get(list_transactions).post(create_transaction),
        )
        .route("/users/{user_id}/budgets/{month}", get(budgets))
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// An error response: a status and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = match r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError {
            status,
            message: r.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request(r.body_text())
    }
}

/// Input errors the database caught become 400s (409 for a duplicate); anything else
/// is logged and becomes a 500, or a 503 when the connection is gone.
impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if let Some(message) = db.constraint().and_then(constraint_message) {
                return ApiError::bad_request(message);
            }
            if *code == SqlState::UNIQUE_VIOLATION {
                return ApiError {
                    status: StatusCode::CONFLICT,
                    message: db.message().to_owned(),
                };
            }
            // class 22: data exceptions (a date not in the calendar, an overflow)
            if [
                SqlState::FOREIGN_KEY_VIOLATION,
                SqlState::CHECK_VIOLATION,
                SqlState::NOT_NULL_VIOLATION,
            ]
            .contains(code)
                || code.code().starts_with("22")
            {
                return ApiError::bad_request(db.message());
            }
        }
        if e.is_closed() {
            tracing::error!(error = %describe(&e), "database connection is closed");
            return ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "database unavailable".into(),
            };
        }
        tracing::error!(error = %describe(&e), "database query failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
        }
    }
}

/// Messages for the constraints a client can break, by constraint name.
fn constraint_message(constraint: &str) -> Option<&'static str> {
    Some(match constraint {
        "transactions_amount_check" => "amount must be greater than 0",
        "transactions_note_check" => "note must be at most 500 characters",
        "transactions_category_id_user_id_fkey" => {
            "category_id is not one of this user's categories; create the category first"
        }
        "transactions_user_id_fkey" => "user does not exist",
        _ => return None,
    })
}

fn check(result: Result<(), String>) -> Result<(), ApiError> {
    result.map_err(ApiError::bad_request)
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.health(state.app).await {
        Ok(h) => Json(json!({
            "status": "ok",
            "schema_version": h.schema_version,
            "migrations": h.migrations,
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %describe(&e), "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "error": "database unavailable" })),
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// `YYYY-MM`; all transactions when absent.
    month: Option<String>,
}

async fn list_transactions(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<Transaction>>, ApiError> {
    let Path(user_id) = path?;
    let Query(query) = query?;
    check(input::uuid("user_id", &user_id))?;
    let (from, to) = match query.month {
        Some(m) => {
            let month = Month::parse("month", &m).map_err(ApiError::bad_request)?;
            (month.first_day(), month.next().first_day())
        }
        None => ("-infinity".to_owned(), "infinity".to_owned()),
    };
    Ok(Json(state.db.transactions(&user_id, &from, &to).await?))
}

async fn create_transaction(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<NewTransaction>, JsonRejection>,
) -> Result<(StatusCode, Json<Transaction>), ApiError> {
    let Path(user_id) = path?;
    let Json(new) = body?;
    check(input::uuid("user_id", &user_id))?;
    check(input::uuid("category_id", &new.category_id))?;
    check(input::amount("amount", &new.amount))?;
    if let Some(d) = &new.occurred_on {
        check(input::date("occurred_on", d))?;
    }
    let created = state.db.create_transaction(&user_id, &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn budgets(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Vec<Budget>>, ApiError> {
    let Path((user_id, month)) = path?;
    check(input::uuid("user_id", &user_id))?;
    let month = Month::parse("month", &month).map_err(ApiError::bad_request)?;
    Ok(Json(state.db.budgets(&user_id, &month.first_day()).await?))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("no route for {}", uri.path()),
    }
}

/// One log line per request: method, path (not the query), status and duration.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        took = ?started.elapsed(),
        "request"
    );
    response
}
