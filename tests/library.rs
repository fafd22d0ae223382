//! The library end to end: the real server on 127.0.0.1:0, a generated music folder.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::time::Duration;

use common::{Options, Server, GM_KEY};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn scan_reads_every_format_and_records_failures() {
    let s = Server::with_fixtures("scan").await;
    let status = s.get_json("/api/scan/status").await;
    assert_eq!(status["state"], "idle");
    assert_eq!(status["added"], 6, "{status}");
    assert_eq!(status["errors"], 4, "{status}");

    let tracks = s.tracks_by_path().await;
    let mut paths: Vec<_> = tracks.keys().cloned().collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "Battle/Boss/dragon.ogg",
            "Battle/lament.flac",
            "Tavern/dwarf.mp3",
            "Tavern/untagged jig.wav",
            "harbour.m4a",
            "odd-\u{fffd}-name.wav",
        ]
    );
    let dwarf = &tracks["Tavern/dwarf.mp3"];
    assert_eq!(dwarf["title"], "Drunken Dwarf");
    assert_eq!(dwarf["artist"], "The Bards");
    assert_eq!(dwarf["album"], "Ale");
    assert_eq!(dwarf["trackNumber"], 3);
    assert_eq!(dwarf["discNumber"], 1);
    assert_eq!(dwarf["format"], "mp3");
    assert_eq!(dwarf["sampleRate"], 44100);
    assert_eq!(dwarf["channels"], 1);
    assert_eq!(dwarf["hasCover"], true);
    assert_eq!(dwarf["missing"], false);
    assert!((dwarf["duration"].as_f64().unwrap() - 3.0).abs() < 0.1, "{dwarf}");
    assert!(dwarf["bitrate"].as_u64().unwrap() > 100, "{dwarf}");
    assert!(dwarf["fileSize"].as_u64().unwrap() > 1000);

    // Tag keys in any letter case.
    let lament = &tracks["Battle/lament.flac"];
    assert_eq!(lament["title"], "Éowyn's Lament");
    assert_eq!(lament["artist"], "Rohirrim Choir");
    assert_eq!(lament["trackNumber"], 7);
    assert_eq!(lament["format"], "flac");
    assert_eq!(tracks["Battle/Boss/dragon.ogg"]["format"], "ogg");
    assert_eq!(tracks["harbour.m4a"]["format"], "m4a");
    assert_eq!(tracks["harbour.m4a"]["title"], "Quiet Harbour");
    // The file name stands in for a missing title.
    let jig = &tracks["Tavern/untagged jig.wav"];
    assert_eq!(jig["title"], "untagged jig");
    assert_eq!(jig["filename"], "untagged jig.wav");
    assert!(jig["artist"].is_null());
    assert_eq!(jig["hasCover"], false);

    let errors = s.get_json("/api/scan/errors").await;
    let mut failed: Vec<(String, String)> = errors["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["filepath"].as_str().unwrap().to_owned(), e["reason"].as_str().unwrap().to_owned()))
        .collect();
    failed.sort();
    let names: Vec<_> = failed.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["corrupt.ogg", "empty.mp3", "notes-not-audio.mp3", "truncated.flac"]);
    assert!(failed.iter().all(|f| !f.1.is_empty()));
    assert!(failed[1].1.contains("empty"), "{failed:?}");
}

#[tokio::test]
async fn scan_never_writes_to_the_music_folder() {
    let dir = common::temp_dir("readonly");
    let music = dir.join("music");
    common::copy_dir(common::fixture_library(), &music);
    let before = snapshot(&music);
    let s = Server::start_in(&dir, &music, Options::default());
    s.wait_scan_idle().await;
    s.rescan().await;
    let id = s.tracks_by_path().await["Tavern/dwarf.mp3"]["id"].clone();
    s.get(&format!("/api/tracks/{id}/cover")).await;
    s.get(&format!("/api/tracks/{id}/metadata")).await;
    s.get(&format!("/audio/{id}")).await;
    assert_eq!(snapshot(&music), before);
}

