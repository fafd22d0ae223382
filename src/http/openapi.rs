//! The OpenAPI 3.1 document of the HTTP API, served at `GET /api/openapi.json`.
//!
//! The router is built from the documented handlers (utoipa-axum's `routes!`), so a route
//! and its description cannot part. Three routes stand outside it: the session commands,
//! one route documented as one operation per command ([`super::session::document_commands`]),
//! the `/api/…` answer to an unknown endpoint, and the player's static pages.

use std::sync::{Arc, OnceLock};

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Response as ApiResponse, ResponseBuilder};

use crate::library::model::TrackSort;

/// The document as served, set once the router is built.
#[derive(Clone, Default)]
pub struct Document(Arc<OnceLock<String>>);

impl Document {
    /// Sets the served text from `doc`, finished: the session commands added and every
    /// operation that needs the GM key given its refusals.
    pub fn publish(&self, mut doc: OpenApi) {
        super::session::document_commands(&mut doc);
        add_gm_refusals(&mut doc);
        let text = doc.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        let _ = self.0.set(text);
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "bardcast",
        description = "Synchronized sound for tabletop sessions. Reading needs no key; every change needs the GM key \
            (`Authorization: Bearer <key>`). Errors are `{\"error\":{\"code\",\"message\"}}`; times are Unix ms.",
        license(name = "MIT", identifier = "MIT")
    ),
    // Query parameters do not bring the schemas they refer to along: these are theirs.
    components(schemas(TrackSort)),
    modifiers(&GmKeyScheme),
    tags(
        (name = "session", description = "What plays, and the GM's commands"),
        (name = "scenes", description = "The GM's scenes and pads"),
        (name = "library", description = "Tracks, their files and scans"),
        (name = "folders", description = "The GM's folders of tracks"),
        (name = "cache", description = "Pre-segmenting"),
        (name = "checks", description = "Device checks from the /check page"),
        (name = "stream", description = "The live LL-HLS stream"),
        (name = "system", description = "Health, clock, metrics and this document")
    )
)]
pub struct ApiDoc;

/// The `gm_key` security scheme: the GM key as a bearer token.
struct GmKeyScheme;

impl utoipa::Modify for GmKeyScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The GM key the server printed at start (`GM_KEY`)"))
            .build();
        doc.components.get_or_insert_with(Default::default).add_security_scheme("gm_key", SecurityScheme::Http(scheme));
    }
}

/// The security requirement of an operation that needs the GM key.
pub fn gm_key_requirement() -> SecurityRequirement {
    SecurityRequirement::new("gm_key", Vec::<String>::new())
}

/// Every operation that needs the GM key may also be refused: 401 without it, 403 with a
/// wrong one, 429 from an address that sent too many wrong ones.
fn add_gm_refusals(doc: &mut OpenApi) {
    let requirement = gm_key_requirement();
    for item in doc.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            if !operation.security.as_ref().is_some_and(|s| s.contains(&requirement)) {
                continue;
            }
            for (status, description) in [
                ("401", "No GM key"),
                ("403", "A wrong GM key"),
                ("429", "Too many wrong keys from this address; `Retry-After` says when to try again"),
            ] {
                operation.responses.responses.insert(status.into(), error_response(description).into());
            }
        }
    }
}

/// An error answer: `description`, with an [`super::error::ErrorBody`].
pub fn error_response(description: &str) -> ApiResponse {
    let error = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", error).build()
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "system",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    let text = document.0.get().cloned().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
