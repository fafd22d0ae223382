//! Scenes through the real server: kept in SQLite across a kill -9, checked field by field,
//! reordered, shared between two servers as an export file, switched to with one command
//! and their pads fired by key. What a scene sounds like is measured in `tests/stage.rs`.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::collections::HashMap;

use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

/// Makes a folder holding the tracks at `paths`; its id.
async fn folder(s: &Server, name: &str, tracks: &HashMap<String, Value>, paths: &[&str]) -> i64 {
    let (st, f) = s.gm_json(Method::POST, "/api/folders", json!({"name": name})).await;
    assert_eq!(st, 201, "{f}");
    let id = f["id"].as_i64().unwrap();
    let ids: Vec<&Value> = paths.iter().map(|p| &tracks[*p]["id"]).collect();
    let (st, body) = s.gm_json(Method::POST, &format!("/api/folders/{id}/tracks"), json!({"trackIds": ids})).await;
    assert_eq!(st, 200, "{body}");
    id
}

fn names(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn scenes_are_checked_kept_in_order_and_survive_a_kill() {
    let mut s = Server::with_fixtures("scenes-crud").await;
    let tracks = s.tracks_by_path().await;
    let id = |path: &str| tracks[path]["id"].as_i64().unwrap();
    let tavern = folder(&s, "Tavern music", &tracks, &["Tavern/dwarf.mp3", "Tavern/untagged jig.wav"]).await;
    let tavern_scene = json!({
        "name": "  The Prancing Pony ",
        "music": {"folderId": tavern, "shuffle": true, "repeat": "all"},
        "layers": [{"trackId": id("harbour.m4a"), "gain": 0.4}],
        "pads": [{"trackId": id("Battle/lament.flac"), "label": "Lament"}, {"folderId": tavern, "key": "Q", "gain": 0.5}],
        "crossfadeSeconds": 5,
    });
    let (st, created) = s.gm_json(Method::POST, "/api/scenes", tavern_scene).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["name"], "The Prancing Pony");
    assert_eq!(created["pads"][0]["key"], "1", "a pad without a key gets the first free digit");
    assert_eq!(created["pads"][1]["key"], "q");
    let lament = created["tracks"].as_array().unwrap().iter().find(|t| t["id"] == id("Battle/lament.flac")).unwrap();
    assert_eq!((lament["title"].as_str(), lament["missing"].as_bool()), (Some("Éowyn's Lament"), Some(false)));
    assert_eq!(created["folders"][0]["name"], "Tavern music");

    // A scene may name a track the library does not have: it is kept and shown as missing.
    let ambush = json!({"name": "Ambush", "layers": [{"trackId": 9999}, {"trackId": id("Battle/Boss/dragon.ogg")}]});
    let (st, second) = s.gm_json(Method::POST, "/api/scenes", ambush).await;
    assert_eq!(st, 201, "{second}");
    assert_eq!(second["tracks"][0], json!({"id": 9999, "title": "", "path": "", "missing": true}));
    let (st, third) = s.gm_json(Method::POST, "/api/scenes", json!({"name": "Camp"})).await;
    assert_eq!(st, 201, "{third}");

    // Bad input names the field and stores nothing.
    for (body, field) in [
        (json!({"name": ""}), "name:"),
        (json!({"name": "x", "layers": [{"trackId": 1, "gain": 2}]}), "layers[0].gain:"),
        (json!({"name": "x", "pads": [{"trackId": 1, "key": "ß"}]}), "pads[0].key:"),
        (json!({"name": "x", "music": {"trackId": 1, "folderId": 2}}), "music:"),
        (json!({"name": "x", "crossfadeSeconds": -1}), "crossfadeSeconds:"),
    ] {
        let (st, err) = s.gm_json(Method::POST, "/api/scenes", body.clone()).await;
        assert_eq!(st, 400, "{body}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(field), "{body}: {err}");
    }
    let (st, err) = s.gm_json(Method::POST, "/api/scenes", json!({"name": "x", "mood": "grim"})).await;
    assert_eq!(st, 400, "{err}");
    assert_eq!(s.client.get(s.url("/api/scenes")).send().await.unwrap().status(), 401, "scenes are the GM's");
    assert_eq!(s.gm(Method::GET, "/api/scenes/12345").send().await.unwrap().status(), 404);

    let first = created["id"].as_i64().unwrap();
    let (second, third) = (second["id"].as_i64().unwrap(), third["id"].as_i64().unwrap());
    let (st, list) = s.gm_json(Method::PUT, "/api/scenes/order", json!({"sceneIds": [third, first, second]})).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(names(&list), ["Camp", "The Prancing Pony", "Ambush"]);
    let (st, err) = s.gm_json(Method::PUT, "/api/scenes/order", json!({"sceneIds": [third, first]})).await;
    assert_eq!(st, 400, "an order must list every scene: {err}");
    let (st, renamed) =
        s.gm_json(Method::PUT, &format!("/api/scenes/{third}"), json!({"name": "Camp at night", "pads": []})).await;
    assert_eq!((st, renamed["position"].as_i64()), (200, Some(0)), "{renamed}");
    let deleted = s.gm(Method::DELETE, &format!("/api/scenes/{second}")).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let before = s.gm(Method::GET, "/api/scenes").send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(names(&before), ["Camp at night", "The Prancing Pony"]);

    s.kill9();
    let s = Server::start_in(&s.dir.clone(), &s.music.clone(), Options::default());
    let after = s.gm(Method::GET, "/api/scenes").send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(after, before, "scenes are kept in SQLite");
}

#[tokio::test]
async fn an_exported_scene_finds_its_music_by_path_on_another_server() {
    let a = Server::with_fixtures("scenes-export").await;
    let tracks = a.tracks_by_path().await;
    let id = |path: &str| tracks[path]["id"].as_i64().unwrap();
    let battle = folder(&a, "Battle", &tracks, &["Battle/lament.flac", "Battle/Boss/dragon.ogg"]).await;
    let spec = json!({
        "name": "Dragon's lair",
        "music": {"folderId": battle, "repeat": "one"},
        "layers": [{"trackId": id("harbour.m4a"), "gain": 0.25}, {"trackId": 4242, "gain": 0.5}],
        "pads": [{"trackId": id("Tavern/dwarf.mp3"), "label": "Burp", "gain": 0.75}, {"folderId": battle, "key": "x"}],
    });
    let (st, created) = a.gm_json(Method::POST, "/api/scenes", spec).await;
    assert_eq!(st, 201, "{created}");
    let r = a.gm(Method::GET, "/api/scenes/export").send().await.unwrap();
    assert!(r.headers()[reqwest::header::CONTENT_DISPOSITION].to_str().unwrap().contains("bardcast-scenes.json"));
    let file: Value = r.json().await.unwrap();
    assert_eq!((file["format"].as_str(), file["version"].as_i64()), (Some("bardcast-scenes"), Some(1)));

    // Server B has the same music and more, found in another order, and other folders first:
    // none of its ids match A's.
    let dir = common::temp_dir("scenes-import");
    let music = dir.join("music");
    common::copy_dir(common::fixture_library(), &music.join("Archive"));
    common::copy_dir(common::fixture_library(), &music);
    let b = Server::start_in(&dir, &music, Options::default());
    b.wait_scan_idle().await;
    let b_tracks = b.tracks_by_path().await;
    let b_id = |path: &str| b_tracks[path]["id"].as_i64().unwrap();
    assert_ne!(b_id("harbour.m4a"), id("harbour.m4a"), "the test needs different ids on B");
    folder(&b, "Tavern", &b_tracks, &["Tavern/dwarf.mp3"]).await;
    let b_battle = folder(&b, "Battle", &b_tracks, &["Battle/lament.flac"]).await;
    assert_ne!(b_battle, battle);

    let (st, imported) = b.gm_json(Method::POST, "/api/scenes/import", file.clone()).await;
    assert_eq!(st, 201, "{imported}");
    let scene = &imported["items"][0];
    assert_eq!(scene["name"], "Dragon's lair");
    assert_eq!(scene["music"], json!({"folderId": b_battle, "shuffle": false, "repeat": "one"}));
    assert_eq!(
        scene["layers"],
        json!([{"trackId": b_id("harbour.m4a"), "gain": 0.25}, {"trackId": 4242, "gain": 0.5}])
    );
    assert_eq!(scene["pads"][0]["trackId"], b_id("Tavern/dwarf.mp3"));
    assert_eq!(scene["pads"][1]["folderId"], b_battle);
    let missing: Vec<&Value> =
        scene["tracks"].as_array().unwrap().iter().filter(|t| t["missing"] == true).map(|t| &t["id"]).collect();
    assert_eq!(missing, [&json!(4242)], "only the track A did not have either is missing");

    // On the server it came from, an import is an exact copy; a broken file changes nothing.
    let (st, copy) = a.gm_json(Method::POST, "/api/scenes/import", file.clone()).await;
    assert_eq!(st, 201, "{copy}");
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in ["id", "position"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    assert_eq!(strip(&copy["items"][0]), strip(&created));
    let mut broken = file.clone();
    broken["scenes"][0]["layers"][0]["gain"] = json!(3);
    broken["scenes"] = json!([file["scenes"][0], broken["scenes"][0]]);
    let (st, err) = a.gm_json(Method::POST, "/api/scenes/import", broken).await;
    assert_eq!(st, 400, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().starts_with("scenes[1].layers[0].gain:"), "{err}");
    let (st, err) =
        a.gm_json(Method::POST, "/api/scenes/import", json!({"format": "kenku", "version": 1, "scenes": []})).await;
    assert_eq!(st, 400, "{err}");
    let list = a.gm(Method::GET, "/api/scenes").send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(names(&list), ["Dragon's lair", "Dragon's lair"], "the broken file added nothing");
}

#[tokio::test]
async fn a_scene_switch_is_one_command_and_its_pads_fire_by_key() {
    let s = Server::with_fixtures("scenes-switch").await;
    let tracks = s.tracks_by_path().await;
    let id = |path: &str| tracks[path]["id"].as_i64().unwrap();
    let tavern = folder(&s, "Tavern", &tracks, &["Tavern/dwarf.mp3", "Tavern/untagged jig.wav"]).await;
    let spec = json!({
        "name": "Tavern",
        "music": {"folderId": tavern, "repeat": "all"},
        "layers": [{"trackId": id("harbour.m4a"), "gain": 0.5}, {"trackId": 777}],
        "pads": [{"trackId": id("Battle/lament.flac"), "key": "l"}],
    });
    let (_, scene) = s.gm_json(Method::POST, "/api/scenes", spec).await;
    let scene_id = scene["id"].as_i64().unwrap();
    let (st, err) = s.gm_json(Method::POST, "/api/session/pad", json!({"key": "l"})).await;
    assert_eq!(st, 409, "no scene plays yet: {err}");

    let (st, state) = s.gm_json(Method::POST, "/api/session/scene", json!({"sceneId": scene_id})).await;
    assert_eq!(st, 200, "{state}");
    assert_eq!(state["scene"]["name"], "Tavern");
    assert_eq!(state["nowPlaying"]["trackId"], id("Tavern/dwarf.mp3"));
    assert_eq!((state["repeat"].as_str(), state["queueFolderId"].as_i64()), (Some("all"), Some(tavern)));
    let layers: Vec<(i64, f64)> = state["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["trackId"].as_i64().unwrap(), l["gain"].as_f64().unwrap()))
        .collect();
    assert_eq!(layers, [(id("harbour.m4a"), 0.5)]);
    let skipped = state["scene"]["skipped"].as_array().unwrap();
    assert!(skipped.len() == 1 && skipped[0].as_str().unwrap().contains("777"), "{state}");
    let listener_view = s.get_json("/api/session").await;
    assert_eq!(listener_view["scene"], state["scene"]);

    let (st, fired) = s.gm_json(Method::POST, "/api/session/pad", json!({"key": "L"})).await;
    assert_eq!(st, 200, "{fired}");
    assert!(fired["effectiveAtMs"].as_u64().unwrap() >= state["effectiveAtMs"].as_u64().unwrap());
    let (st, err) = s.gm_json(Method::POST, "/api/session/pad", json!({"key": "z"})).await;
    assert_eq!(st, 400, "{err}");
    let (st, err) = s.gm_json(Method::POST, "/api/session/scene", json!({"sceneId": 999})).await;
    assert_eq!(st, 404, "{err}");

    // "Save the stage as a scene" keeps what plays now, with the pads of the scene playing.
    let (st, saved) = s.gm_json(Method::POST, "/api/scenes/from-stage", json!({"name": "Tavern, later"})).await;
    assert_eq!(st, 201, "{saved}");
    assert_eq!(saved["music"], json!({"folderId": tavern, "shuffle": false, "repeat": "all"}));
    assert_eq!(saved["layers"], json!([{"trackId": id("harbour.m4a"), "gain": 0.5}]));
    assert_eq!(saved["pads"], scene["pads"]);
}
