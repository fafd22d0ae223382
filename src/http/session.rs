//! The session over REST: `GET /api/session` and every GM command as `POST /api/session/<command>`.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Required, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppResult;
use super::library::ApiPath;
use super::openapi::error_response;
use super::{ApiJson, Gm};
use crate::room::{command_docs, parse_command, RoomHandle, SessionState};
use crate::state::AppState;

/// One route serves every command; [`document_commands`] gives each its own operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(session)).route("/api/session/{command}", post(command))
}

#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, description = "What listeners hear from `effectiveAt` on", body = SessionState)))]
async fn session(State(room): State<RoomHandle>) -> ApiJson<SessionState> {
    ApiJson((*room.state()).clone())
}

async fn command(
    _: Gm,
    State(room): State<RoomHandle>,
    ApiPath(name): ApiPath<String>,
    body: Bytes,
) -> AppResult<ApiJson<SessionState>> {
    let command = parse_command(&name, &body)?;
    Ok(ApiJson(room.command(command).await?))
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
        doc.paths.paths.insert(format!("/api/session/{}", command.name), PathItem::new(HttpMethod::Post, operation));
    }
    doc.components.get_or_insert_with(Default::default).schemas.extend(schemas);
}
