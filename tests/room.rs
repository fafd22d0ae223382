//! The room: live LL-HLS on the wall clock, GM commands, persistence.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bardcast::cache::SourceKey;
use bardcast::clock::{unix_ms, Clock, ManualClock};
use bardcast::config::Cli;
use bardcast::App;
use clap::Parser;
use common::GM_KEY;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A music folder of short tracks (fast to encode), generated once per test binary.
fn short_tracks() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::temp_dir("short").join("music");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, freq, secs) in [("a.flac", 440, 5), ("b.mp3", 660, 7), ("c.ogg", 330, 3)] {
            common::ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                &format!("sine=frequency={freq}:duration={secs}:sample_rate=44100"),
                "-metadata",
                &format!("title=Tone {freq}"),
                dir.join(name).to_str().unwrap(),
            ]);
        }
        dir
    })
}

/// An in-process server driven by a manual clock.
async fn manual_app(name: &str, clock: Arc<ManualClock>) -> (App, std::path::PathBuf) {
    let dir = common::temp_dir(name);
    let app = manual_app_in(&dir, clock, &[]).await;
    (app, dir)
}

/// An in-process server on the data folder `dir` (music copied in once), with more flags.
async fn manual_app_in(dir: &std::path::Path, clock: Arc<ManualClock>, flags: &[&str]) -> App {
    let music = dir.join("music");
    if !music.exists() {
        common::copy_dir(short_tracks(), &music);
    }
    let mut args = vec![
        "bardcast".to_owned(),
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "0".into(),
        "--music-dir".into(),
        music.to_str().unwrap().into(),
        "--database-path".into(),
        dir.join("db.sqlite").to_str().unwrap().into(),
        "--cache-dir".into(),
        dir.join("cache").to_str().unwrap().into(),
        "--gm-key".into(),
        GM_KEY.into(),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let cli = Cli::try_parse_from(args).unwrap();
    let app = App::start(&cli.serve, clock as Arc<dyn Clock>).await.unwrap();
    // Wait for the startup scan.
    let mut status = app.state.library.scan_status();
    status.wait_for(|s| s.state == "idle" && s.last_finished_at.is_some()).await.unwrap();
    app
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {GM_KEY}"));
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
    (parts.status, parts.headers, bytes)
}

fn parse_media(text: &[u8]) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{}", String::from_utf8_lossy(text)),
    }
}

