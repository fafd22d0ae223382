//! Rooms: several tables on one server. The real server plays a different tone in each of
//! three rooms; each room's published parts are decoded with ffmpeg and hold their own tone
//! only. Keys are confined to their room, rooms survive a restart, and a deleted room is gone:
//! its socket is told, its stream and state answer 404, its published parts are removed.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::f64::consts::PI;
use std::time::{Duration, Instant};

use common::{Options, Server, GM_KEY};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const PART_SAMPLES: usize = 24_576;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server whose library holds 0.3-amplitude sines of `freqs` Hz, 20 s each; track ids in that order.
async fn tone_server(name: &str, freqs: &[u32], options: Options) -> (Server, Vec<i64>) {
    let dir = common::temp_dir(name);
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    for (i, freq) in freqs.iter().enumerate() {
        let wave = format!("0.3*sin(2*PI*{freq}*t)");
        let expr = format!("aevalsrc={wave}|{wave}:s=48000:d=20");
        common::ffmpeg(&["-f", "lavfi", "-i", &expr, music.join(format!("{i}-{freq}.flac")).to_str().unwrap()]);
    }
    let s = Server::start_in(&dir, &music, options);
    s.wait_scan_idle().await;
    let page = s.get_json("/api/tracks?sort=filepath").await;
    let ids = page["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    (s, ids)
}

/// `method path` with `key`; status and JSON body.
async fn with_key(s: &Server, key: &str, method: Method, path: &str, body: Value) -> (u16, Value) {
    let r = s.client.request(method, s.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a room with the admin key; its listing (with `gmKey`).
async fn create_room(s: &Server, body: Value) -> Value {
    let (status, room) = s.gm_json(Method::POST, "/api/rooms", body).await;
    assert_eq!(status, 201, "{room}");
    room
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Parts `from..=to` of the stream under `prefix` (`/hls` for main, `/hls/<slug>`), as
/// published, decoded with ffmpeg: the left channel.
async fn decode(s: &Server, prefix: &str, from: u64, to: u64) -> Vec<f64> {
    while now_ms() < (to + 1) * 512 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut mp4 = s.get(&format!("{prefix}/256k/init.mp4")).await.bytes().await.unwrap().to_vec();
    for part in from..=to {
        let r = s.get(&format!("{prefix}/256k/part/{part}.m4s")).await;
        assert_eq!(r.status(), 200, "{prefix} part {part}");
        mp4.extend_from_slice(&r.bytes().await.unwrap());
    }
    let file = common::temp_dir("rooms-decode").join("parts.mp4");
    std::fs::write(&file, &mp4).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i", file.to_str().unwrap(), "-f", "s16le", "-ac", "2", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    let left: Vec<f64> =
        out.stdout.chunks_exact(4).map(|lr| f64::from(i16::from_le_bytes([lr[0], lr[1]])) / 32_768.0).collect();
    assert_eq!(left.len(), (to - from + 1) as usize * PART_SAMPLES);
    left
}

/// The amplitude of the `freq` Hz component of `pcm` (Hann-windowed Goertzel).
fn tone(pcm: &[f64], freq: f64) -> f64 {
    let w = 2.0 * PI * freq / 48_000.0;
    let (mut re, mut im, mut sum) = (0.0, 0.0, 0.0);
    for (i, x) in pcm.iter().enumerate() {
        let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / pcm.len() as f64).cos();
        re += hann * x * (w * i as f64).cos();
        im -= hann * x * (w * i as f64).sin();
        sum += hann;
    }
    2.0 * (re * re + im * im).sqrt() / sum
}

async fn socket(s: &Server, query: &str) -> Ws {
    let url = s.base.replace("http://", "ws://") + "/ws" + query;
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next JSON message of `kind`, skipping others (at most 5 s).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next()).await.unwrap_or_else(|_| panic!("no {kind} message"));
        if let Some(Ok(Message::Text(t))) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == kind {
                return v;
            }
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rooms_play_three_tones_each_heard_only_in_its_own_stream_and_keys_stay_in_their_room() {
    let (s, ids) = tone_server("rooms-three", &[440, 660, 880], Options::default()).await;
    let crypt = create_room(&s, json!({"name": "Crypt of the Lich!"})).await;
    assert_eq!(crypt["slug"], "crypt-of-the-lich", "a slug made from the name");
    assert_eq!(crypt["listenUrl"], "/r/crypt-of-the-lich/");
    let tavern = create_room(&s, json!({"name": "The Tavern", "slug": "tavern"})).await;
    let (crypt_key, tavern_key) = (crypt["gmKey"].as_str().unwrap(), tavern["gmKey"].as_str().unwrap());
    assert_ne!(crypt_key, tavern_key);

    // Each GM plays its own track with its own key; main's with the admin key on the old URL.
    let play = |id: i64| json!({"trackId": id});
    let (st, main_state) = s.gm_json(Method::POST, "/api/session/play", play(ids[0])).await;
    assert_eq!(st, 200, "{main_state}");
    let (st, crypt_state) =
        with_key(&s, crypt_key, Method::POST, "/api/rooms/crypt-of-the-lich/session/play", play(ids[1])).await;
    assert_eq!(st, 200, "{crypt_state}");
    let (st, tavern_state) =
        with_key(&s, tavern_key, Method::POST, "/api/rooms/tavern/session/play", play(ids[2])).await;
    assert_eq!(st, 200, "{tavern_state}");
    for (path, id) in [
        ("/api/session", ids[0]),
        ("/api/rooms/crypt-of-the-lich/session", ids[1]),
        ("/api/rooms/tavern/session", ids[2]),
    ] {
        assert_eq!(s.get_json(path).await["nowPlaying"]["trackId"], id, "{path}");
    }

    // A room GM key works in its room only, and cannot touch the rooms themselves.
    let pause = json!({});
    for (path, what) in [
        ("/api/rooms/tavern/session/pause", "another room"),
        ("/api/session/pause", "main"),
        ("/api/rooms/main/session/pause", "main by its slug"),
    ] {
        let (st, body) = with_key(&s, crypt_key, Method::POST, path, pause.clone()).await;
        assert_eq!(st, 403, "the crypt's key in {what}: {body}");
    }
    assert_eq!(with_key(&s, crypt_key, Method::POST, "/api/rooms", json!({"name": "Mine"})).await.0, 403);
    assert_eq!(with_key(&s, crypt_key, Method::DELETE, "/api/rooms/tavern", json!({})).await.0, 403);
    assert_eq!(with_key(&s, crypt_key, Method::POST, "/api/rooms/tavern/key", json!({})).await.0, 403);
    assert_eq!(with_key(&s, crypt_key, Method::GET, "/api/rooms", json!({})).await.0, 403, "keys are the admin's");
    let public = s.get_json("/api/rooms").await;
    assert!(public["rooms"].as_array().unwrap().iter().all(|r| r.get("gmKey").is_none()), "{public}");
    assert_eq!(public["rooms"].as_array().unwrap().len(), 3);
    // Over the socket too: the crypt's key opens no GM hello in the tavern.
    let mut ws = socket(&s, "?room=tavern").await;
    next_of(&mut ws, "welcome").await;
    send(&mut ws, json!({"type": "hello", "role": "gm", "key": crypt_key})).await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "forbidden");
    send(&mut ws, json!({"type": "command", "command": "pause", "id": 1})).await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "forbidden");
    // The shared library takes any room's key.
    let (st, folder) = with_key(&s, crypt_key, Method::POST, "/api/folders", json!({"name": "Crypt sounds"})).await;
    assert_eq!(st, 201, "{folder}");

    // Each stream holds its own tone and none of the others'.
    let from = [&main_state, &crypt_state, &tavern_state]
        .iter()
        .map(|v| v["effectiveAtMs"].as_u64().unwrap() / 512)
        .max()
        .unwrap()
        + 3;
    for (prefix, own) in [("/hls", 440.0), ("/hls/crypt-of-the-lich", 660.0), ("/hls/tavern", 880.0)] {
        let pcm = decode(&s, prefix, from, from + 3).await;
        for freq in [440.0, 660.0, 880.0] {
            let level = tone(&pcm, freq);
            if freq == own {
                assert!(level > 0.1, "{prefix}: its own {freq} Hz at {level:.3}");
            } else {
                assert!(level < 0.003, "{prefix}: {freq} Hz is another room's, heard at {level:.4}");
            }
        }
    }
    // A room's stream is a whole HLS stream to an independent client.
    let multivariant = s.get("/hls/tavern/live.m3u8").await.text().await.unwrap();
    assert!(multivariant.contains("256k/live.m3u8"), "{multivariant}");
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate",
            "-of",
            "csv=p=0",
            &s.url("/hls/tavern/live.m3u8"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let streams =
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect::<Vec<_>>();
    assert!(!streams.is_empty() && streams.iter().all(|l| l == "aac,48000"), "ffprobe saw {streams:?}");
    assert_eq!(s.get("/hls/nowhere/live.m3u8").await.status(), 404);
    assert_eq!(s.get("/hls/nowhere/256k/part/1.m4s").await.status(), 404);

    // A rotated key: the old one stops at once, the new one works.
    let (st, rotated) = s.gm_json(Method::POST, "/api/rooms/tavern/key", json!({})).await;
    assert_eq!(st, 200);
    let new_key = rotated["gmKey"].as_str().unwrap();
    assert_ne!(new_key, tavern_key);
    assert_eq!(with_key(&s, tavern_key, Method::POST, "/api/rooms/tavern/session/pause", pause.clone()).await.0, 403);
    assert_eq!(with_key(&s, new_key, Method::POST, "/api/rooms/tavern/session/pause", pause.clone()).await.0, 200);
    // The admin key is GM in every room.
    assert_eq!(with_key(&s, GM_KEY, Method::POST, "/api/rooms/crypt-of-the-lich/session/pause", pause).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_survive_a_restart_are_capped_and_a_deleted_room_is_gone_with_its_parts() {
    let options = Options { extra_env: vec![("MAX_ROOMS".into(), "3".into())], ..Options::default() };
    let (mut s, ids) = tone_server("rooms-life", &[440, 660], options.clone()).await;
    let tavern = create_room(&s, json!({"name": "The Tavern", "slug": "tavern"})).await;
    let tavern_key = tavern["gmKey"].as_str().unwrap().to_owned();
    create_room(&s, json!({"name": "Crypt"})).await;
    let (st, full) = s.gm_json(Method::POST, "/api/rooms", json!({"name": "Fourth"})).await;
    assert_eq!(st, 409, "MAX_ROOMS=3 with main: {full}");
    assert!(full["error"]["message"].as_str().unwrap().contains("MAX_ROOMS"), "{full}");
    for (body, field) in [
        (json!({"name": "x", "slug": "256k"}), "slug"),
        (json!({"name": "x", "slug": "Tavern"}), "slug"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "slug": "tavern", "extra": 1}), "extra"),
    ] {
        let (st, e) = s.gm_json(Method::POST, "/api/rooms", body).await;
        assert_eq!(st, 400, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(field), "{field}: {e}");
    }
    assert_eq!(s.gm_json(Method::POST, "/api/rooms", json!({"name": "Again", "slug": "tavern"})).await.0, 409);
    assert_eq!(s.gm_json(Method::DELETE, "/api/rooms/main", json!({})).await.0, 409, "main stays");
    let (st, renamed) = s.gm_json(Method::PATCH, "/api/rooms/tavern", json!({"name": "The Prancing Pony"})).await;
    assert_eq!((st, renamed["name"].as_str()), (200, Some("The Prancing Pony")));

    let (st, _) =
        with_key(&s, &tavern_key, Method::POST, "/api/rooms/tavern/session/play", json!({"trackId": ids[1]})).await;
    assert_eq!(st, 200);
    // Killed, not stopped: what a room saved is what the restart finds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.kill9();
    let s = Server::start_in(&s.dir.clone(), &s.music.clone(), options);
    let rooms = s.gm_json(Method::GET, "/api/rooms", Value::Null).await.1;
    let listed: Vec<(&str, &str)> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["slug"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [("main", "Main table"), ("tavern", "The Prancing Pony"), ("crypt", "Crypt")]);
    let tavern = &rooms["rooms"][1];
    assert_eq!(tavern["gmKey"], tavern_key.as_str(), "the room's key survives");
    assert_eq!(s.get_json("/api/rooms/tavern/session").await["nowPlaying"]["trackId"], ids[1]);
    assert!(s.get_json("/api/session").await["nowPlaying"].is_null(), "main was never played");

    // A listener in the tavern counts there, is told when the room goes, and the room is gone.
    let mut ws = socket(&s, "?room=tavern").await;
    next_of(&mut ws, "welcome").await;
    send(&mut ws, json!({"type": "hello", "role": "listener"})).await;
    assert_eq!(next_of(&mut ws, "state").await["state"]["nowPlaying"]["trackId"], ids[1]);
    let part = now_ms() / 512;
    assert_eq!(s.get(&format!("/hls/tavern/256k/part/{part}.m4s")).await.status(), 200);
    let published = s.dir.join("data/cache/published");
    let tavern_parts = walkdir::WalkDir::new(&published)
        .into_iter()
        .flatten()
        .map(walkdir::DirEntry::into_path)
        .find(|d| d.ends_with("tavern"))
        .expect("the tavern's published parts");
    let rooms = s.get_json("/api/rooms").await;
    assert_eq!(rooms["rooms"][1]["listeners"], 1);
    assert_eq!(rooms["rooms"][0]["listeners"], 0);
    assert_eq!(s.gm_json(Method::DELETE, "/api/rooms/tavern", Value::Null).await.0, 204);
    let bye = next_of(&mut ws, "bye").await;
    assert_eq!(bye["reason"], "room deleted");
    assert_eq!(s.get("/api/rooms/tavern/session").await.status(), 404);
    assert_eq!(s.get("/hls/tavern/live.m3u8").await.status(), 404);
    assert_eq!(s.get("/r/tavern/").await.status(), 404);
    assert_eq!(s.get("/r/crypt/").await.status(), 200, "another room's page is there");
    assert_eq!(
        with_key(&s, &tavern_key, Method::POST, "/api/folders", json!({"name": "x"})).await.0,
        403,
        "its key is gone too"
    );
    assert!(!tavern_parts.exists(), "its published parts are removed");
    let db = rusqlite::Connection::open(&s.db).unwrap();
    let saved: i64 = db.query_row("SELECT count(*) FROM room_state WHERE room = 'tavern'", [], |r| r.get(0)).unwrap();
    assert_eq!(saved, 0, "its saved stage is removed");
    // And there is room for another.
    create_room(&s, json!({"name": "Fourth"})).await;
}
