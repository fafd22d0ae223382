//! The HTTP surface: REST API, audio files, the player's static files, metrics.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

mod audio;
mod cache;
mod control;
mod error;
mod hls;
mod library;
mod metrics;
mod openapi;
mod reports;
mod rooms;
mod scenes;
mod session;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use serde::Serialize;
use tower::ServiceExt as _;
use tower_http::cors::CorsLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::clock::Clock;
use crate::gm_key::Refusal;
use crate::metrics::Metrics;
use crate::rooms::{Room, Rooms, MAIN};
use crate::state::AppState;
use error::ErrorCause;
pub use error::{AppError, AppResult};

/// Largest accepted request body in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole application as one router; its API is described by `GET /api/openapi.json`.
pub fn router(state: AppState) -> Router {
    let player = state.player_dir.0.clone();
    let document = openapi::Document::default();
    let (app, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(clock))
        .routes(routes!(openapi::document).layer(Extension(document.clone())))
        .merge(library::routes())
        .merge(cache::routes())
        .merge(session::routes())
        .merge(scenes::routes())
        .merge(reports::routes())
        .merge(rooms::routes())
        .routes(routes!(audio::serve_track))
        .routes(routes!(control::upgrade))
        .routes(routes!(metrics::render))
        .split_for_parts();
    // The live stream takes thousands of requests a second: it gets the one header
    // cross-origin players need, without the CORS layer's per-request work.
    let (live, live_doc) = hls::routes()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ))
        .split_for_parts();
    doc.merge(live_doc);
    document.publish(doc);
    app.route("/api/{*rest}", any(|| async { AppError::NotFound("endpoint") }))
        .route_service("/gm", ServeFile::new(player.join("gm.html")))
        .route_service("/check", ServeFile::new(player.join("index.html")))
        .route_service("/admin", ServeFile::new(player.join("admin.html")))
        .route("/r/{slug}", get(room_page_without_slash))
        .route("/r/{slug}/", get(room_page))
        .route("/r/{slug}/{page}", get(room_page))
        .fallback_service(ServeDir::new(&player))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CorsLayer::permissive())
        .merge(live)
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), observe))
        .with_state(state)
}

/// A room's pages: `/r/{slug}/` the listener page, `/r/{slug}/gm` the dashboard,
/// `/r/{slug}/check` the device check. The pages read the room from their address.
async fn room_page(State(state): State<AppState>, InRoom(_): InRoom, params: RawPathParams, req: Request) -> Response {
    let page = params.iter().find(|(k, _)| *k == "page").map(|(_, v)| v.to_owned());
    let file = match page.as_deref() {
        None | Some("check") => "index.html",
        Some("gm") => "gm.html",
        Some(_) => return AppError::NotFound("page").into_response(),
    };
    match ServeFile::new(state.player_dir.0.join(file)).oneshot(req).await {
        Ok(resp) => resp.into_response(),
        Err(e) => AppError::internal(e).into_response(),
    }
}

/// `/r/{slug}` → `/r/{slug}/`, so the listener page's address always ends in a slash.
async fn room_page_without_slash(InRoom(room): InRoom) -> Response {
    axum::response::Redirect::permanent(&format!("/r/{}/", room.slug)).into_response()
}

/// Middleware on every route: a request span (debug level), the request counted by route
/// template and status, and the cause of a server error (an [`ErrorCause`] riding in the
/// response) logged. One layer instead of three, since axum clones each route's layers for
/// every request.
async fn observe(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let span = tracing::debug_span!("request", method = %req.method(), uri = %req.uri());
    let started = (!span.is_disabled()).then(std::time::Instant::now);
    let resp = next.run(req).instrument(span.clone()).await;
    let route = route.as_ref().map_or("static", MatchedPath::as_str);
    metrics.count_request(route, resp.status().as_u16());
    let _entered = span.enter();
    if let Some(ErrorCause(cause)) = resp.extensions().get::<ErrorCause>() {
        // The route rides on the event too: the span is off at the default level.
        tracing::error!(status = %resp.status(), route, %cause, "request failed");
    }
    if let Some(started) = started {
        tracing::debug!(status = %resp.status(), latency_ms = started.elapsed().as_secs_f64() * 1000.0, "answered");
    }
    resp
}

/// A JSON body whose rejections use the API's error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// Proof that the request carries a GM key: the admin key or any room's key, for what every
/// room shares (the library, folders, scenes, device checks). `Authorization: Bearer <key>`;
/// an address that keeps sending wrong keys is answered 429 (see [`crate::gm_key`]).
pub struct Gm;

impl<S> FromRequestParts<S> for Gm
where
    Rooms: FromRef<S>,
    Metrics: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        check_bearer_key(parts, state, |rooms, given, from| rooms.authorize_any(given, from))?;
        Ok(Gm)
    }
}

/// Proof that the request carries the admin key (the server's `GM_KEY`): rooms themselves.
pub struct Admin;

