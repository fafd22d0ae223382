//! The session over REST: `GET /api/session` and every GM command as `POST /api/session/<command>`.

use axum::body::Bytes;
use axum::extract::RawPathParams;
use axum::routing::post;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Required, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{AppResult, ErrorBody};
use super::openapi::error_response;
use super::{ApiJson, InRoom, RoomGm};
use crate::room::{command_docs, parse_command, SessionState};
use crate::state::AppState;

/// One route serves every command; [`document_commands`] gives each its own operation. The
/// `/api/session` routes are the room `main`'s.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session))
        .routes(routes!(room_session))
        .route("/api/session/{command}", post(command))
        .route("/api/rooms/{slug}/session/{command}", post(command))
}

#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, description = "What the room `main`'s listeners hear from `effectiveAt` on", body = SessionState)))]
async fn session(InRoom(room): InRoom) -> ApiJson<SessionState> {
    ApiJson((*room.stage.state()).clone())
}

#[utoipa::path(get, path = "/api/rooms/{slug}/session", tag = "session", params(("slug" = String, Path, description = "The room, e.g. `crypt-of-the-lich`")),
    responses((status = 200, description = "What the room's listeners hear from `effectiveAt` on", body = SessionState),
        (status = 404, description = "No such room", body = ErrorBody)))]
async fn room_session(InRoom(room): InRoom) -> ApiJson<SessionState> {
    ApiJson((*room.stage.state()).clone())
}

async fn command(RoomGm(room): RoomGm, params: RawPathParams, body: Bytes) -> AppResult<ApiJson<SessionState>> {
    let name = params.iter().find(|(k, _)| *k == "command").map_or("", |(_, v)| v);
    let command = parse_command(name, &body)?;
    Ok(ApiJson(room.stage.command(command).await?))
}

/// Adds `POST /api/session/<name>` for every command to `doc`, each with its body's schema,
/// so a remote-control tool sees each command as its own operation.
pub fn document_commands(doc: &mut OpenApi) {
    let mut schemas = Vec::new();
    for command in command_docs(&mut schemas) {
        let json = |schema| ContentBuilder::new().schema(Some(schema)).build();
        let body = RequestBodyBuilder::new()
            .content("application/json", json(command.body))
            .required(Some(if command.body_optional { Required::False } else { Required::True }))
            .build();
        let operation = OperationBuilder::new()
            .tag("session")
            .operation_id(Some(format!("command_{}", command.name)))
            .summary(Some(command.summary))
            .request_body(Some(body))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The new session state; `effectiveAtMs` is when listeners hear the change")
                    .content("application/json", json(Ref::from_schema_name("SessionState").into())),
            )
            .response("400", error_response("A bad field, named first in the message"))
            .response("404", error_response("A track, folder, scene, layer or pad that does not exist"))
            .response("409", error_response("Not possible now (e.g. a ninth layer, nothing playing)"))
            .security(super::openapi::gm_key_requirement())
            .build();
        doc.paths
            .paths
            .insert(format!("/api/session/{}", command.name), PathItem::new(HttpMethod::Post, operation.clone()));
        let mut in_room = operation;
        in_room.operation_id = Some(format!("room_command_{}", command.name));
        in_room.parameters = Some(vec![slug_parameter()]);
        in_room.responses.responses.insert(
            "404".into(),
            error_response("No such room, or a track, folder, scene, layer or pad that does not exist").into(),
        );
        doc.paths
            .paths
            .insert(format!("/api/rooms/{{slug}}/session/{}", command.name), PathItem::new(HttpMethod::Post, in_room));
    }
    doc.components.get_or_insert_with(Default::default).schemas.extend(schemas);
}

/// The `{slug}` path parameter of a room's routes.
fn slug_parameter() -> utoipa::openapi::path::Parameter {
    utoipa::openapi::path::ParameterBuilder::new()
        .name("slug")
        .parameter_in(utoipa::openapi::path::ParameterIn::Path)
        .required(Required::True)
        .description(Some("The room, e.g. `crypt-of-the-lich`"))
        .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String)))
        .build()
}
