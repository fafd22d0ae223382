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
mod scenes;
mod session;

use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Json, Router};
use serde::Serialize;
use tower_http::cors::CorsLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;
use utoipa::OpenApi as _;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::clock::Clock;
use crate::gm_key::{GmKey, Refusal};
use crate::metrics::Metrics;
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
        .fallback_service(ServeDir::new(&player))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CorsLayer::permissive())
        .merge(live)
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), observe))
        .with_state(state)
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

/// Proof that the request carries the right GM key (`Authorization: Bearer <key>`). An
/// address that keeps sending wrong keys is answered 429 (see [`crate::gm_key`]).
pub struct Gm;

impl<S> FromRequestParts<S> for Gm
where
    GmKey: FromRef<S>,
    Metrics: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let key = GmKey::from_ref(state);
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(AppError::Unauthorized)?;
        check_gm_key(&key, &Metrics::from_ref(state), given, client_address(parts))?;
        Ok(Gm)
    }
}

/// The client's address, when the server was started with connect info (not in `oneshot` tests).
pub fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// Checks a GM key sent from address `from`, logging and counting refusals (REST and socket).
pub fn check_gm_key(key: &GmKey, metrics: &Metrics, given: &str, from: Option<IpAddr>) -> Result<(), AppError> {
    match key.check(given, from, Instant::now()) {
        Ok(()) => Ok(()),
        Err(Refusal::Wrong) => {
            metrics.count_gm_key_refusal(false);
            tracing::warn!(from = ?from, "a wrong GM key");
            Err(AppError::Forbidden)
        }
        Err(Refusal::Throttled(wait)) => {
            metrics.count_gm_key_refusal(true);
            tracing::warn!(from = ?from, "a GM key from an address that sent too many wrong ones; refused unchecked");
            Err(AppError::TooManyRequests(wait.as_secs_f64().ceil() as u64))
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