/// Every path under `dir` with its size, mtime and permissions.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            (e.path().to_path_buf(), m.len(), m.modified().unwrap(), m.permissions().mode())
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn search_is_full_text_prefix_and_accent_insensitive() {
    let s = Server::with_fixtures("search").await;
    let titles = |v: Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(titles(s.get_json("/api/tracks?search=drag").await), ["Dragon Fight"]);
    assert_eq!(titles(s.get_json("/api/tracks?search=eowyn").await), ["Éowyn's Lament"]);
    assert_eq!(titles(s.get_json("/api/tracks?search=ÉOWYN%20lam").await), ["Éowyn's Lament"]);
    assert_eq!(titles(s.get_json("/api/tracks?search=bards").await), ["Drunken Dwarf"]);
    assert_eq!(titles(s.get_json("/api/tracks?search=edoras").await), ["Éowyn's Lament"]); // album
    assert_eq!(titles(s.get_json("/api/tracks?search=jig").await), ["untagged jig"]); // file name
    assert!(titles(s.get_json("/api/tracks?search=nothing-like-this").await).is_empty());
    // Operators in user text are just text.
    assert!(titles(s.get_json("/api/tracks?search=%22%2A%28%29").await).is_empty());

    let page1 = s.get_json("/api/tracks?limit=4&page=1&sort=title").await;
    let page2 = s.get_json("/api/tracks?limit=4&page=2&sort=title").await;
    assert_eq!(page1["total"], 6);
    assert_eq!(page1["page"], 1);
    assert_eq!(page1["limit"], 4);
    assert_eq!(page1["items"].as_array().unwrap().len(), 4);
    assert_eq!(page2["items"].as_array().unwrap().len(), 2);
    let mut all = titles(page1);
    all.extend(titles(page2));
    let mut sorted = all.clone();
    sorted.sort_by_key(|t| t.to_lowercase());
    assert_eq!(all, sorted);

    for bad in [
        "/api/tracks?limit=501",
        "/api/tracks?limit=0",
        "/api/tracks?page=0",
        "/api/tracks?sort=nope",
        "/api/tracks?folder_id=abc",
        "/api/tracks?bogus=1",
    ] {
        let r = s.get(bad).await;
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn track_endpoints_and_audio_ranges() {
    let s = Server::with_fixtures("tracks").await;
    let tracks = s.tracks_by_path().await;
    let dwarf = tracks["Tavern/dwarf.mp3"]["id"].as_i64().unwrap();
    let jig = tracks["Tavern/untagged jig.wav"]["id"].as_i64().unwrap();

    assert_eq!(s.get_json(&format!("/api/tracks/{dwarf}")).await, tracks["Tavern/dwarf.mp3"]);
    assert_eq!(s.get("/api/tracks/999999").await.status(), 404);
    assert_eq!(s.get("/api/tracks/abc").await.status(), 400);

    let meta = s.get_json(&format!("/api/tracks/{dwarf}/metadata")).await;
    assert_eq!(meta["track"]["id"], dwarf);
    assert_eq!(meta["pictures"], 1);
    let tags = meta["tags"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["key"] == "TIT2" && t["value"] == "Drunken Dwarf"), "{meta}");

    let cover = s.get(&format!("/api/tracks/{dwarf}/cover")).await;
    assert_eq!(cover.status(), 200);
    assert_eq!(cover.headers()["content-type"], "image/png");
    let etag = cover.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = cover.bytes().await.unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let again =
        s.client.get(s.url(&format!("/api/tracks/{dwarf}/cover"))).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(s.get(&format!("/api/tracks/{jig}/cover")).await.status(), 404);

    let path = format!("/audio/{dwarf}");
    let full = s.get(&path).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "audio/mpeg");
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert!(full.headers().contains_key("last-modified"));
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    let body = full.bytes().await.unwrap();
    let on_disk = std::fs::read(s.music.join("Tavern/dwarf.mp3")).unwrap();
    assert_eq!(body.as_ref(), on_disk.as_slice());

    let ranged = s.client.get(s.url(&path)).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(ranged.headers()["content-range"], format!("bytes 10-19/{}", on_disk.len()));
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &on_disk[10..20]);
    let suffix = s.client.get(s.url(&path)).header("range", "bytes=-5").send().await.unwrap();
    assert_eq!(suffix.bytes().await.unwrap().as_ref(), &on_disk[on_disk.len() - 5..]);
    let beyond = s.client.get(s.url(&path)).header("range", format!("bytes={}-", on_disk.len())).send().await.unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], format!("bytes */{}", on_disk.len()));
    let cached = s.client.get(s.url(&path)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    assert_eq!(s.get("/audio/424242").await.status(), 404);
    assert_eq!(s.get("/audio/..%2F..%2Fetc%2Fpasswd").await.status(), 400);
}

