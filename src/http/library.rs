//! REST endpoints of the library: tracks, folders, memberships, scans.

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{AppError, AppResult, ErrorBody};
use super::{ApiJson, Gm};
use crate::ids::{FolderId, TrackId};
use crate::library::model::{Folder, FolderPatch, Page, ScanError, Track, TrackIds, TrackQuery, MAX_PAGE_LIMIT};
use crate::library::{scan, Library, ScanStatus};
use crate::state::AppState;

/// A path parameter whose rejection uses the API's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// Query parameters whose rejection uses the API's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tracks))
        .routes(routes!(get_track))
        .routes(routes!(track_metadata))
        .routes(routes!(track_cover))
        .routes(routes!(add_membership, remove_membership))
        .routes(routes!(folder_tree, create_folder))
        .routes(routes!(get_folder, update_folder, delete_folder))
        .routes(routes!(folder_tracks, add_tracks))
        .routes(routes!(set_folder_order))
        .routes(routes!(start_scan))
        .routes(routes!(scan_status))
        .routes(routes!(scan_errors))
        .routes(routes!(remove_membership_by_folder))
}

fn check_limit(limit: u64) -> AppResult<()> {
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(AppError::BadRequest(format!("limit must be between 1 and {MAX_PAGE_LIMIT}")));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/tracks", tag = "library", params(TrackQuery),
    responses((status = 200, description = "One page of tracks; `search` is full text, prefix and accent-insensitive", body = Page<Track>), (status = 400, description = "A bad parameter, named", body = ErrorBody)))]
async fn list_tracks(State(lib): State<Library>, ApiQuery(q): ApiQuery<TrackQuery>) -> AppResult<ApiJson<Page<Track>>> {
    check_limit(q.limit)?;
    if q.page == 0 {
        return Err(AppError::BadRequest("page starts at 1".into()));
    }
    lib.call(move |db| db.list_tracks(&q)).await.map(ApiJson).map_err(Into::into)
}

#[utoipa::path(get, path = "/api/tracks/{id}", tag = "library", params(("id" = TrackId, Path, description = "Track id")),
    responses((status = 200, description = "One track", body = Track), (status = 404, description = "No such track", body = ErrorBody)))]
async fn get_track(State(lib): State<Library>, ApiPath(id): ApiPath<TrackId>) -> AppResult<ApiJson<Track>> {
    lib.call(move |db| db.track(id)).await.map(ApiJson).map_err(Into::into)
}

/// One tag of a file, as stored.
#[derive(Serialize, utoipa::ToSchema)]
struct TagEntry {
    /// The tag format's own key (e.g. `TIT2`, `TITLE`, `©nam`), or lofty's name for it.
    key: String,
    value: String,
    /// Tag format, e.g. `Id3v2`, `VorbisComments`.
    tag: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TrackMetadata {
    track: Track,
    tags: Vec<TagEntry>,
    pictures: usize,
}

/// Reopens a track's file (for tags and cover art); a missing file is a 404.
async fn open_track_file(lib: &Library, id: TrackId) -> AppResult<(Track, lofty::file::TaggedFile, String)> {
    let (track, source) = lib.call(move |db| Ok((db.track(id)?, db.track_source(id)?))).await?;
    if source.missing {
        return Err(AppError::NotFound("track file"));
    }
    let path = lib.path_of(&source.relpath);
    let tagged = tokio::task::spawn_blocking(move || scan::open_tagged(&path))
        .await
        .map_err(AppError::internal)?
        .map_err(|_| AppError::NotFound("readable track file"))?;
    Ok((track, tagged, source.fingerprint))
}

#[utoipa::path(get, path = "/api/tracks/{id}/metadata", tag = "library", params(("id" = TrackId, Path, description = "Track id")),
    responses((status = 200, description = "Every tag of the file", body = TrackMetadata), (status = 404, description = "No such track or readable file", body = ErrorBody)))]