impl<S> FromRequestParts<S> for Admin
where
    Rooms: FromRef<S>,
    Metrics: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        check_bearer_key(parts, state, |rooms, given, from| rooms.admin_key().check(given, from, Instant::now()))?;
        Ok(Admin)
    }
}

/// The room a request is about: the path's `{slug}`, else the query's `room`, else `main`
/// (the one-room URLs). 404 for a room that does not exist.
pub struct InRoom(pub Arc<Room>);

impl<S> FromRequestParts<S> for InRoom
where
    Rooms: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let rooms = Rooms::from_ref(state);
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let from_path = params.as_ref().and_then(|p| p.iter().find(|(k, _)| *k == "slug").map(|(_, v)| v.to_owned()));
        let slug = from_path.or_else(|| room_in_query(parts.uri.query())).unwrap_or_else(|| MAIN.to_owned());
        rooms.get(&slug).map(InRoom).ok_or(AppError::NotFound("room"))
    }
}

/// Proof that the request carries the GM key of the room it is about ([`InRoom`]) or the admin key.
pub struct RoomGm(pub Arc<Room>);

impl<S> FromRequestParts<S> for RoomGm
where
    Rooms: FromRef<S>,
    Metrics: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let InRoom(room) = InRoom::from_request_parts(parts, state).await?;
        check_bearer_key(parts, state, |rooms, given, from| rooms.authorize(&room, given, from))?;
        Ok(RoomGm(room))
    }
}

/// `room=<slug>` from a query string (slugs need no decoding: an encoded one names no room).
fn room_in_query(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| pair.strip_prefix("room=")).map(str::to_owned)
}

/// Checks the request's bearer key with `check` (given the rooms, the key and the client's
/// address); a refusal is logged, counted and answered as [`key_refused`] says.
fn check_bearer_key<S, T>(
    parts: &Parts,
    state: &S,
    check: impl FnOnce(&Rooms, &str, Option<IpAddr>) -> Result<T, Refusal>,
) -> Result<T, AppError>
where
    Rooms: FromRef<S>,
    Metrics: FromRef<S>,
{
    let given = bearer_key(parts)?;
    let from = client_address(parts);
    check(&Rooms::from_ref(state), given, from).map_err(|r| key_refused(&Metrics::from_ref(state), r, from))
}

/// The key of `Authorization: Bearer <key>`.
fn bearer_key(parts: &Parts) -> Result<&str, AppError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(AppError::Unauthorized)
}

/// The client's address, when the server was started with connect info (not in `oneshot` tests).
pub fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The API's answer to a refused key from address `from`, logged and counted (REST and socket).
pub fn key_refused(metrics: &Metrics, refusal: Refusal, from: Option<IpAddr>) -> AppError {
    match refusal {
        Refusal::Wrong => {
            metrics.count_gm_key_refusal(false);
            tracing::warn!(from = ?from, "a wrong GM key");
            AppError::Forbidden
        }
        Refusal::Throttled(wait) => {
            metrics.count_gm_key_refusal(true);
            tracing::warn!(from = ?from, "a GM key from an address that sent too many wrong ones; refused unchecked");
            AppError::TooManyRequests(wait.as_secs_f64().ceil() as u64)
        }
    }
}

/// A clock probe's answer: when the server handled it, Unix ms with a fraction.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ClockReading {
    server_received: f64,
    server_sent: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    database: String,
    music_dir: String,
    music_dir_error: Option<String>,
    tracks: u64,
    missing_tracks: u64,
    version: &'static str,
}

/// The server's clock for a clock probe: when the request was handled (Unix ms with fraction),
/// as `serverReceived` and `serverSent` of a ping. The page times the request by the browser's
/// network stack (Resource Timing), which a busy main thread does not delay.
#[utoipa::path(get, path = "/api/clock", tag = "system",
    responses((status = 200, description = "The server's clock, never cached", body = ClockReading)))]
async fn clock(State(clock): State<Arc<dyn Clock>>) -> Response {
    let now = crate::clock::unix_ms_f64(clock.now());
    let body = ClockReading { server_received: now, server_sent: now };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[utoipa::path(get, path = "/api/health", tag = "system",
    responses((status = 200, description = "Alive; `status` is `degraded` without the music folder", body = Health),
        (status = 503, description = "The database cannot be read", body = Health)))]
async fn health(State(state): State<AppState>) -> Response {
    let lib = state.library.clone();
    let db = lib.call(|db| Ok(db.track_counts()?)).await;
    let music = lib.music_dir_status();
    let (tracks, missing) = db.as_ref().map(|c| *c).unwrap_or((0, 0));
    let body = Health {
        // The server is alive without its music folder; it reports the folder as degraded.
        status: match (&db, &music) {
            (Err(_), _) => "error",
            (Ok(_), Err(_)) => "degraded",
            (Ok(_), Ok(())) => "ok",
        },
        database: match &db {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        },
        music_dir: lib.music_dir().display().to_string(),
        music_dir_error: music.err(),
        tracks,
        missing_tracks: missing,
        version: env!("CARGO_PKG_VERSION"),
    };
    let status = if db.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}
