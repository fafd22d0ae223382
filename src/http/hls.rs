//! Live HLS: the multivariant playlist, media playlists with blocking reload, init, parts
//! and segments.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_http::compression::CompressionLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::error::{AppError, AppResult, ErrorBody};
use super::library::{ApiPath, ApiQuery};
use crate::clock::unix_ms;
use crate::room::playlist::{self, BlockError};
use crate::room::timeline::PART_MS;
use crate::rooms::Room;
use crate::state::AppState;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The room `main`'s stream at `/hls/…`, every room's at `/hls/{slug}/…` (the same grid,
/// the same relative URIs).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Playlists are text and worth gzip; media is already compressed.
        .routes(routes!(multivariant).layer(CompressionLayer::new()))
        // Media playlists come gzipped from the live memo.
        .routes(routes!(media_playlist_or_room))
        .routes(routes!(init))
        .routes(routes!(part))
        .routes(routes!(segment))
        .routes(routes!(room_media_playlist))
        .routes(routes!(room_init))
        .routes(routes!(room_part))
        .routes(routes!(room_segment))
}

fn rendition_index(room: &Room, name: &str) -> AppResult<usize> {
    room.live.rendition(name).ok_or(AppError::NotFound("rendition"))
}

fn room_of(state: &AppState, slug: &str) -> AppResult<Arc<Room>> {
    state.rooms.get(slug).ok_or(AppError::NotFound("room"))
}

/// `123.m4s` → 123.
fn grid_number(file: &str) -> AppResult<u64> {
    file.strip_suffix(".m4s").and_then(|n| n.parse().ok()).ok_or(AppError::NotFound("media file"))
}

/// Whether grid part `part` can be served at `now_ms`: published, and not older than the
/// timeline remembers (older parts were cacheable for a year; the origin forgets them).
fn servable(part: u64, now_ms: u64) -> Result<(), Unservable> {
    let latest = playlist::latest_part(now_ms);
    if part > latest {
        return Err(Unservable::NotYet);
    }
    if part + crate::room::actor::KEEP_PARTS < latest {
        return Err(Unservable::Expired);
    }
    Ok(())
}

/// Why a grid part cannot be served.
enum Unservable {
    /// Not published yet: a 404 no cache may keep.
    NotYet,
    /// Older than the timeline remembers.
    Expired,
}

impl IntoResponse for Unservable {
    fn into_response(self) -> Response {
        match self {
            Unservable::NotYet => not_yet(),
            Unservable::Expired => AppError::NotFound("expired media file").into_response(),
        }
    }
}

fn not_yet() -> Response {
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "not published yet").into_response()
}

fn media(bytes: bytes::Bytes, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        ],
        Body::from(bytes),
    )
        .into_response()
}

#[utoipa::path(get, path = "/hls/live.m3u8", tag = "stream",
    responses((status = 200, description = "The room `main`'s multivariant playlist: one variant per bitrate", content_type = "application/vnd.apple.mpegurl", body = String)))]
async fn multivariant(State(state): State<AppState>) -> Response {
    multivariant_of(&state.rooms.main())
}

fn multivariant_of(room: &Room) -> Response {
    let text = playlist::multivariant(room.live.cache().ladder()).to_string();
    ([(header::CONTENT_TYPE, PLAYLIST_TYPE), (header::CACHE_CONTROL, "public, max-age=60")], text).into_response()
}

/// The blocking reload directives; others (e.g. `_HLS_skip`) are ignored.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Blocking {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<u64>,
}

/// Whether the client takes gzip, read from the request without copying its headers.
struct AcceptsGzip(bool);

impl<S: Send + Sync> FromRequestParts<S> for AcceptsGzip {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(AcceptsGzip(accepts_gzip(&parts.headers)))
    }
}

/// Whether `Accept-Encoding` names gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut params = coding.split(';').map(str::trim);
            let name = params.next().unwrap_or_default();
            let refused =
                params.any(|p| p.replace(' ', "").strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

#[utoipa::path(get, path = "/hls/{name}/live.m3u8", tag = "stream", params(("name" = String, Path, description = "A rendition of the room `main` (`256k`: its LL-HLS media playlist), or a room's slug (its multivariant playlist)"), Blocking),
    responses((status = 200, description = "The media playlist (with `_HLS_msn`, and `_HLS_part`, held until that part is published), or a room's multivariant playlist", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 400, description = "A bad blocking request", body = ErrorBody), (status = 404, description = "No such rendition or room", body = ErrorBody),
        (status = 503, description = "The part asked for is too far ahead, or was not published in time", body = ErrorBody)))]