#[tokio::test]
async fn gm_key_guards_every_change() {
    let s = Server::with_fixtures("auth").await;
    let id = s.tracks_by_path().await["harbour.m4a"]["id"].as_i64().unwrap();
    let (_, folder) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Keep"})).await;
    let fid = folder["id"].as_i64().unwrap();
    let changes: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/api/folders".into(), json!({"name": "x"})),
        (Method::PUT, format!("/api/folders/{fid}"), json!({"name": "y"})),
        (Method::DELETE, format!("/api/folders/{fid}"), Value::Null),
        (Method::POST, format!("/api/folders/{fid}/tracks"), json!({"trackIds": [id]})),
        (Method::PUT, format!("/api/folders/{fid}/tracks/order"), json!({"trackIds": []})),
        (Method::POST, format!("/api/tracks/{id}/folders/{fid}"), Value::Null),
        (Method::DELETE, format!("/api/tracks/{id}/folders/{fid}"), Value::Null),
        (Method::POST, "/api/scan".into(), Value::Null),
    ];
    for (method, path, body) in changes {
        let none = s.client.request(method.clone(), s.url(&path)).json(&body).send().await.unwrap();
        assert_eq!(none.status(), 401, "{method} {path}");
        let err: Value = none.json().await.unwrap();
        assert_eq!(err["error"]["code"], "unauthorized");
        let wrong =
            s.client.request(method.clone(), s.url(&path)).bearer_auth("wrong").json(&body).send().await.unwrap();
        assert_eq!(wrong.status(), 403, "{method} {path}");
    }
    // Nothing changed.
    let tree = s.get_json("/api/folders").await;
    assert_eq!(tree["items"].as_array().unwrap().len(), 1);
    assert_eq!(tree["items"][0]["name"], "Keep");
    assert_eq!(tree["items"][0]["trackCount"], 0);
}

