//! Device checks over REST: the `/check` page sends its result (no key: any listener's device
//! may run it), the GM lists recent ones (GM key: device names are the players').

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::error::{AppError, AppResult, ErrorBody};
use super::library::ApiQuery;
use super::{ApiJson, Gm};
use crate::clock::unix_ms;
use crate::device_check::{CheckReport, StoredCheck, KEPT_CHECKS};
use crate::library::Library;
use crate::rate_limit::TokenBucket;
use crate::state::AppState;

/// Checks a burst may send at once; then one per REFILL_SECONDS (a table has a dozen
/// devices; a script posting in a loop must not push the real ones out of the kept few hundred).
const BURST: f64 = 20.0;
const REFILL_SECONDS: f64 = 3.0;

/// One bucket over every sender.
#[derive(Clone)]
struct Intake(Arc<Mutex<TokenBucket>>);

impl Intake {
    fn new() -> Self {
        Intake(Arc::new(Mutex::new(TokenBucket::new(BURST, 1.0 / REFILL_SECONDS))))
    }

    /// Takes one report; the whole seconds to wait when it is refused.
    fn take(&self) -> Result<(), u64> {
        let Ok(mut bucket) = self.0.lock() else { return Ok(()) };
        bucket.take(Instant::now()).map_err(|wait| wait.as_secs_f64().ceil() as u64)
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(submit_check, list_checks).layer(Extension(Intake::new())))
}

#[derive(Serialize, utoipa::ToSchema)]
struct CheckList {
    items: Vec<StoredCheck>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// How many, newest first (1–500, default 100).
    limit: Option<u32>,
}

/// Keeps one device's check, counts it in `/metrics` and shows it on the GM's listeners panel.
#[utoipa::path(post, path = "/api/reports", tag = "checks", request_body = CheckReport,
    responses((status = 201, description = "The check as kept", body = StoredCheck),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 429, description = "Too many checks sent lately; Retry-After says when to try again", body = ErrorBody)))]
async fn submit_check(
    Extension(intake): Extension<Intake>,
    State(state): State<AppState>,
    ApiJson(mut report): ApiJson<CheckReport>,
) -> AppResult<(StatusCode, ApiJson<StoredCheck>)> {
    intake.take().map_err(AppError::TooManyRequests)?;
    report.normalize().map_err(AppError::BadRequest)?;
    let received_at = unix_ms(state.clock.now());
    let stored = state.library.call(move |db| db.add_device_check(received_at, &report)).await?;
    state.metrics.count_device_check(stored.report.engine, stored.report.verdict);
    if let Some(client) = &stored.report.client_id {
        for room in state.rooms.list() {
            room.listeners.attach_check(client, stored.summary());
        }
    }
    tracing::info!(
        device = %stored.report.device,
        engine = stored.report.engine.label(),
        verdict = stored.report.verdict.label(),
        "device check received"
    );
    Ok((StatusCode::CREATED, ApiJson(stored)))
}

/// The newest device checks, newest first.
#[utoipa::path(get, path = "/api/reports", tag = "checks", security(("gm_key" = [])), params(ListQuery),
    responses((status = 200, description = "Recent device checks", body = CheckList),
        (status = 400, description = "A bad field, named", body = ErrorBody)))]
async fn list_checks(
    _: Gm,
    State(lib): State<Library>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<ApiJson<CheckList>> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=KEPT_CHECKS).contains(&limit) {
        return Err(AppError::BadRequest(format!("limit must be 1–{KEPT_CHECKS}")));
    }
    let items = lib.call(move |db| db.device_checks(limit)).await?;
    Ok(ApiJson(CheckList { items }))
}