async fn media_playlist_or_room(
    State(state): State<AppState>,
    AcceptsGzip(gzip_ok): AcceptsGzip,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<Blocking>,
) -> AppResult<Response> {
    let main = state.rooms.main();
    if main.live.rendition(&name).is_some() {
        return media_playlist(&state, &main, gzip_ok, q).await;
    }
    Ok(multivariant_of(&*room_of(&state, &name)?))
}

#[utoipa::path(get, path = "/hls/{slug}/{rendition}/live.m3u8", tag = "stream",
    params(("slug" = String, Path, description = "The room"), ("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`"), Blocking),
    responses((status = 200, description = "The room's LL-HLS media playlist; with `_HLS_msn` (and `_HLS_part`) held until that part is published", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 400, description = "A bad blocking request", body = ErrorBody), (status = 404, description = "No such room or rendition", body = ErrorBody),
        (status = 503, description = "The part asked for is too far ahead, or was not published in time", body = ErrorBody)))]
async fn room_media_playlist(
    State(state): State<AppState>,
    AcceptsGzip(gzip_ok): AcceptsGzip,
    ApiPath((slug, rendition)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<Blocking>,
) -> AppResult<Response> {
    let room = room_of(&state, &slug)?;
    rendition_index(&room, &rendition)?;
    media_playlist(&state, &room, gzip_ok, q).await
}

async fn media_playlist(state: &AppState, room: &Room, gzip_ok: bool, q: Blocking) -> AppResult<Response> {
    let now = unix_ms(state.clock.now());
    let target = playlist::blocking_target(now, q.msn, q.part).map_err(|e| match e {
        BlockError::BadRequest(m) => AppError::BadRequest(m.into()),
        BlockError::TooFar => AppError::Unavailable("the requested part is too far ahead".into()),
    })?;
    if let Some(target) = target {
        if !published_within(room, target, playlist::MAX_BLOCK_MS + 500).await {
            return Err(AppError::Unavailable("the requested part was not published in time".into()));
        }
    }
    let rendered = room.live.playlist(unix_ms(state.clock.now()));
    // A blocking answer is keyed by its query and stays true; a plain reload goes stale in a part.
    let cache = if target.is_some() { "public, max-age=6" } else { "public, max-age=0, s-maxage=0" };
    let headers =
        [(header::CONTENT_TYPE, PLAYLIST_TYPE), (header::CACHE_CONTROL, cache), (header::VARY, "accept-encoding")];
    Ok(match rendered.gzip.filter(|_| gzip_ok) {
        Some(gzip) => (headers, [(header::CONTENT_ENCODING, "gzip")], gzip).into_response(),
        None => (headers, rendered.text).into_response(),
    })
}

/// Waits (parked on the one part-clock notification) until grid part `part` is published;
/// false after `timeout_ms`.
async fn published_within(room: &Room, part: u64, timeout_ms: u64) -> bool {
    let mut published = room.stage.published();
    tokio::time::timeout(Duration::from_millis(timeout_ms), published.wait_for(|p| *p >= part))
        .await
        .is_ok_and(|r| r.is_ok())
}

#[utoipa::path(get, path = "/hls/{rendition}/init.mp4", tag = "stream", params(("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`")),
    responses((status = 200, description = "The rendition's init segment (the room `main`'s; every room's is the same)", content_type = "audio/mp4", body = Vec<u8>),
        (status = 404, description = "No such rendition", body = ErrorBody)))]
async fn init(State(state): State<AppState>, ApiPath(rendition): ApiPath<String>) -> AppResult<Response> {
    init_of(&state.rooms.main(), &rendition)
}

#[utoipa::path(get, path = "/hls/{slug}/{rendition}/init.mp4", tag = "stream",
    params(("slug" = String, Path, description = "The room"), ("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`")),
    responses((status = 200, description = "The rendition's init segment", content_type = "audio/mp4", body = Vec<u8>),
        (status = 404, description = "No such room or rendition", body = ErrorBody)))]
