//! Scenes over REST (GM key throughout: a scene's name can spoil the story): list, create,
//! read, replace, delete, reorder, save the stage as a scene, export and import.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{AppError, AppResult, ErrorBody};
use super::library::ApiPath;
use super::{ApiJson, Gm, RoomGm};
use crate::ids::SceneId;
use crate::library::Library;
use crate::scene::{Scene, SceneExport, SceneLayer, SceneMusic, SceneSpec};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(reorder))
        .routes(routes!(from_stage))
        .routes(routes!(export))
        .routes(routes!(import))
        .routes(routes!(read, replace, remove))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SceneList {
    items: Vec<Scene>,
}

#[utoipa::path(get, path = "/api/scenes", tag = "scenes", security(("gm_key" = [])),
    responses((status = 200, description = "The scenes in the GM's order", body = SceneList)))]
async fn list(_: Gm, State(lib): State<Library>) -> AppResult<ApiJson<SceneList>> {
    let items = lib.call(|db| db.scenes()).await?;
    Ok(ApiJson(SceneList { items }))
}

/// Checks a scene as sent; the message names the field.
fn checked(mut spec: SceneSpec) -> AppResult<SceneSpec> {
    spec.normalize().map_err(AppError::BadRequest)?;
    Ok(spec)
}

#[utoipa::path(post, path = "/api/scenes", tag = "scenes", security(("gm_key" = [])), request_body = SceneSpec,
    responses((status = 201, description = "The new scene", body = Scene), (status = 400, description = "A bad field, named", body = ErrorBody)))]
async fn create(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(spec): ApiJson<SceneSpec>,
) -> AppResult<(StatusCode, ApiJson<Scene>)> {
    let spec = checked(spec)?;
    let scene = lib.call(move |db| db.create_scene(&spec)).await?;
    Ok((StatusCode::CREATED, ApiJson(scene)))
}

#[utoipa::path(get, path = "/api/scenes/{id}", tag = "scenes", security(("gm_key" = [])), params(("id" = SceneId, Path, description = "Scene id")),
    responses((status = 200, description = "One scene, with its tracks' and folders' names", body = Scene),
        (status = 404, description = "No such scene", body = ErrorBody)))]
async fn read(_: Gm, State(lib): State<Library>, ApiPath(id): ApiPath<SceneId>) -> AppResult<ApiJson<Scene>> {
    Ok(ApiJson(lib.call(move |db| db.scene(id)).await?))
}

#[utoipa::path(put, path = "/api/scenes/{id}", tag = "scenes", security(("gm_key" = [])), params(("id" = SceneId, Path, description = "Scene id")),
    request_body = SceneSpec,
    responses((status = 200, description = "The scene as replaced", body = Scene), (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 404, description = "No such scene", body = ErrorBody)))]
async fn replace(
    _: Gm,
    State(lib): State<Library>,
    ApiPath(id): ApiPath<SceneId>,
    ApiJson(spec): ApiJson<SceneSpec>,
) -> AppResult<ApiJson<Scene>> {
    let spec = checked(spec)?;
    Ok(ApiJson(lib.call(move |db| db.update_scene(id, &spec)).await?))
}

#[utoipa::path(delete, path = "/api/scenes/{id}", tag = "scenes", security(("gm_key" = [])), params(("id" = SceneId, Path, description = "Scene id")),
    responses((status = 204, description = "Deleted; the music stays"), (status = 404, description = "No such scene", body = ErrorBody)))]
async fn remove(_: Gm, State(lib): State<Library>, ApiPath(id): ApiPath<SceneId>) -> AppResult<StatusCode> {
    lib.call(move |db| db.delete_scene(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SceneOrder {
    scene_ids: Vec<SceneId>,
}

#[utoipa::path(put, path = "/api/scenes/order", tag = "scenes", security(("gm_key" = [])), request_body = SceneOrder,
    responses((status = 200, description = "The scenes in their new order", body = SceneList), (status = 400, description = "A bad field, named", body = ErrorBody)))]
async fn reorder(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(body): ApiJson<SceneOrder>,
) -> AppResult<ApiJson<SceneList>> {
    let items = lib.call(move |db| db.set_scene_order(&body.scene_ids)).await?;
    Ok(ApiJson(SceneList { items }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewName {
    name: String,
}

/// Saves what plays now in a room as a new scene (scenes are shared by every room): the music's folder (or its track), the layers at
/// their gains, the crossfade, and the pads of the scene playing.
#[utoipa::path(post, path = "/api/scenes/from-stage", tag = "scenes", security(("gm_key" = [])), request_body = NewName,
    params(("room" = Option<String>, Query, description = "The room whose stage is saved (its GM key or the admin key); `main` when left out")),
    responses((status = 201, description = "What plays now, saved as a new scene", body = Scene), (status = 400, description = "A bad field, named", body = ErrorBody)))]
async fn from_stage(
    RoomGm(room): RoomGm,
    State(lib): State<Library>,
    ApiJson(body): ApiJson<NewName>,
) -> AppResult<(StatusCode, ApiJson<Scene>)> {
    let state = room.stage.state();
    let music = match (state.queue_folder_id, &state.now_playing) {
        (Some(folder_id), _) => Some(SceneMusic {
            folder_id: Some(folder_id),
            track_id: None,
            shuffle: state.shuffle,
            repeat: state.repeat,
        }),
        (None, Some(now)) => {
            Some(SceneMusic { folder_id: None, track_id: Some(now.track_id), shuffle: false, repeat: state.repeat })
        }
        (None, None) => None,
    };
    let playing = state.scene.as_ref().map(|s| s.id);
    let pads = match playing {
        Some(id) => lib.call(move |db| db.scene_spec(id)).await.map(|s| s.pads).unwrap_or_default(),
        None => Vec::new(),
    };
    let spec = checked(SceneSpec {
        name: body.name,
        music,
        layers: state.layers.iter().map(|l| SceneLayer { track_id: l.track_id, gain: l.gain }).collect(),
        pads,
        crossfade_seconds: Some(state.crossfade_seconds),
    })?;
    let scene = lib.call(move |db| db.create_scene(&spec)).await?;
    Ok((StatusCode::CREATED, ApiJson(scene)))
}

#[utoipa::path(get, path = "/api/scenes/export", tag = "scenes", security(("gm_key" = [])),
    responses((status = 200, description = "Every scene, with its tracks' paths and folders' names: a file to share", body = SceneExport)))]
async fn export(_: Gm, State(lib): State<Library>) -> AppResult<impl IntoResponse> {
    let file = lib.call(|db| db.export_scenes()).await?;
    Ok(([(header::CONTENT_DISPOSITION, "attachment; filename=\"bardcast-scenes.json\"")], ApiJson(file)))
}

#[utoipa::path(post, path = "/api/scenes/import", tag = "scenes", security(("gm_key" = [])), request_body = SceneExport,
    responses((status = 201, description = "The file's scenes, added (all or none)", body = SceneList), (status = 400, description = "A bad field, named", body = ErrorBody)))]
async fn import(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(file): ApiJson<SceneExport>,
) -> AppResult<(StatusCode, ApiJson<SceneList>)> {
    let items = lib.call(move |db| db.import_scenes(file)).await?;
    Ok((StatusCode::CREATED, ApiJson(SceneList { items })))
}
