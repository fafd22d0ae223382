//! REST endpoints of the segment cache: background pre-segmenting and its progress.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{AppError, AppResult, ErrorBody};
use super::{ApiJson, Gm};
use crate::cache::{CacheError, CacheStatus, SegmentCache, SourceKey};
use crate::ids::{FolderId, TrackId};
use crate::library::db::Db;
use crate::library::model::{TrackQuery, MAX_PAGE_LIMIT};
use crate::library::Library;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(prepare)).routes(routes!(status))
}

/// Body of `POST /api/cache/prepare`; an empty body means the whole library.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PrepareRequest {
    /// Only this folder and its sub-folders.
    folder_id: Option<FolderId>,
}

impl From<CacheError> for AppError {
    fn from(e: CacheError) -> Self {
        match e {
            // The file is in the library but will not decode: the GM has to see why.
            CacheError::Source { .. } => AppError::Conflict(e.to_string()),
            CacheError::NoSuchRendition(_) => AppError::NotFound("rendition"),
            CacheError::Io(_) => AppError::Internal(e.to_string()),
            CacheError::Closed => AppError::Unavailable(e.to_string()),
        }
    }
}

/// Starts pre-segmenting the library or one folder (with its sub-folders); 202 with the status.
#[utoipa::path(post, path = "/api/cache/prepare", tag = "cache", security(("gm_key" = [])),
    request_body(content = Option<PrepareRequest>, description = "Empty for the whole library"),
    responses((status = 202, description = "Pre-segmenting started", body = CacheStatus), (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 404, description = "No such folder", body = ErrorBody)))]
async fn prepare(
    _: Gm,
    State(lib): State<Library>,
    State(cache): State<SegmentCache>,
    body: Bytes,
) -> AppResult<(StatusCode, ApiJson<CacheStatus>)> {
    let req: PrepareRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PrepareRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let music = lib.music_dir().to_path_buf();
    let keys = lib
        .call(move |db| {
            let ids = match req.folder_id {
                Some(folder) => folder_and_descendants(db, folder)?,
                None => all_track_ids(db)?,
            };
            let mut keys = Vec::with_capacity(ids.len());
            for id in ids {
                let src = db.track_source(id)?;
                if !src.missing {
                    let path = crate::library::file_path(&music, &src.relpath);
                    keys.push(SourceKey { fingerprint: src.fingerprint, path });
                }
            }
            Ok(keys)
        })
        .await?;
    Ok((StatusCode::ACCEPTED, ApiJson(cache.prepare(keys))))
}

#[utoipa::path(get, path = "/api/cache/status", tag = "cache",
    responses((status = 200, description = "Pre-segmenting progress and the cache's size", body = CacheStatus)))]
async fn status(State(cache): State<SegmentCache>) -> ApiJson<CacheStatus> {
    ApiJson(cache.status())
}

/// Tracks of a folder and of every folder below it, each once, in folder order.
fn folder_and_descendants(db: &Db, folder: FolderId) -> crate::library::Result<Vec<TrackId>> {
    let mut stack = vec![db.folder(folder)?];
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::new();
    while let Some(f) = stack.pop() {
        ids.extend(db.folder_track_ids(f.id)?.into_iter().filter(|id| seen.insert(*id)));
        stack.extend(f.children.into_iter().rev());
    }
    Ok(ids)
}

/// Every track of the library that is not missing.
fn all_track_ids(db: &Db) -> crate::library::Result<Vec<TrackId>> {
    let mut ids = Vec::new();
    let mut q = TrackQuery { limit: MAX_PAGE_LIMIT, ..TrackQuery::default() };
    loop {
        let page = db.list_tracks(&q)?;
        ids.extend(page.items.iter().filter(|t| !t.missing).map(|t| t.id));
        if page.items.is_empty() || q.page * q.limit >= page.total {
            return Ok(ids);
        }
        q.page += 1;
    }
}
