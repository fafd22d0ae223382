//! `GET /audio/{trackId}`: the original file, with HTTP ranges and validators.
//!
//! Only a track id comes from the request; the path is looked up in the database.

use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::error::{AppError, AppResult};
use super::library::ApiPath;
use crate::ids::TrackId;
use crate::library::Library;

#[utoipa::path(get, path = "/audio/{track_id}", tag = "library",
    params(("track_id" = TrackId, Path, description = "Track id")),
    responses((status = 200, description = "The original file", content_type = "audio/*", body = Vec<u8>),
        (status = 206, description = "A byte range of it (`Range`)", content_type = "audio/*", body = Vec<u8>),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such track, or its file is gone", body = super::error::ErrorBody),
        (status = 416, description = "Range not satisfiable", body = super::error::ErrorBody)))]
pub async fn serve_track(
    State(lib): State<Library>,
    ApiPath(id): ApiPath<TrackId>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let source = lib.call(move |db| db.track_source(id)).await?;
    if source.missing {
        return Err(AppError::NotFound("track file"));
    }
    let path = lib.path_of(&source.relpath);
    let mut file = tokio::fs::File::open(&path).await.map_err(|_| AppError::NotFound("track file"))?;
    let meta = file.metadata().await.map_err(AppError::internal)?;
    let size = meta.len();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let mtime_ns = modified.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_nanos();
    let etag = format!("\"{}-{:x}-{:x}\"", source.fingerprint, size, mtime_ns);
    let last_modified = httpdate::fmt_http_date(modified);

    let mut common = HeaderMap::new();
    common.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime_for(&source.format)));
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(header::ETAG, header_value(&etag)?);
    common.insert(header::LAST_MODIFIED, header_value(&last_modified)?);
    common.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));

    if not_modified(&headers, &etag, modified) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    // A range applies only if If-Range (when present) still names this version.
    let if_range_ok =
        headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()).is_none_or(|v| v == etag || v == last_modified);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok => Some(parse_range(r, size)?),
        _ => None,
    };
    match range {
        None => {
            common.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            Ok((StatusCode::OK, common, Body::from_stream(ReaderStream::new(file))).into_response())
        }
        Some((start, end)) => {
            file.seek(std::io::SeekFrom::Start(start)).await.map_err(AppError::internal)?;
            let len = end - start + 1;
            common.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            common.insert(header::CONTENT_RANGE, header_value(&format!("bytes {start}-{end}/{size}"))?);
            let body = Body::from_stream(ReaderStream::new(file.take(len)));
            Ok((StatusCode::PARTIAL_CONTENT, common, body).into_response())
        }
    }
}

fn header_value(s: &str) -> AppResult<HeaderValue> {
    HeaderValue::from_str(s).map_err(AppError::internal)
}

fn not_modified(headers: &HeaderMap, etag: &str, modified: std::time::SystemTime) -> bool {
    if let Some(v) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return v.split(',').any(|t| t.trim() == etag || t.trim() == "*");
    }
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| secs(modified) <= secs(since))
}

/// Parses a single `bytes=` range against a file of `size` bytes into inclusive bounds.
/// Multiple ranges are answered with the first one.
fn parse_range(value: &str, size: u64) -> AppResult<(u64, u64)> {
    let unsatisfiable = AppError::RangeNotSatisfiable(size);
    let spec =
        value.strip_prefix("bytes=").ok_or_else(|| AppError::BadRequest("only byte ranges are supported".into()))?;
    let first = spec.split(',').next().unwrap_or("").trim();
    let (a, b) = first.split_once('-').ok_or_else(|| AppError::BadRequest(format!("malformed range {value:?}")))?;
    let parse =
        |s: &str| s.trim().parse::<u64>().map_err(|_| AppError::BadRequest(format!("malformed range {value:?}")));
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => return Err(AppError::BadRequest(format!("malformed range {value:?}"))),
        (true, false) => {
            let suffix = parse(b)?;
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            (size.saturating_sub(suffix), size - 1)
        }
        (false, true) => (parse(a)?, size.saturating_sub(1)),
        (false, false) => {
            let (s, e) = (parse(a)?, parse(b)?);
            if e < s {
                return Err(AppError::BadRequest(format!("malformed range {value:?}")));
            }
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size {
        return Err(unsatisfiable);
    }
    Ok((start, end))
}

fn mime_for(format: &str) -> &'static str {
    match format {
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "opus" => "audio/ogg; codecs=opus",
        "wav" => "audio/wav",
        "aiff" => "audio/aiff",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), (0, 9));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), (90, 99));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), (90, 99));
        assert_eq!(parse_range("bytes=50-500", 100).unwrap(), (50, 99));
        assert!(matches!(parse_range("bytes=100-", 100), Err(AppError::RangeNotSatisfiable(100))));
        assert!(matches!(parse_range("bytes=9-1", 100), Err(AppError::BadRequest(_))));
        assert!(matches!(parse_range("items=1-2", 100), Err(AppError::BadRequest(_))));
    }
}
