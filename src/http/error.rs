//! The HTTP answer to every error, and how each domain's errors map to it.
//!
//! `library`, `room` and `cache` return their own error types; this module alone turns
//! them into statuses, each through one exhaustive match. Every error becomes `{"error":{"code":"…","message":"…"}}` with the right status. A 5xx
//! answer carries a generic message; the cause rides as a response extension that the
//! logging middleware writes out.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::library;
use crate::room;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No GM command has this name.
    #[error("no command named {0:?}")]
    UnknownCommand(String),
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// No GM key was given.
    #[error("this action needs the GM key: send Authorization: Bearer <key>")]
    Unauthorized,
    /// A GM key was given but it is wrong.
    #[error("the GM key is wrong")]
    Forbidden,
    /// The request body exceeds the limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// This client address sent too many wrong GM keys; it may try again after this many seconds.
    #[error("too many wrong GM keys from this address; try again in {0} s")]
    TooManyRequests(u64),
    /// A byte range outside the file; carries the file size in bytes.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// A dependency is temporarily unable to answer (for example a blocking reload timed out).
    #[error("{0}")]
    Unavailable(String),
    /// An unexpected failure; the details are logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// The HTTP status and the stable machine-readable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::NotFound(_) | AppError::UnknownCommand(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            AppError::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Wraps any error as an internal one.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }
}

/// The cause of a 5xx answer, attached to the response for the logging middleware.
/// The body of every error answer: `{"error": {"code": …, "message": …}}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `not_found`, `bad_request`, `conflict`, `unauthorized`, `forbidden`,
    /// `payload_too_large`, `too_many_requests`, `range_not_satisfiable`, `unavailable`, `internal`.
    pub code: &'static str,
    /// For people; a bad field is named first, e.g. `volume: 2 is not between 0 and 1`.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() && !matches!(self, AppError::Unavailable(_)) {
            "internal server error".to_owned()
        } else {
            self.to_string()
        };
        let body = Json(ErrorBody { error: ErrorDetail { code, message } });
        let mut resp = (status, body).into_response();
        if let AppError::RangeNotSatisfiable(size) = self {
            if let Ok(v) = format!("bytes */{size}").parse() {
                resp.headers_mut().insert(axum::http::header::CONTENT_RANGE, v);
            }
        }
        if let AppError::TooManyRequests(seconds) = self {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if status.is_server_error() {
            resp.extensions_mut().insert(ErrorCause(self.to_string()));
        }
        resp
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(ref b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                AppError::PayloadTooLarge(super::MAX_BODY_BYTES)
            }
            other => AppError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::BadRequest(r.body_text())
    }
}

impl From<library::Error> for AppError {
    fn from(e: library::Error) -> Self {
        match e {
            library::Error::NotFound(what) => AppError::NotFound(what),
            library::Error::Invalid(message) => AppError::BadRequest(message),
            library::Error::Conflict(message) => AppError::Conflict(message),
            library::Error::Database(e) => AppError::Internal(format!("database: {e}")),
            library::Error::Internal(message) => AppError::Internal(message),
        }
    }
}

impl From<room::Error> for AppError {
    fn from(e: room::Error) -> Self {
        match e {
            room::Error::UnknownCommand(name) => AppError::UnknownCommand(name),
            room::Error::Invalid(message) => AppError::BadRequest(message),
            room::Error::NotFound(what) => AppError::NotFound(what),
            room::Error::Conflict(message) => AppError::Conflict(message),
            room::Error::Unavailable(message) => AppError::Unavailable(message),
            room::Error::Library(e) => e.into(),
            room::Error::Internal(message) => AppError::Internal(message),
        }
    }
}

/// Result of a request handler.
pub type AppResult<T> = Result<T, AppError>;
