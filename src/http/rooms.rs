//! Rooms over REST: anyone lists them (names, listeners); the admin key creates, renames and
//! deletes them and rotates their GM keys, and sees the keys in every answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{AppError, AppResult, ErrorBody};
use super::library::ApiPath;
use super::{Admin, ApiJson};
use crate::clock::{unix_ms, Clock};
use crate::rooms::{Room, Rooms};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(rename_room, delete_room))
        .routes(routes!(rotate_room_key))
}

/// A room as listed.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    slug: String,
    name: String,
    /// Listener pages connected now.
    listeners: usize,
    /// Something plays (not paused, not stopped).
    playing: bool,
    /// What plays, if anything.
    now_playing: Option<String>,
    /// Ambience layers playing.
    layers: usize,
    /// Its parts are being rendered (someone asked for one in the last 30 s): what costs CPU.
    rendering: bool,
    /// Unix ms.
    created_at: i64,
    /// The listener page.
    listen_url: String,
    /// The GM's dashboard (add `?key=` with the room's key).
    gm_url: String,
    /// The live stream, for any HLS player.
    stream_url: String,
    /// The room's GM key: only in answers to the admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    gm_key: Option<String>,
}

impl RoomInfo {
    /// `room` at `now_ms`; its GM key only for the `admin`.
    fn of(room: &Room, admin: bool, now_ms: u64) -> Self {
        let state = room.stage.state();
        let slug = room.slug.to_string();
        RoomInfo {
            listeners: room.listeners.count(),
            playing: state.now_playing.is_some() && !state.paused && !state.stopped,
            now_playing: state.now_playing.as_ref().map(|n| n.title.clone()),
            layers: state.layers.len(),
            rendering: room.live.rendering(now_ms),
            created_at: room.created_at,
            listen_url: format!("/r/{slug}/"),
            gm_url: format!("/r/{slug}/gm"),
            stream_url: format!("/hls/{slug}/live.m3u8"),
            gm_key: admin.then(|| room.gm_key()),
            name: room.name(),
            slug,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RoomList {
    rooms: Vec<RoomInfo>,
    /// Rooms this server holds at most (`MAX_ROOMS`).
    #[serde(rename = "maxRooms")]
    max_rooms: usize,
}

/// An optional admin key: `Some(true)` with the admin key, `Some(false)` without a key; a
/// wrong key is refused (and counted) as anywhere else.
struct MaybeAdmin(bool);

impl axum::extract::FromRequestParts<AppState> for MaybeAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
            return Ok(MaybeAdmin(false));
        }
        <Admin as axum::extract::FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        Ok(MaybeAdmin(true))
    }
}

#[utoipa::path(get, path = "/api/rooms", tag = "rooms",
    responses((status = 200, description = "Every room, oldest first; with the admin key, each room's GM key too", body = RoomList),
        (status = 403, description = "A key was sent and it is not the admin key", body = ErrorBody)))]
async fn list_rooms(
    MaybeAdmin(admin): MaybeAdmin,
    State(rooms): State<Rooms>,
    State(clock): State<Arc<dyn Clock>>,
) -> ApiJson<RoomList> {
    let now = unix_ms(clock.now());
    let list = rooms.list().iter().map(|r| RoomInfo::of(r, admin, now)).collect();
    ApiJson(RoomList { rooms: list, max_rooms: rooms.max_rooms() })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    /// 1-80 characters.
    name: String,
    /// 2-40 of a-z, 0-9 and `-`, starting with a letter; made from the name when left out.
    slug: Option<String>,
}

#[utoipa::path(post, path = "/api/rooms", tag = "rooms", security(("gm_key" = [])), request_body = NewRoom,
    responses((status = 201, description = "The new room with its GM key", body = RoomInfo),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 409, description = "The slug is taken, or the server holds MAX_ROOMS rooms", body = ErrorBody)))]
async fn create_room(
    _: Admin,
    State(rooms): State<Rooms>,
    State(clock): State<Arc<dyn Clock>>,
    ApiJson(body): ApiJson<NewRoom>,
) -> AppResult<(StatusCode, ApiJson<RoomInfo>)> {
    let room = rooms.create(body.slug.as_deref(), &body.name).await?;
    Ok((StatusCode::CREATED, ApiJson(RoomInfo::of(&room, true, unix_ms(clock.now())))))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RoomPatch {
    name: String,
}

#[utoipa::path(patch, path = "/api/rooms/{slug}", tag = "rooms", security(("gm_key" = [])), request_body = RoomPatch,
    params(("slug" = String, Path, description = "The room")),
    responses((status = 200, description = "The room, renamed", body = RoomInfo), (status = 400, description = "A bad name", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody)))]
async fn rename_room(
    _: Admin,
    State(rooms): State<Rooms>,
    State(clock): State<Arc<dyn Clock>>,
    ApiPath(slug): ApiPath<String>,
    ApiJson(body): ApiJson<RoomPatch>,
) -> AppResult<ApiJson<RoomInfo>> {
    let room = rooms.rename(&slug, &body.name).await?;
    Ok(ApiJson(RoomInfo::of(&room, true, unix_ms(clock.now()))))
}

#[utoipa::path(delete, path = "/api/rooms/{slug}", tag = "rooms", security(("gm_key" = [])), params(("slug" = String, Path, description = "The room")),
    responses((status = 204, description = "Deleted: its listeners were told, its stream stopped, its saved state is gone"),
        (status = 404, description = "No such room", body = ErrorBody), (status = 409, description = "The room `main` cannot be deleted", body = ErrorBody)))]
async fn delete_room(_: Admin, State(rooms): State<Rooms>, ApiPath(slug): ApiPath<String>) -> AppResult<StatusCode> {
    rooms.delete(&slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/rooms/{slug}/key", tag = "rooms", security(("gm_key" = [])), params(("slug" = String, Path, description = "The room")),
    responses((status = 200, description = "The room with its new GM key; the old key no longer works", body = RoomInfo),
        (status = 404, description = "No such room", body = ErrorBody)))]
async fn rotate_room_key(
    _: Admin,
    State(rooms): State<Rooms>,
    State(clock): State<Arc<dyn Clock>>,
    ApiPath(slug): ApiPath<String>,
) -> AppResult<ApiJson<RoomInfo>> {
    let room = rooms.rotate_key(&slug).await?;
    Ok(ApiJson(RoomInfo::of(&room, true, unix_ms(clock.now()))))
}
