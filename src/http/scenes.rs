//! Scenes over REST (GM key throughout: a scene's name can spoil the story): list, create,
//! read, replace, delete, reorder, save the stage as a scene, export and import.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::error::{AppError, AppResult};
use super::library::ApiPath;
use super::{ApiJson, Gm};
use crate::ids::SceneId;
use crate::library::Library;
use crate::room::RoomHandle;
use crate::scene::{Scene, SceneExport, SceneLayer, SceneMusic, SceneSpec};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/scenes", get(list).post(create))
        .route("/api/scenes/order", put(reorder))
        .route("/api/scenes/from-stage", post(from_stage))
        .route("/api/scenes/export", get(export))
        .route("/api/scenes/import", post(import))
        .route("/api/scenes/{id}", get(read).put(replace).delete(remove))
}

#[derive(Serialize)]
struct SceneList {
    items: Vec<Scene>,
}

async fn list(_: Gm, State(lib): State<Library>) -> AppResult<ApiJson<SceneList>> {
    let items = lib.call(|db| db.scenes()).await?;
    Ok(ApiJson(SceneList { items }))
}

/// Checks a scene as sent; the message names the field.
fn checked(mut spec: SceneSpec) -> AppResult<SceneSpec> {
    spec.normalize().map_err(AppError::BadRequest)?;
    Ok(spec)
}

async fn create(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(spec): ApiJson<SceneSpec>,
) -> AppResult<(StatusCode, ApiJson<Scene>)> {
    let spec = checked(spec)?;
    let scene = lib.call(move |db| db.create_scene(&spec)).await?;
    Ok((StatusCode::CREATED, ApiJson(scene)))
}

async fn read(_: Gm, State(lib): State<Library>, ApiPath(id): ApiPath<SceneId>) -> AppResult<ApiJson<Scene>> {
    Ok(ApiJson(lib.call(move |db| db.scene(id)).await?))
}

async fn replace(
    _: Gm,
    State(lib): State<Library>,
    ApiPath(id): ApiPath<SceneId>,
    ApiJson(spec): ApiJson<SceneSpec>,
) -> AppResult<ApiJson<Scene>> {
    let spec = checked(spec)?;
    Ok(ApiJson(lib.call(move |db| db.update_scene(id, &spec)).await?))
}

async fn remove(_: Gm, State(lib): State<Library>, ApiPath(id): ApiPath<SceneId>) -> AppResult<StatusCode> {
    lib.call(move |db| db.delete_scene(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SceneOrder {
    scene_ids: Vec<SceneId>,
}

async fn reorder(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(body): ApiJson<SceneOrder>,
) -> AppResult<ApiJson<SceneList>> {
    let items = lib.call(move |db| db.set_scene_order(&body.scene_ids)).await?;
    Ok(ApiJson(SceneList { items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewName {
    name: String,
}

/// Saves what plays now as a new scene: the music's folder (or its track), the layers at
/// their gains, the crossfade, and the pads of the scene playing.
async fn from_stage(
    _: Gm,
    State(lib): State<Library>,
    State(room): State<RoomHandle>,
    ApiJson(body): ApiJson<NewName>,
) -> AppResult<(StatusCode, ApiJson<Scene>)> {
    let state = room.state();
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

async fn export(_: Gm, State(lib): State<Library>) -> AppResult<impl IntoResponse> {
    let file = lib.call(|db| db.export_scenes()).await?;
    Ok(([(header::CONTENT_DISPOSITION, "attachment; filename=\"bardcast-scenes.json\"")], ApiJson(file)))
}

async fn import(
    _: Gm,
    State(lib): State<Library>,
    ApiJson(file): ApiJson<SceneExport>,
) -> AppResult<(StatusCode, ApiJson<SceneList>)> {
    let items = lib.call(move |db| db.import_scenes(file)).await?;
    Ok((StatusCode::CREATED, ApiJson(SceneList { items })))
}
