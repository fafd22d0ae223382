//! The session over REST: `GET /api/session` and every GM command as `POST /api/session/<command>`.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;

use super::error::AppResult;
use super::library::ApiPath;
use super::{ApiJson, Gm};
use crate::room::{parse_command, RoomHandle, SessionState};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/session", get(session)).route("/api/session/{command}", post(command))
}

async fn session(State(room): State<RoomHandle>) -> ApiJson<SessionState> {
    ApiJson((*room.state()).clone())
}

async fn command(
    _: Gm,
    State(room): State<RoomHandle>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> AppResult<ApiJson<SessionState>> {
    let command = parse_command(&name, &body)?;
    Ok(ApiJson(room.command(command).await?))
}