async fn track_metadata(
    State(lib): State<Library>,
    ApiPath(id): ApiPath<TrackId>,
) -> AppResult<ApiJson<TrackMetadata>> {
    use lofty::prelude::*;
    let (track, tagged, _) = open_track_file(&lib, id).await?;
    let mut tags = Vec::new();
    let mut pictures = 0;
    for tag in tagged.tags() {
        pictures += tag.pictures().len();
        for item in tag.items() {
            let Some(value) = item.value().text() else { continue };
            let key =
                item.key().map_key(tag.tag_type()).map(str::to_owned).unwrap_or_else(|| format!("{:?}", item.key()));
            tags.push(TagEntry { key, value: value.to_owned(), tag: format!("{:?}", tag.tag_type()) });
        }
    }
    Ok(ApiJson(TrackMetadata { track, tags, pictures }))
}

#[utoipa::path(get, path = "/api/tracks/{id}/cover", tag = "library", params(("id" = TrackId, Path, description = "Track id")),
    responses((status = 200, description = "The embedded cover image", content_type = "image/*", body = Vec<u8>),
        (status = 304, description = "Not modified (`If-None-Match`)"), (status = 404, description = "No such track or cover", body = ErrorBody)))]
async fn track_cover(
    State(lib): State<Library>,
    ApiPath(id): ApiPath<TrackId>,
    headers: HeaderMap,
) -> AppResult<Response> {
    use lofty::prelude::*;
    let (_, tagged, fingerprint) = open_track_file(&lib, id).await?;
    let picture = tagged.tags().iter().flat_map(|t| t.pictures()).next().ok_or(AppError::NotFound("cover"))?;
    let etag = format!("\"{fingerprint}-cover\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mime = picture.mime_type().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "image/jpeg".into());
    Ok((
        [(header::CONTENT_TYPE, mime), (header::ETAG, etag), (header::CACHE_CONTROL, "public, max-age=3600".into())],
        Body::from(picture.data().to_vec()),
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
struct FolderList {
    items: Vec<Folder>,
}

#[utoipa::path(get, path = "/api/folders", tag = "folders",
    responses((status = 200, description = "The folder tree", body = FolderList)))]
async fn folder_tree(State(lib): State<Library>) -> AppResult<ApiJson<FolderList>> {
    lib.call(|db| db.folder_tree()).await.map(|items| ApiJson(FolderList { items })).map_err(Into::into)
}

#[utoipa::path(get, path = "/api/folders/{id}", tag = "folders", params(("id" = FolderId, Path, description = "Folder id")),
    responses((status = 200, description = "One folder with its sub-folders", body = Folder), (status = 404, description = "No such folder", body = ErrorBody)))]
async fn get_folder(State(lib): State<Library>, ApiPath(id): ApiPath<FolderId>) -> AppResult<ApiJson<Folder>> {
    lib.call(move |db| db.folder(id)).await.map(ApiJson).map_err(Into::into)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewFolder {
    name: String,
    parent_id: Option<FolderId>,
}

/// Trims a folder name and rejects empty or overlong ones.
fn folder_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest("a folder name has 1 to 200 characters".into()));
    }
    Ok(name.to_owned())
}

#[utoipa::path(post, path = "/api/folders", tag = "folders", security(("gm_key" = [])), request_body = NewFolder,
    responses((status = 201, description = "The new folder", body = Folder), (status = 400, description = "A bad parameter, named", body = ErrorBody), (status = 404, description = "No such parent folder", body = ErrorBody)))]
async fn create_folder(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(body): ApiJson<NewFolder>,
) -> AppResult<(StatusCode, ApiJson<Folder>)> {
    let name = folder_name(&body.name)?;
    let folder = lib.call(move |db| db.create_folder(&name, body.parent_id)).await?;
    Ok((StatusCode::CREATED, ApiJson(folder)))
}