async fn room_init(
    State(state): State<AppState>,
    ApiPath((slug, rendition)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    init_of(&*room_of(&state, &slug)?, &rendition)
}

fn init_of(room: &Room, rendition: &str) -> AppResult<Response> {
    let r = rendition_index(room, rendition)?;
    let bytes = room.live.cache().init_segment(r).ok_or(AppError::NotFound("rendition"))?;
    Ok(media(bytes, "audio/mp4"))
}

#[utoipa::path(get, path = "/hls/{rendition}/part/{file}", tag = "stream",
    params(("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`"), ("file" = String, Path, description = "`<grid part number>.m4s`")),
    responses((status = 200, description = "One part (512 ms) of the room `main`, immutable; the next part is held until published", content_type = "audio/mp4", body = Vec<u8>),
        (status = 404, description = "No such rendition, or a part not published yet (`no-store`) or older than the playlist window", body = ErrorBody)))]
async fn part(
    State(state): State<AppState>,
    ApiPath((rendition, file)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    part_of(&state, &state.rooms.main(), &rendition, &file).await
}

#[utoipa::path(get, path = "/hls/{slug}/{rendition}/part/{file}", tag = "stream",
    params(("slug" = String, Path, description = "The room"), ("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`"), ("file" = String, Path, description = "`<grid part number>.m4s`")),
    responses((status = 200, description = "One part (512 ms) of the room, immutable; the next part is held until published", content_type = "audio/mp4", body = Vec<u8>),
        (status = 404, description = "No such room or rendition, or a part not published yet (`no-store`) or older than the playlist window", body = ErrorBody)))]
async fn room_part(
    State(state): State<AppState>,
    ApiPath((slug, rendition, file)): ApiPath<(String, String, String)>,
) -> AppResult<Response> {
    part_of(&state, &*room_of(&state, &slug)?, &rendition, &file).await
}

async fn part_of(state: &AppState, room: &Room, rendition: &str, file: &str) -> AppResult<Response> {
    let r = rendition_index(room, rendition)?;
    let part = grid_number(file)?;
    // The playlist's preload hint names the next part: a request for it is held until the
    // part is published (≤ one part), as the spec asks, rather than refused.
    if part == playlist::latest_part(unix_ms(state.clock.now())) + 1 {
        published_within(room, part, PART_MS + 500).await;
    }
    if let Err(unservable) = servable(part, unix_ms(state.clock.now())) {
        return Ok(unservable.into_response());
    }
    let bytes = room.live.part(&room.stage.timeline(), r, part).await?;
    state.metrics.served(false);
    Ok(media(bytes, "audio/mp4"))
}

#[utoipa::path(get, path = "/hls/{rendition}/seg/{file}", tag = "stream",
    params(("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`"), ("file" = String, Path, description = "`<media sequence number>.m4s`")),
    responses((status = 200, description = "One segment (eight parts) of the room `main`, immutable", content_type = "audio/mp4", body = Vec<u8>),
        (status = 404, description = "No such rendition, or a segment not complete yet or older than the playlist window", body = ErrorBody)))]
async fn segment(
    State(state): State<AppState>,
    ApiPath((rendition, file)): ApiPath<(String, String)>,
) -> AppResult<Response> {
    segment_of(&state, &state.rooms.main(), &rendition, &file).await
}

#[utoipa::path(get, path = "/hls/{slug}/{rendition}/seg/{file}", tag = "stream",
    params(("slug" = String, Path, description = "The room"), ("rendition" = String, Path, description = "A rendition of the ladder, e.g. `256k`"), ("file" = String, Path, description = "`<media sequence number>.m4s`")),
    responses((status = 200, description = "One segment (eight parts) of the room, immutable", content_type = "audio/mp4", body = Vec<u8>),
        (status = 404, description = "No such room or rendition, or a segment not complete yet or older than the playlist window", body = ErrorBody)))]
async fn room_segment(
    State(state): State<AppState>,
    ApiPath((slug, rendition, file)): ApiPath<(String, String, String)>,
) -> AppResult<Response> {
    segment_of(&state, &*room_of(&state, &slug)?, &rendition, &file).await
}

async fn segment_of(state: &AppState, room: &Room, rendition: &str, file: &str) -> AppResult<Response> {
    let r = rendition_index(room, rendition)?;
    let msn = grid_number(file)?;
    let first_part = msn * crate::room::timeline::PARTS_PER_SEGMENT;
    let last_part = first_part + crate::room::timeline::PARTS_PER_SEGMENT - 1;
    let now = unix_ms(state.clock.now());
    if let Err(unservable) = servable(last_part, now).and(servable(first_part, now)) {
        return Ok(unservable.into_response());
    }
    let bytes = room.live.segment(&room.stage.timeline(), r, msn).await?;
    state.metrics.served(true);
    Ok(media(bytes, "audio/mp4"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("deflate, *"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip; q=0.0"));
        assert!(!accepts(""));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
