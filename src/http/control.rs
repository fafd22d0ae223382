//! `GET /ws`: upgrades to the control socket.

use axum::extract::{State, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;

use super::InRoom;
use crate::control::{self, Context};
use crate::state::AppState;

#[utoipa::path(get, path = "/ws", tag = "session", params(("room" = Option<String>, Query, description = "The room's slug; `main` when left out")),
    responses((status = 101, description = "The control socket: JSON messages with a `type` (see the README)"),
        (status = 400, description = "Not a WebSocket upgrade"), (status = 404, description = "No such room")))]
pub async fn upgrade(
    State(state): State<AppState>,
    InRoom(room): InRoom,
    parts: Parts,
    ws: WebSocketUpgrade,
) -> Response {
    let peer = super::client_address(&parts);
    let ctx = Context {
        room,
        rooms: state.rooms.clone(),
        library: state.library.clone(),
        clock: state.clock.clone(),
        metrics: state.metrics.clone(),
        shutdown: state.shutdown.clone(),
    };
    // Up to 1 MiB is read (and answered with an error past 64 KiB); beyond, the socket closes.
    ws.max_message_size(1024 * 1024).on_upgrade(move |socket| control::run(socket, ctx, peer))
}