#[utoipa::path(put, path = "/api/folders/{id}", tag = "folders", security(("gm_key" = [])), params(("id" = FolderId, Path, description = "Folder id")), request_body = FolderPatch,
    responses((status = 200, description = "The folder renamed, moved or reordered", body = Folder), (status = 400, description = "A bad parameter, named", body = ErrorBody), (status = 404, description = "No such folder", body = ErrorBody),
        (status = 409, description = "A move under its own descendant", body = ErrorBody)))]
async fn update_folder(
    _: Gm,
    State(lib): State<Library>,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(mut patch): ApiJson<FolderPatch>,
) -> AppResult<ApiJson<Folder>> {
    if let Some(name) = &patch.name {
        patch.name = Some(folder_name(name)?);
    }
    lib.call(move |db| db.update_folder(id, &patch)).await.map(ApiJson).map_err(Into::into)
}

#[utoipa::path(delete, path = "/api/folders/{id}", tag = "folders", security(("gm_key" = [])), params(("id" = FolderId, Path, description = "Folder id")),
    responses((status = 204, description = "Deleted with its sub-folders; the tracks stay in the library"), (status = 404, description = "No such folder", body = ErrorBody)))]
async fn delete_folder(_: Gm, State(lib): State<Library>, ApiPath(id): ApiPath<FolderId>) -> AppResult<StatusCode> {
    lib.call(move |db| db.delete_folder(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default = "one")]
    page: u64,
    #[serde(default = "hundred")]
    limit: u64,
}

fn one() -> u64 {
    1
}

fn hundred() -> u64 {
    crate::library::model::DEFAULT_PAGE_LIMIT
}

#[utoipa::path(get, path = "/api/folders/{id}/tracks", tag = "folders", params(("id" = FolderId, Path, description = "Folder id"), PageQuery),
    responses((status = 200, description = "The folder's tracks in its order", body = Page<Track>), (status = 400, description = "A bad parameter, named", body = ErrorBody), (status = 404, description = "No such folder", body = ErrorBody)))]
async fn folder_tracks(
    State(lib): State<Library>,
    ApiPath(id): ApiPath<FolderId>,
    ApiQuery(p): ApiQuery<PageQuery>,
) -> AppResult<ApiJson<Page<Track>>> {
    check_limit(p.limit)?;
    let q = TrackQuery { page: p.page.max(1), limit: p.limit, folder_id: Some(id), ..Default::default() };
    lib.call(move |db| {
        db.folder(id)?;
        db.list_tracks(&q)
    })
    .await
    .map(ApiJson)
    .map_err(Into::into)
}

#[utoipa::path(post, path = "/api/folders/{id}/tracks", tag = "folders", security(("gm_key" = [])), params(("id" = FolderId, Path, description = "Folder id")), request_body = TrackIds,
    responses((status = 200, description = "Tracks added (at `position`, else at the end)", body = Folder), (status = 400, description = "A bad parameter, named", body = ErrorBody), (status = 404, description = "No such folder or track", body = ErrorBody)))]
async fn add_tracks(
    _: Gm,
    State(lib): State<Library>,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(body): ApiJson<TrackIds>,
) -> AppResult<ApiJson<Folder>> {
    if body.track_ids.is_empty() {
        return Err(AppError::BadRequest("trackIds is empty".into()));
    }
    lib.call(move |db| {
        db.add_tracks_to_folder(id, &body.track_ids, body.position)?;
        db.folder(id)
    })
    .await
    .map(ApiJson)
    .map_err(Into::into)
}

#[utoipa::path(post, path = "/api/tracks/{track_id}/folders/{folder_id}", tag = "folders", security(("gm_key" = [])),
    params(("track_id" = TrackId, Path, description = "Track id"), ("folder_id" = FolderId, Path, description = "Folder id")),
    responses((status = 201, description = "The track is in the folder", body = Folder), (status = 404, description = "No such folder or track", body = ErrorBody)))]