#[tokio::test]
async fn folders_nest_move_reorder_and_hold_tracks() {
    let s = Server::with_fixtures("folders").await;
    let t = s.tracks_by_path().await;
    let id = |p: &str| t[p]["id"].as_i64().unwrap();
    let (dwarf, lament, dragon, jig) =
        (id("Tavern/dwarf.mp3"), id("Battle/lament.flac"), id("Battle/Boss/dragon.ogg"), id("Tavern/untagged jig.wav"));

    let (st, session) = s.gm_json(Method::POST, "/api/folders", json!({"name": "  Session 12  "})).await;
    assert_eq!(st, 201);
    assert_eq!(session["name"], "Session 12");
    let sid = session["id"].as_i64().unwrap();
    let (_, combat) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Combat", "parentId": sid})).await;
    let cid = combat["id"].as_i64().unwrap();
    assert_eq!(combat["parentId"], sid);
    let (_, boss) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Boss", "parentId": cid})).await;
    let bid = boss["id"].as_i64().unwrap();
    let (_, calm) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Calm", "parentId": sid})).await;
    let calm_id = calm["id"].as_i64().unwrap();
    assert_eq!(s.gm_json(Method::POST, "/api/folders", json!({"name": "x", "parentId": 9999})).await.0, 404);
    assert_eq!(s.gm_json(Method::POST, "/api/folders", json!({"name": "   "})).await.0, 400);

    // Many tracks into one folder, one request; a track can sit in many folders.
    let (st, f) = s
        .gm_json(Method::POST, &format!("/api/folders/{cid}/tracks"), json!({"trackIds": [lament, dragon, dwarf]}))
        .await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(f["trackCount"], 3);
    let (st, _) = s.gm_json(Method::POST, &format!("/api/tracks/{dragon}/folders/{bid}"), Value::Null).await;
    assert_eq!(st, 201);
    let (st, _) =
        s.gm_json(Method::POST, &format!("/api/folders/{cid}/tracks"), json!({"trackIds": [jig], "position": 0})).await;
    assert_eq!(st, 200);
    let order =
        |v: Value| -> Vec<i64> { v["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect() };
    assert_eq!(order(s.get_json(&format!("/api/folders/{cid}/tracks")).await), [jig, lament, dragon, dwarf]);
    assert_eq!(order(s.get_json(&format!("/api/tracks?folder_id={cid}")).await), [jig, lament, dragon, dwarf]);
    assert_eq!(
        s.gm_json(Method::POST, &format!("/api/folders/{cid}/tracks"), json!({"trackIds": [123456]})).await.0,
        404
    );

    // Reorder.
    let (st, _) = s
        .gm_json(
            Method::PUT,
            &format!("/api/folders/{cid}/tracks/order"),
            json!({"trackIds": [dwarf, dragon, lament, jig]}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(order(s.get_json(&format!("/api/folders/{cid}/tracks")).await), [dwarf, dragon, lament, jig]);
    let (st, _) =
        s.gm_json(Method::PUT, &format!("/api/folders/{cid}/tracks/order"), json!({"trackIds": [dwarf]})).await;
    assert_eq!(st, 400, "an order must name every track");

    // Remove one membership.
    let r = s.gm(Method::DELETE, &format!("/api/tracks/{dragon}/folders/{cid}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(order(s.get_json(&format!("/api/folders/{cid}/tracks")).await), [dwarf, lament, jig]);
    let r = s.gm(Method::DELETE, &format!("/api/tracks/{dragon}/folders/{cid}")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Tree with counts.
    let tree = s.get_json("/api/folders").await;
    let root = &tree["items"][0];
    assert_eq!(root["name"], "Session 12");
    assert_eq!(root["children"][0]["name"], "Combat");
    assert_eq!(root["children"][0]["trackCount"], 3);
    assert_eq!(root["children"][0]["children"][0]["name"], "Boss");
    assert_eq!(root["children"][0]["children"][0]["trackCount"], 1);
    assert_eq!(root["children"][1]["name"], "Calm");

    // Rename, reorder siblings, move.
    let (st, f) = s.gm_json(Method::PUT, &format!("/api/folders/{cid}"), json!({"name": "Fights"})).await;
    assert_eq!((st, f["name"].as_str()), (200, Some("Fights")));
    let (st, _) = s.gm_json(Method::PUT, &format!("/api/folders/{calm_id}"), json!({"sortOrder": 0})).await;
    assert_eq!(st, 200);
    let tree = s.get_json("/api/folders").await;
    assert_eq!(tree["items"][0]["children"][0]["name"], "Calm");
    assert_eq!(tree["items"][0]["children"][1]["name"], "Fights");
    let (st, f) = s.gm_json(Method::PUT, &format!("/api/folders/{bid}"), json!({"parentId": null})).await;
    assert_eq!(st, 200);
    assert!(f["parentId"].is_null());
    let (st, _) = s.gm_json(Method::PUT, &format!("/api/folders/{bid}"), json!({"parentId": calm_id})).await;
    assert_eq!(st, 200);

    // The rename rule: never under itself or a descendant.
    let (st, err) = s.gm_json(Method::PUT, &format!("/api/folders/{sid}"), json!({"parentId": sid})).await;
    assert_eq!(st, 409, "{err}");
    assert_eq!(err["error"]["code"], "conflict");
    let (st, _) = s.gm_json(Method::PUT, &format!("/api/folders/{sid}"), json!({"parentId": bid})).await;
    assert_eq!(st, 409);
    assert_eq!(s.gm_json(Method::PUT, "/api/folders/9999", json!({"name": "x"})).await.0, 404);

    // Delete: sub-folders and memberships go, tracks stay.
    let r = s.gm(Method::DELETE, &format!("/api/folders/{sid}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(s.get(&format!("/api/folders/{bid}")).await.status(), 404);
    assert_eq!(s.get(&format!("/api/folders/{cid}/tracks")).await.status(), 404);
    assert!(s.get_json("/api/folders").await["items"].as_array().unwrap().is_empty());
    assert_eq!(s.get_json("/api/tracks").await["total"], 6);
    assert_eq!(s.gm(Method::DELETE, &format!("/api/folders/{sid}")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn bad_requests_are_refused_and_write_nothing() {
    let s = Server::with_fixtures("badreq").await;
    let bad: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/api/folders", b"{not json".to_vec(), 400),
        ("/api/folders", br#"{"name": 5}"#.to_vec(), 400),
        ("/api/folders", br#"{"name": "x", "colour": "red"}"#.to_vec(), 400),
        ("/api/folders", br#"{"name": "x", "parentId": "abc"}"#.to_vec(), 400),
        ("/api/folders", vec![b' '; 2 * 1024 * 1024], 413),
    ];
    for (path, body, want) in bad {
        // A fresh connection each time: the server closes one whose body it refused.
        let client = reqwest::Client::new();
        let r = client
            .post(s.url(path))
            .bearer_auth(GM_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
        let err: Value = r.json().await.unwrap();
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    }
    let r = s.gm(Method::POST, "/api/folders").body(r#"{"name":"x"}"#).send().await.unwrap();
    assert_eq!(r.status(), 400, "a body without a JSON content type");
    assert!(s.get_json("/api/folders").await["items"].as_array().unwrap().is_empty());
    let r = s.get("/api/nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

#[tokio::test]
async fn rescans_are_incremental_and_follow_moves_and_deletions() {
    let s = Server::with_fixtures("rescan").await;
    let first = s.tracks_by_path().await;
    let dwarf = first["Tavern/dwarf.mp3"]["id"].as_i64().unwrap();
    let (_, folder) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Tavern night"})).await;
    let fid = folder["id"].as_i64().unwrap();
    s.gm_json(Method::POST, &format!("/api/folders/{fid}/tracks"), json!({"trackIds": [dwarf]})).await;

    // Nothing changed: nothing is reopened.
    let again = s.rescan().await;
    assert_eq!(again["seen"], 10, "{again}"); // six tracks and four broken files
    assert_eq!(again["toProcess"], 4, "only the failed files are read again: {again}");
    assert_eq!(again["added"], 0);
    assert_eq!(again["updated"], 0);
    assert_eq!(again["missing"], 0);

    // A move and rename keeps the id and the folder membership.
    std::fs::create_dir_all(s.music.join("Moved")).unwrap();
    std::fs::rename(s.music.join("Tavern/dwarf.mp3"), s.music.join("Moved/renamed dwarf.mp3")).unwrap();
    let moved = s.rescan().await;
    assert_eq!(
        (moved["added"].as_u64(), moved["updated"].as_u64(), moved["missing"].as_u64()),
        (Some(0), Some(1), Some(0)),
        "{moved}"
    );
    let now = s.tracks_by_path().await;
    assert!(!now.contains_key("Tavern/dwarf.mp3"));
    assert_eq!(now["Moved/renamed dwarf.mp3"]["id"], dwarf);
    assert_eq!(now["Moved/renamed dwarf.mp3"]["missing"], false);
    let members = s.get_json(&format!("/api/folders/{fid}/tracks")).await;
    assert_eq!(members["items"][0]["id"], dwarf);

    // A vanished file is marked missing, keeps its membership, and comes back.
    let moved_path = s.music.join("Moved/renamed dwarf.mp3");
    let stash = s.dir.join("stash.mp3");
    std::fs::rename(&moved_path, &stash).unwrap();
    let gone = s.rescan().await;
    assert_eq!(gone["missing"], 1, "{gone}");
    let t = s.get_json(&format!("/api/tracks/{dwarf}")).await;
    assert_eq!(t["missing"], true);
    assert_eq!(s.get(&format!("/audio/{dwarf}")).await.status(), 404);
    assert_eq!(s.get_json(&format!("/api/folders/{fid}/tracks")).await["items"][0]["missing"], true);
    std::fs::rename(&stash, s.music.join("back again.mp3")).unwrap();
    s.rescan().await;
    let t = s.get_json(&format!("/api/tracks/{dwarf}")).await;
    assert_eq!(t["missing"], false);
    assert_eq!(t["filepath"], "back again.mp3");
    assert_eq!(s.get_json(&format!("/api/folders/{fid}/tracks")).await["items"][0]["id"], dwarf);

    // A changed file is read again and keeps its id.
    let jig = now["Tavern/untagged jig.wav"]["id"].clone();
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=4",
        "-metadata",
        "title=Retagged Jig",
        s.music.join("Tavern/untagged jig.wav").to_str().unwrap(),
    ]);
    let changed = s.rescan().await;
    assert_eq!(changed["updated"], 1, "{changed}");
    let t = s.get_json(&format!("/api/tracks/{jig}")).await;
    assert_eq!(t["title"], "Retagged Jig");
}

#[tokio::test]
async fn a_second_scan_while_one_runs_is_a_conflict() {
    let dir = common::temp_dir("conflict");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let wav = common::fixture_library().join("Tavern/untagged jig.wav");
    for i in 0..3000 {
        std::fs::copy(&wav, music.join(format!("copy {i:04}.wav"))).unwrap();
    }
    let s = Server::start_in(&dir, &music, Options { scan_on_startup: false, ..Default::default() });
    let first = s.gm(Method::POST, "/api/scan").send().await.unwrap();
    assert_eq!(first.status(), 202);
    let second = s.gm(Method::POST, "/api/scan").send().await.unwrap();
    assert_eq!(second.status(), 409);
    let status = s.get_json("/api/scan/status").await;
    assert_eq!(status["state"], "scanning");
    let done = s.wait_scan_idle().await;
    assert_eq!(done["added"], 3000);
}

#[tokio::test]
async fn state_survives_restarts_and_the_generated_key_is_kept() {
    let dir = common::temp_dir("restart");
    let music = dir.join("music");
    common::copy_dir(common::fixture_library(), &music);
    let opts = || Options { gm_key: None, ..Default::default() };
    let mut s = Server::start_in(&dir, &music, opts());
    s.wait_scan_idle().await;
    let key_line = s.stdout_lines.iter().find(|l| l.contains("/gm?key=")).cloned().unwrap();
    let key = key_line.rsplit("key=").next().unwrap().to_owned();
    assert!(key.len() >= 20);
    let before = s.tracks_by_path().await;
    let r =
        s.client.post(s.url("/api/folders")).bearer_auth(&key).json(&json!({"name": "Persist"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(s.terminate().code(), Some(0), "SIGTERM exits 0");

    let s = Server::start_in(&dir, &music, opts());
    s.wait_scan_idle().await;
    assert!(s.stdout_lines.iter().any(|l| l.ends_with(&format!("key={key}"))), "{:?}", s.stdout_lines);
    assert_eq!(s.tracks_by_path().await, before, "ids and tracks are stable across restarts");
    assert_eq!(s.get_json("/api/folders").await["items"][0]["name"], "Persist");
    let r = s.client.post(s.url("/api/folders")).bearer_auth(GM_KEY).json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn kill_9_during_scan_and_folder_edits_loses_no_committed_change() {
    let dir = common::temp_dir("kill9");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let wav = common::fixture_library().join("Tavern/untagged jig.wav");
    for i in 0..4000 {
        std::fs::copy(&wav, music.join(format!("t{i:05}.wav"))).unwrap();
    }
    let mut s = Server::start_in(&dir, &music, Options::default());
    // Folder edits race the scan; every edit that got its answer must survive.
    let mut committed = Vec::new();
    for i in 0..40 {
        let (st, f) = s.gm_json(Method::POST, "/api/folders", json!({"name": format!("f{i}")})).await;
        assert_eq!(st, 201);
        committed.push(f["id"].as_i64().unwrap());
    }
    // Fire more edits without waiting, then kill mid-flight.
    let client = s.client.clone();
    let url = s.url("/api/folders");
    let inflight = tokio::spawn(async move {
        for i in 0..200 {
            let _ = client
                .post(&url)
                .bearer_auth(GM_KEY)
                .json(&json!({"name": format!("late{i}")}))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mid = s.get_json("/api/scan/status").await;
    s.kill9();
    inflight.abort();
    assert_eq!(mid["state"], "scanning", "the kill should land during the scan: {mid}");

    {
        let db = bardcast::library::db::Db::open(&s.db).unwrap();
        assert_eq!(db.check_integrity().unwrap(), Ok(()));
    }
    let s2 = Server::start_in(&dir, &music, Options::default());
    let done = s2.wait_scan_idle().await;
    let tree = s2.get_json("/api/folders").await;
    let ids: Vec<i64> = tree["items"].as_array().unwrap().iter().map(|f| f["id"].as_i64().unwrap()).collect();
    for id in committed {
        assert!(ids.contains(&id), "folder {id} was committed before the kill");
    }
    assert_eq!(s2.get_json("/api/tracks?limit=1").await["total"], 4000, "{done}");
}

#[tokio::test]
async fn a_missing_music_folder_is_reported_not_fatal() {
    let dir = common::temp_dir("nomusic");
    let s = Server::start_in(&dir, &dir.join("does-not-exist"), Options::default());
    let health = s.get_json("/api/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["database"], "ok");
    assert!(health["musicDirError"].as_str().unwrap().contains("does-not-exist"), "{health}");
    let r = s.gm(Method::POST, "/api/scan").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let st = s.wait_scan_idle().await;
    assert!(st["failure"].as_str().unwrap().contains("music folder"), "{st}");
    assert_eq!(s.get_json("/api/tracks").await["total"], 0);
}

#[test]
fn bad_configuration_gets_one_clear_line_and_exit_code_2() {
    for (var, value) in
        [("PORT", "abc"), ("SCAN_ON_STARTUP", "maybe"), ("LOG_FORMAT", "xml"), ("LOG_LEVEL", "info,,=x[")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bardcast")).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.lines().next().unwrap().starts_with("error: invalid value"), "{var}: {err}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_bardcast")).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for var in [
        "PORT",
        "HOST",
        "MUSIC_DIR",
        "DATABASE_PATH",
        "CACHE_DIR",
        "GM_KEY",
        "SCAN_ON_STARTUP",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ] {
        assert!(text.contains(&format!("[env: {var}")), "--help names {var}");
    }
}

#[tokio::test]
async fn demo_mode_makes_a_playable_library() {
    let dir = common::temp_dir("demo");
    let s = Server::start_in(
        &dir,
        &dir.join("unused"),
        Options { extra_env: vec![("DEMO".into(), "true".into())], ..Default::default() },
    );
    s.wait_scan_idle().await;
    let page = s.get_json("/api/tracks?sort=title").await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["items"][0]["title"], "Battle Drums");
    assert_eq!(page["items"][0]["artist"], "bardcast demo");
    assert!(page["items"][0]["duration"].as_f64().unwrap() > 30.0);
    assert_eq!(s.get_json("/api/health").await["status"], "ok");
}
