//! The API document at `GET /api/openapi.json`: valid OpenAPI 3.1 (checked by
//! openapi-spec-validator, an independent implementation), one operation per GM command,
//! and every documented operation answered by the real server with a status the document
//! lists for it (so a documented route that the router lacks, or an answer it does not
//! describe, fails here).

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use common::Server;
use reqwest::Method;
use serde_json::Value;

/// A value for each path parameter: ids that do not exist, a real rendition and room, an old part.
fn sample(name: &str) -> &'static str {
    match name {
        "rendition" => "256k",
        "file" => "0.m4s",
        // The room every server has: its routes answer from their handlers, not 404.
        "slug" => "main",
        _ => "999999",
    }
}

#[tokio::test]
async fn the_api_document_is_valid_openapi_and_every_operation_in_it_answers_as_described() {
    let s = Server::with_fixtures("openapi").await;
    let r = s.get("/api/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    let file = common::temp_dir("openapi").join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", file.to_str().unwrap()])
        .output()
        .expect("python3 with openapi-spec-validator (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Every GM command is its own operation, with a body and the GM key.
    let paths = doc["paths"].as_object().unwrap();
    for name in bardcast::room::COMMAND_NAMES {
        let op = &paths[&format!("/api/session/{name}")]["post"];
        assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{name} has a body schema");
        assert_eq!(op["security"][0]["gm_key"], serde_json::json!([]), "{name} needs the GM key");
        assert!(op["responses"]["401"].is_object() && op["responses"]["429"].is_object(), "{name} lists its refusals");
    }

    // Every operation, asked with the GM key, an empty JSON object for a body and ids that do
    // not exist, answers from its own handler with a status the document lists.
    let mut asked = 0;
    for (template, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let mut path = template.clone();
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let name = param["name"].as_str().unwrap();
                    path = path.replace(&format!("{{{name}}}"), sample(name));
                }
            }
            assert!(!path.contains('{'), "{template}: every path parameter is documented");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = s.gm(method.clone(), &path);
            if op["requestBody"].is_object() {
                request = request.header("content-type", "application/json").body("{}");
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            let error: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path}: routed");
            assert_ne!(error["error"]["message"], "endpoint not found", "{method} {path}: routed");
            assert!(
                op["responses"][status.to_string()].is_object(),
                "{method} {path}: answered {status}, which its operation does not list: {body:.200}"
            );
            asked += 1;
        }
    }
    assert!(asked > bardcast::room::COMMAND_NAMES.len() + 30, "every operation was asked ({asked})");
}