async fn add_membership(
    _: Gm,
    State(lib): State<Library>,
    ApiPath((track, folder)): ApiPath<(TrackId, FolderId)>,
) -> AppResult<(StatusCode, ApiJson<Folder>)> {
    let folder = lib
        .call(move |db| {
            db.add_tracks_to_folder(folder, &[track], None)?;
            db.folder(folder)
        })
        .await?;
    Ok((StatusCode::CREATED, ApiJson(folder)))
}

#[utoipa::path(delete, path = "/api/tracks/{track_id}/folders/{folder_id}", tag = "folders", security(("gm_key" = [])),
    params(("track_id" = TrackId, Path, description = "Track id"), ("folder_id" = FolderId, Path, description = "Folder id")),
    responses((status = 204, description = "The track left the folder"), (status = 404, description = "No such membership", body = ErrorBody)))]
async fn remove_membership(
    _: Gm,
    State(lib): State<Library>,
    ApiPath((track, folder)): ApiPath<(TrackId, FolderId)>,
) -> AppResult<StatusCode> {
    lib.call(move |db| db.remove_track_from_folder(folder, track)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/folders/{id}/tracks/{track_id}", tag = "folders", security(("gm_key" = [])),
    params(("id" = FolderId, Path, description = "Folder id"), ("track_id" = TrackId, Path, description = "Track id")),
    responses((status = 204, description = "The track left the folder"), (status = 404, description = "No such membership", body = ErrorBody)))]
async fn remove_membership_by_folder(
    gm: Gm,
    state: State<Library>,
    ApiPath((folder, track)): ApiPath<(FolderId, TrackId)>,
) -> AppResult<StatusCode> {
    remove_membership(gm, state, ApiPath((track, folder))).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FolderOrder {
    track_ids: Vec<TrackId>,
}

#[utoipa::path(put, path = "/api/folders/{id}/tracks/order", tag = "folders", security(("gm_key" = [])), params(("id" = FolderId, Path, description = "Folder id")), request_body = FolderOrder,
    responses((status = 200, description = "The folder in the new order", body = Folder), (status = 400, description = "A bad parameter, named", body = ErrorBody), (status = 404, description = "No such folder", body = ErrorBody)))]
async fn set_folder_order(
    _: Gm,
    State(lib): State<Library>,
    ApiPath(id): ApiPath<FolderId>,
    ApiJson(body): ApiJson<FolderOrder>,
) -> AppResult<ApiJson<Folder>> {
    lib.call(move |db| {
        db.set_folder_order(id, &body.track_ids)?;
        db.folder(id)
    })
    .await
    .map(ApiJson)
    .map_err(Into::into)
}

#[utoipa::path(post, path = "/api/scan", tag = "library", security(("gm_key" = [])),
    responses((status = 202, description = "A scan of the music folder started", body = ScanStatus),
        (status = 409, description = "A scan is running", body = ErrorBody)))]
async fn start_scan(_: Gm, State(lib): State<Library>) -> AppResult<(StatusCode, ApiJson<ScanStatus>)> {
    lib.start_scan()?;
    let status = lib.scan_status().borrow().clone();
    Ok((StatusCode::ACCEPTED, ApiJson(status)))
}

#[utoipa::path(get, path = "/api/scan/status", tag = "library",
    responses((status = 200, description = "Progress of the current or last scan", body = ScanStatus)))]
async fn scan_status(State(lib): State<Library>) -> ApiJson<ScanStatus> {
    ApiJson(lib.scan_status().borrow().clone())
}

#[derive(Serialize, utoipa::ToSchema)]
struct ScanErrors {
    items: Vec<ScanError>,
    total: usize,
}

#[utoipa::path(get, path = "/api/scan/errors", tag = "library",
    responses((status = 200, description = "Files the last scan could not read", body = ScanErrors)))]
async fn scan_errors(State(lib): State<Library>) -> AppResult<ApiJson<ScanErrors>> {
    let items = lib.call(|db| Ok(db.scan_errors()?)).await?;
    Ok(ApiJson(ScanErrors { total: items.len(), items }))
}