/// The AAC frames of a part (its mdat payload).
fn frames(part: &[u8]) -> Vec<Vec<u8>> {
    segmenter::fmp4::parse_part(part).unwrap().frames.iter().map(|f| f.to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulation_of_a_day_of_random_commands_and_restarts_on_a_busy_stage_keeps_every_hls_promise() {
    let start = UNIX_EPOCH + Duration::from_millis(1_764_028_800_000);
    let clock = Arc::new(ManualClock::new(start));
    let (mut app, dir) = manual_app("sim", clock.clone()).await;
    let mut state = app.state.clone();
    let mut router = bardcast::router(state.clone());
    let (_, _, body) = call(&router, "GET", "/api/tracks", None).await;
    let tracks: Value = serde_json::from_slice(&body).unwrap();
    let ids: Vec<i64> = tracks["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    let (st, _, body) = call(&router, "POST", "/api/folders", Some(json!({"name": "All"}))).await;
    assert_eq!(st, 201);
    let folder = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    call(&router, "POST", &format!("/api/folders/{folder}/tracks"), Some(json!({"trackIds": ids}))).await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // URI → (bytes, when first fetched in ms).
    let mut seen: HashMap<String, (Vec<u8>, u64)> = HashMap::new();
    let mut last_playlist: Option<m3u8_rs::MediaPlaylist> = None;
    let mut commands = 0;
    let mut checked_parts = 0;
    // A day: every part in which something sounds is rendered (mixed and encoded), which
    // in a debug build takes 20-60 ms on a busy stage; so steps average about a minute.
    let span = Duration::from_secs(24 * 3600);
    let mut track_parts_seen = 0;
    let layer_ids = |v: &Value| -> Vec<u64> {
        v["layers"].as_array().map(|l| l.iter().filter_map(|l| l["id"].as_u64()).collect()).unwrap_or_default()
    };
    let mut layers: Vec<u64> = Vec::new();
    let mut restarts = 0;
    while clock.now().duration_since(start).unwrap() < span {
        // Mostly short steps (to see every part), sometimes long jumps.
        let step = if rng.random_bool(0.8) { rng.random_range(100..2500) } else { rng.random_range(2_500..600_000) };
        clock.advance(Duration::from_millis(step));
        // Now and then the server stops where it is, as a crash would, and starts again on
        // the same data: the room is as it was, and what it published keeps its bytes.
        if rng.random_bool(0.006) {
            // As the actor's ticks would: one look-ahead schedules one track (or loop).
            for _ in 0..4 {
                state.rooms.main().stage.maintain().await;
            }
            let (_, _, before) = call(&router, "GET", "/api/session", None).await;
            state.rooms.main().stage.stop().await;
            state.cache.close();
            drop((router, state, app));
            app = manual_app_in(&dir, clock.clone(), &[]).await;
            state = app.state.clone();
            router = bardcast::router(state.clone());
            let (_, _, after) = call(&router, "GET", "/api/session", None).await;
            let room = |body: &[u8]| {
                let mut v: Value = serde_json::from_slice(body).unwrap();
                v.as_object_mut().unwrap().remove("delay");
                v
            };
            assert_eq!(room(&before), room(&after), "the room changed across a restart");
            for (uri, (bytes, _)) in &seen {
                let (st, _, again) = call(&router, "GET", uri, None).await;
                assert_eq!(st, 200, "{uri}");
                assert!(&again == bytes, "{uri} changed across a restart");
            }
            restarts += 1;
        }
        if rng.random_bool(0.35) {
            let track = ids[rng.random_range(0..ids.len())];
            let layer = layers.get(rng.random_range(0..layers.len().max(1))).copied().unwrap_or(0);
            let (name, body) = match rng.random_range(0..22) {
                14 => ("layer", json!({"action": "add", "trackId": track, "gain": rng.random_range(0.0..1.0)})),
                15 => ("layer", json!({"action": "gain", "layerId": layer, "gain": rng.random_range(0.0..1.0)})),
                16 => {
                    ("layer", json!({"action": "remove", "layerId": layer, "fadeSeconds": rng.random_range(0.0..4.0)}))
                }
                17 if rng.random_bool(0.2) => ("layer", json!({"action": "clear"})),
                17 | 18 => ("oneshot", json!({"trackId": track, "gain": rng.random_range(0.2..1.0)})),
                19 => ("oneshot", json!({"folderId": folder})),
                20 => ("duck", json!({"on": rng.random_bool(0.5)})),
                21 => (
                    "settings",
                    json!({"crossfadeSeconds": rng.random_range(0.0..12.0), "normalize": rng.random_bool(0.7)}),
                ),
                0 => (
                    "play",
                    json!({"trackId": ids[rng.random_range(0..ids.len())], "position": rng.random_range(0.0..4.0)}),
                ),
                1 => ("play", json!({"folderId": folder, "shuffle": rng.random_bool(0.5)})),
                2 => ("pause", json!({})),
                3 => ("resume", json!({})),
                4 => ("seek", json!({"position": rng.random_range(0.0..3.0)})),
                5 => ("stop", json!({})),
                6 => ("next", json!({})),
                7 => ("previous", json!({})),
                8 => ("queue", json!({"action": "add", "trackIds": [ids[rng.random_range(0..ids.len())]]})),
                9 => ("queue", json!({"action": "move", "from": rng.random_range(0..4), "to": rng.random_range(0..4)})),
                10 => {
                    let mode = ["off", "one", "all"][rng.random_range(0..3usize)];
                    ("repeat", json!({"mode": mode}))
                }
                11 => ("shuffle", json!({"on": rng.random_bool(0.5)})),
                12 => ("volume", json!({"volume": rng.random_range(0.0..1.0)})),
                _ => ("queue", json!({"action": "remove", "index": rng.random_range(0..4)})),
            };
            let now = unix_ms(clock.now());
            // Adding a layer waits for its track's whole encode (its loop point).
            let prompt = !["queue", "repeat", "shuffle", "settings"].contains(&name) && body["action"] != "add";
            let (st, _, body) = call(&router, "POST", &format!("/api/session/{name}"), Some(body)).await;
            assert!(st.is_success() || st.is_client_error(), "{name}: {st}");
            if st.is_success() {
                commands += 1;
                let v: Value = serde_json::from_slice(&body).unwrap();
                layers = layer_ids(&v);
                let eff = v["effectiveAtMs"].as_u64().unwrap();
                if prompt {
                    assert!(eff > now && eff <= now + 600, "{name}: effectiveAt {eff} for a command at {now}");
                }
            }
        }
        state.rooms.main().stage.maintain().await;

        let now = unix_ms(clock.now());
        let (st, headers, text) = call(&router, "GET", "/hls/256k/live.m3u8", None).await;
        assert_eq!(st, 200);
        assert_eq!(headers["content-type"], "application/vnd.apple.mpegurl");
        let playlist = parse_media(&text);
        assert_eq!(playlist.target_duration, 2);
        assert!(!String::from_utf8_lossy(&text).contains("DISCONTINUITY"));
        for (i, seg) in playlist.segments.iter().enumerate() {
            let msn = playlist.media_sequence + i as u64;
            assert_eq!(seg.uri, format!("seg/{msn}.m4s"), "a URI is fixed by its MSN");
            let pdt = seg.program_date_time.unwrap();
            assert_eq!(pdt.timestamp_millis() as u64, msn * 2048, "PDT = MSN × 2.048 s");
            assert!((seg.duration - 2.048).abs() < 1e-6);
        }
        if let Some(prev) = &last_playlist {
            assert!(playlist.media_sequence >= prev.media_sequence, "media sequence never decreases");
            let prev_last = prev.media_sequence + prev.segments.len() as u64;
            let last = playlist.media_sequence + playlist.segments.len() as u64;
            assert!(last >= prev_last, "segments are never taken back from the end");
            for (i, seg) in playlist.segments.iter().enumerate() {
                let msn = playlist.media_sequence + i as u64;
                if msn >= prev.media_sequence && msn < prev_last {
                    let old = &prev.segments[(msn - prev.media_sequence) as usize];
                    assert_eq!(
                        (old.uri.as_str(), old.duration),
                        (seg.uri.as_str(), seg.duration),
                        "segment {msn} changed between reloads"
                    );
                }
            }
        }
        // Fetch the newest segment and its parts; every URI fetched before must be identical.
        let newest = playlist.segments.last().unwrap();
        let msn = playlist.media_sequence + playlist.segments.len() as u64 - 1;
        let timeline = state.rooms.main().stage.timeline();
        let mut uris = vec![format!("/hls/256k/{}", newest.uri)];
        uris.extend((msn * 4..msn * 4 + 4).map(|p| format!("/hls/256k/part/{p}.m4s")));
        if let Some(old) = seen.keys().nth(rng.random_range(0..seen.len().max(1))).cloned() {
            uris.push(old);
        }
        for uri in uris {
            let (st, headers, bytes) = call(&router, "GET", &uri, None).await;
            assert_eq!(st, 200, "{uri}");
            assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
            if let Some((before, _)) = seen.get(&uri) {
                assert!(before == &bytes, "{uri} changed after it was published");
                continue;
            }
            if let Some(p) = uri.strip_prefix("/hls/256k/part/").and_then(|s| s.strip_suffix(".m4s")) {
                let p: u64 = p.parse().unwrap();
                let parsed = segmenter::fmp4::parse_part(&bytes).unwrap();
                assert_eq!(parsed.base_media_decode_time, p * 24_576, "media time is wall time");
                assert_eq!(parsed.frames.len(), 24);
                // A part in which no voice sounds is the silent part; any other is rendered.
                let silence = frames(&state.cache.silence_part(0).unwrap());
                let (from, to) = bardcast::stage::window(p);
                if bardcast::stage::voices(&timeline, from, to).is_empty() {
                    assert_eq!(frames(&bytes), silence, "part {p} should be silence");
                } else {
                    track_parts_seen += 1;
                }
                checked_parts += 1;
            }
            seen.insert(uri, (bytes, now));
        }
        // Unpublished media is 404 and not cacheable (the part after the latest is the
        // preload hint, held until published: tests/live.rs checks that on the real clock).
        let future = bardcast::room::playlist::latest_part(now) + 2;
        let (st, headers, _) = call(&router, "GET", &format!("/hls/256k/part/{future}.m4s"), None).await;
        assert_eq!(st, 404);
        assert_eq!(headers["cache-control"], "no-store");
        last_playlist = Some(playlist);
        // Re-fetch only what a CDN could still ask the origin for: the last ten minutes.
        seen.retain(|_, (_, at)| *at + 600_000 > now);
    }
    assert!(restarts >= 4, "only {restarts} restarts");
    assert!(commands > 250, "only {commands} commands succeeded");
    assert!(checked_parts > 2_500, "only {checked_parts} parts checked");
    assert!(track_parts_seen > 250, "only {track_parts_seen} parts with sound were heard");
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

async fn track_ids(router: &axum::Router) -> Vec<i64> {
    let (_, _, body) = call(router, "GET", "/api/tracks?sort=filepath", None).await;
    json_of(&body)["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn bad_command_values_are_400_naming_the_field_and_unknown_commands_404() {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_764_028_800_000)));
    let (app, _dir) = manual_app("bad-values", clock).await;
    let router = bardcast::router(app.state.clone());
    for (name, body, field) in [
        ("repeat", json!({"mode": "x"}), "mode:"),
        ("queue", json!({"action": "shuffle"}), "action:"),
        ("queue", json!({"action": "remove", "index": "first"}), "index:"),
        ("shuffle", json!({"on": 1}), "on:"),
        ("volume", json!({"volume": 2}), "volume:"),
        ("seek", json!({"position": -3}), "position:"),
        ("play", json!({"trackId": "one"}), "trackId:"),
    ] {
        let (st, _, body_out) = call(&router, "POST", &format!("/api/session/{name}"), Some(body.clone())).await;
        let v = json_of(&body_out);
        assert_eq!(st, 400, "{name} {body}: {v}");
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(v["error"]["message"].as_str().unwrap().starts_with(field), "{name} {body}: {v}");
    }
    let (st, _, body) = call(&router, "POST", "/api/session/dance", Some(json!({}))).await;
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&body));
    assert!(json_of(&body)["error"]["message"].as_str().unwrap().contains("dance"));
    let ids = track_ids(&router).await;
    let (st, _, body) =
        call(&router, "POST", "/api/session/play", Some(json!({"trackId": ids[0], "position": 999}))).await;
    assert_eq!(st, 400, "past the end of a 5 s track: {}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1200_track_queue_shows_and_takes_absolute_positions() {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_764_028_800_000)));
    let (app, _dir) = manual_app("long-queue", clock).await;
    let router = bardcast::router(app.state.clone());
    let ids = track_ids(&router).await;
    // 1,200 entries in an order with no period, so any wrong index shows.
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let queue: Vec<i64> = (0..1200).map(|_| ids[rng.random_range(0..ids.len())]).collect();
    let (st, _, _) =
        call(&router, "POST", "/api/session/queue", Some(json!({"action": "add", "trackIds": queue}))).await;
    assert_eq!(st, 200);
    // 5 s tracks under a 3 s crossfade would advance by themselves while the clock stands.
    call(&router, "POST", "/api/session/settings", Some(json!({"crossfadeSeconds": 0}))).await;
    call(&router, "POST", "/api/session/resume", Some(json!({}))).await;
    for _ in 0..900 {
        let (st, _, body) = call(&router, "POST", "/api/session/next", Some(json!({}))).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    }
    let (_, _, body) = call(&router, "GET", "/api/session", None).await;
    let state = json_of(&body);
    assert_eq!(
        (state["queueIndex"].as_u64(), state["queueStart"].as_u64(), state["queueLength"].as_u64()),
        (Some(900), Some(400), Some(1200))
    );
    let listed: Vec<i64> = state["queue"].as_array().unwrap().iter().map(|q| q["trackId"].as_i64().unwrap()).collect();
    assert_eq!(listed, queue[400..]);
    assert_eq!(state["nowPlaying"]["trackId"].as_i64(), Some(queue[900]));

    let (st, _, body) =
        call(&router, "POST", "/api/session/queue", Some(json!({"action": "remove", "index": 903}))).await;
    assert_eq!(st, 200);
    let state = json_of(&body);
    let mut expected = queue.clone();
    expected.remove(903);
    let listed: Vec<i64> = state["queue"].as_array().unwrap().iter().map(|q| q["trackId"].as_i64().unwrap()).collect();
    assert_eq!(listed, expected[400..], "position 903 went, nothing else");
    assert_eq!((state["queueIndex"].as_u64(), state["queueLength"].as_u64()), (Some(900), Some(1199)));

    let (st, _, body) =
        call(&router, "POST", "/api/session/queue", Some(json!({"action": "move", "from": 1198, "to": 901}))).await;
    assert_eq!(st, 200);
    let moved = expected.remove(1198);
    expected.insert(901, moved);
    let listed: Vec<i64> =
        json_of(&body)["queue"].as_array().unwrap().iter().map(|q| q["trackId"].as_i64().unwrap()).collect();
    assert_eq!(listed, expected[400..]);
    assert_eq!(json_of(&body)["queueIndex"].as_u64(), Some(900), "the current position stays with the current entry");
}

#[tokio::test]
async fn a_saved_room_that_makes_no_sense_starts_stopped_and_takes_commands() {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_764_028_800_000)));
    let dir = common::temp_dir("bad-saved-room");
    let app = manual_app_in(&dir, clock.clone(), &[]).await;
    let router = bardcast::router(app.state.clone());
    let ids = track_ids(&router).await;
    call(&router, "POST", "/api/session/queue", Some(json!({"action": "add", "trackIds": ids}))).await;
    let (st, _, _) = call(&router, "POST", "/api/session/play", Some(json!({"trackId": ids[1]}))).await;
    assert_eq!(st, 200);
    drop((router, app));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let db = rusqlite::Connection::open(dir.join("db.sqlite")).unwrap();
    let saved: String = db.query_row("SELECT state FROM room_state WHERE room = 'main'", [], |r| r.get(0)).unwrap();
    let spoiled = saved.replacen("\"queue_index\":", "\"queue_index\":7000", 1);
    assert_ne!(spoiled, saved);
    for bad in [spoiled.as_str(), "{\"entries\": 3}", "null"] {
        db.execute("UPDATE room_state SET state = ?1 WHERE room = 'main'", [bad]).unwrap();
        let app = manual_app_in(&dir, clock.clone(), &[]).await;
        let router = bardcast::router(app.state.clone());
        let (_, _, body) = call(&router, "GET", "/api/session", None).await;
        let state = json_of(&body);
        assert_eq!(state["stopped"], true, "{bad}: {state}");
        let (st, _, body) = call(&router, "POST", "/api/session/play", Some(json!({"trackId": ids[0]}))).await;
        assert_eq!(st, 200, "{bad}: {}", String::from_utf8_lossy(&body));
        drop((router, app));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_shuffle_seed_replays_the_same_shuffle() {
    let mut orders = Vec::new();
    for name in ["seed-a", "seed-b"] {
        let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_764_028_800_000)));
        let app = manual_app_in(&common::temp_dir(name), clock, &["--shuffle-seed", "42"]).await;
        let router = bardcast::router(app.state.clone());
        let ids = track_ids(&router).await;
        let many: Vec<i64> = (0..30).map(|i| ids[i % ids.len()]).collect();
        call(&router, "POST", "/api/session/queue", Some(json!({"action": "add", "trackIds": many}))).await;
        let (st, _, body) = call(&router, "POST", "/api/session/shuffle", Some(json!({"on": true}))).await;
        assert_eq!(st, 200);
        orders.push(json_of(&body)["queue"].clone());
    }
    assert_eq!(orders[0], orders[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_an_ambience_loop_that_plays_when_it_is_full() {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_764_028_800_000)));
    let dir = common::temp_dir("layer-pinned");
    let app = manual_app_in(&dir, clock.clone(), &[]).await;
    let router = bardcast::router(app.state.clone());
    let ids = track_ids(&router).await; // a (5 s), b (7 s), c (3 s)
    let (st, _, body) =
        call(&router, "POST", "/api/session/layer", Some(json!({"action": "add", "trackId": ids[0]}))).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let five_seconds = app.state.cache.status().bytes_used;
    assert!(five_seconds > 0);
    app.state.rooms.main().stage.stop().await;
    app.state.cache.close();
    drop((router, app));

    // Room for 13 s of audio: a and b fit, c then evicts the least recently used.
    let cap = (five_seconds * 13 / 5).to_string();
    let app = manual_app_in(&dir, clock, &["--cache-max-bytes", &cap]).await;
    let state = app.state.clone();
    let key = |id: i64| {
        let library = state.library.clone();
        async move {
            let source = library.call(move |db| db.track_source(bardcast::ids::TrackId(id))).await.unwrap();
            SourceKey { fingerprint: source.fingerprint, path: library.path_of(&source.relpath) }
        }
    };
    let (a, b, c) = (key(ids[0]).await, key(ids[1]).await, key(ids[2]).await);
    assert!(state.cache.known_parts(&a).is_some(), "the loop is still encoded");
    for track in [&b, &c] {
        state.cache.track_parts(track).await.unwrap();
    }
    assert!(state.cache.known_parts(&a).is_some(), "the playing loop (least recently used) was evicted");
    assert!(state.cache.known_parts(&b).is_none(), "b should have given way");
    assert!(state.cache.status().evictions >= 1);
}
