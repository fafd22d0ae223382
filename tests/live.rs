//! The live stream and the control socket over real HTTP, in real time.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Options, Server, GM_KEY};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A server over three short tones, with every track pre-encoded.
async fn tone_server(name: &str) -> (Server, Vec<i64>) {
    tone_server_with(name, Options::default()).await
}

async fn tone_server_with(name: &str, opts: Options) -> (Server, Vec<i64>) {
    let dir = common::temp_dir(name);
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    for (file, freq, secs) in [("1 low.flac", 330, 6), ("2 mid.mp3", 550, 4), ("3 high.ogg", 770, 5)] {
        common::ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency={freq}:duration={secs}"),
            "-metadata",
            &format!("title=Tone {freq}"),
            music.join(file).to_str().unwrap(),
        ]);
    }
    let s = Server::start_in(&dir, &music, opts);
    s.wait_scan_idle().await;
    let page = s.get_json("/api/tracks?sort=filepath").await;
    let ids = page["items"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    (s, ids)
}

async fn command(s: &Server, name: &str, body: Value) -> Value {
    let (st, v) = s.gm_json(Method::POST, &format!("/api/session/{name}"), body).await;
    assert_eq!(st, 200, "{name}: {v}");
    v
}

#[tokio::test]
async fn commands_take_effect_at_the_next_part_and_need_the_key() {
    let (s, ids) = tone_server("commands").await;
    let before = now_ms();
    let v = command(&s, "play", json!({"trackId": ids[0]})).await;
    let eff = v["effectiveAtMs"].as_u64().unwrap();
    assert!(eff > before && eff <= now_ms() + 600, "effectiveAt {eff} for a command at {before}");
    assert_eq!(eff % 512, 0, "effective at a part boundary");
    assert_eq!(v["effectiveAt"].as_str().unwrap().len(), 24);
    assert_eq!(v["nowPlaying"]["trackId"], ids[0]);
    assert_eq!(v["nowPlaying"]["title"], "Tone 330");
    assert_eq!(v["paused"], false);
    assert_eq!(v["playbackDelayMs"], 400);

    let r = s.client.post(s.url("/api/session/pause")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.client.post(s.url("/api/session/pause")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.get_json("/api/session").await["paused"], false, "refused commands change nothing");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let paused = command(&s, "pause", json!({})).await;
    assert_eq!(paused["paused"], true);
    assert!(paused["nowPlaying"]["position"].as_f64().unwrap() >= 1.0, "{paused}");
    let resumed = command(&s, "resume", json!({})).await;
    assert_eq!(resumed["nowPlaying"]["position"], paused["nowPlaying"]["position"], "resume continues where paused");
    let seek = command(&s, "seek", json!({"position": 3.0})).await;
    assert!((seek["nowPlaying"]["position"].as_f64().unwrap() - 2.56).abs() < 0.01, "{seek}");
    assert_eq!(s.gm_json(Method::POST, "/api/session/seek", json!({"position": -1})).await.0, 400);
    assert_eq!(s.gm_json(Method::POST, "/api/session/dance", json!({})).await.0, 404);
    assert_eq!(s.gm_json(Method::POST, "/api/session/volume", json!({"volume": 2})).await.0, 400);
    let vol = command(&s, "volume", json!({"volume": 0.25})).await;
    assert_eq!(vol["volume"], 0.25);
    let q = command(&s, "queue", json!({"action": "add", "trackIds": [ids[1], ids[2]]})).await;
    assert_eq!(q["queue"].as_array().unwrap().len(), 3);
    let next = command(&s, "next", json!({})).await;
    assert_eq!(next["nowPlaying"]["trackId"], ids[1]);
    let prev = command(&s, "previous", json!({})).await;
    assert_eq!(prev["nowPlaying"]["trackId"], ids[0]);
    let mode = command(&s, "repeat", json!({"mode": "all"})).await;
    assert_eq!(mode["repeat"], "all");
    let stop = command(&s, "stop", json!({})).await;
    assert_eq!(stop["stopped"], true);
    assert!(stop["nowPlaying"].is_null());
}

#[tokio::test]
async fn the_queue_advances_at_a_track_end_and_a_folder_plays() {
    let (s, ids) = tone_server("advance").await;
    let (_, folder) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Tones"})).await;
    let fid = folder["id"].as_i64().unwrap();
    s.gm_json(Method::POST, &format!("/api/folders/{fid}/tracks"), json!({"trackIds": [ids[1], ids[0]]})).await;
    let set = command(&s, "settings", json!({"crossfadeSeconds": 1})).await;
    assert_eq!(set["crossfadeSeconds"], 1.0);
    let v = command(&s, "play", json!({"folderId": fid})).await;
    assert_eq!(v["nowPlaying"]["trackId"], ids[1]);
    assert_eq!(v["queue"].as_array().unwrap().len(), 2);
    // Track 2 lasts 4 s (8 parts): the next one starts 2 parts (the 1 s crossfade) earlier.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = s.get_json("/api/session").await;
        if st["nowPlaying"]["trackId"] == ids[0] {
            let after = st["effectiveAtMs"].as_u64().unwrap() - v["effectiveAtMs"].as_u64().unwrap();
            assert_eq!(after, 6 * 512, "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "the queue did not advance: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn playlists_follow_the_spec_and_block() {
    let (s, ids) = tone_server("playlists").await;
    command(&s, "play", json!({"trackId": ids[0]})).await;
    let r = s.get("/hls/live.m3u8").await;
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let text = r.bytes().await.unwrap();
    match m3u8_rs::parse_playlist_res(&text) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => {
            assert_eq!(m.variants.len(), 1);
            assert_eq!(m.variants[0].codecs.as_deref(), Some("mp4a.40.2"));
            assert_eq!(m.variants[0].uri, "256k/live.m3u8");
        }
        other => panic!("{other:?}"),
    }
    let r = s
        .client
        .get(s.url("/hls/256k/live.m3u8"))
        .header("accept-encoding", "gzip")
        .header("origin", "http://elsewhere")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["vary"], "accept-encoding");
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&r.bytes().await.unwrap()[..]), &mut unzipped)
        .unwrap();
    assert!(unzipped.starts_with("#EXTM3U") && unzipped.contains("#EXT-X-PRELOAD-HINT"), "{unzipped}");
    let plain = s.get("/hls/256k/live.m3u8").await.bytes().await.unwrap();
    let p = match m3u8_rs::parse_playlist_res(&plain) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("{other:?}"),
    };
    assert!(p.segments.len() >= 12);
    let text = String::from_utf8_lossy(&plain).to_string();
    for tag in [
        "#EXT-X-VERSION:9",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-PART-INF:PART-TARGET=0.51200",
        "CAN-BLOCK-RELOAD=YES",
        "#EXT-X-PRELOAD-HINT:TYPE=PART",
        "#EXT-X-MAP:URI=\"init.mp4\"",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }
    // Python's m3u8 package, an independent parser.
    let path = s.dir.join("live.m3u8");
    std::fs::write(&path, &plain).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", "import m3u8,sys; p=m3u8.load(sys.argv[1]); full=[s for s in p.segments if s.uri]; assert len(full)>=12, len(full); assert all(s.program_date_time for s in full); assert p.target_duration==2; assert p.server_control.can_block_reload=='YES'; assert p.preload_hint.uri.startswith('part/')", path.to_str().unwrap()])
        .output().unwrap();
    assert!(out.status.success(), "python m3u8: {}", String::from_utf8_lossy(&out.stderr));

    // Media headers; unpublished is 404 no-store.
    let init = s.get("/hls/256k/init.mp4").await;
    assert_eq!(init.headers()["content-type"], "audio/mp4");
    assert_eq!(init.headers()["cache-control"], "public, max-age=31536000, immutable");
    let latest = now_ms() / 512;
    let r = s.get(&format!("/hls/256k/part/{latest}.m4s")).await;
    assert_eq!(r.status(), 200);
    let r = s.get(&format!("/hls/256k/part/{}.m4s", latest + 4)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    // The preload-hinted part is held until it is published, then served for good.
    let hinted = now_ms() / 512 + 1;
    let r = s.get(&format!("/hls/256k/part/{hinted}.m4s")).await;
    assert!(now_ms() >= hinted * 512, "part {hinted} answered before it was published");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(s.get("/hls/999k/live.m3u8").await.status(), 404);

    // Blocking reload: waits for the part, 400s and 503s as the spec says.
    let msn = now_ms() / 2048;
    let want = (msn + 1) * 4 + 1;
    let t0 = Instant::now();
    let r = s.get(&format!("/hls/256k/live.m3u8?_HLS_msn={}&_HLS_part=1", msn + 1)).await;
    assert_eq!(r.status(), 200);
    let after = now_ms();
    assert!(after >= want * 512, "answered before part {want} was published");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(r.text().await.unwrap().contains(&format!("part/{want}.m4s")));
    assert_eq!(s.get("/hls/256k/live.m3u8?_HLS_part=1").await.status(), 400);
    assert_eq!(s.get(&format!("/hls/256k/live.m3u8?_HLS_msn={}", now_ms() / 2048 + 3)).await.status(), 400);
}

#[tokio::test]
async fn ffmpeg_reads_the_live_stream_across_a_track_change_and_a_pause() {
    let (s, ids) = tone_server("ffmpeg").await;
    command(&s, "play", json!({"trackId": ids[1]})).await;
    let url = s.url("/hls/live.m3u8");
    let reader = std::thread::spawn(move || {
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i", &url, "-t", "20", "-f", "null", "-"])
            .output()
            .unwrap()
    });
    tokio::time::sleep(Duration::from_secs(5)).await; // track 2 (4 s) ends: silence
    command(&s, "play", json!({"trackId": ids[0]})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    command(&s, "pause", json!({})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    command(&s, "resume", json!({})).await;
    let out = tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
    assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "ffmpeg reported errors: {stderr}");
}

#[tokio::test]
async fn after_kill_9_the_room_is_where_the_wall_clock_says() {
    let (mut s, ids) = tone_server("restart").await;
    let v = command(&s, "play", json!({"trackId": ids[0]})).await;
    let started = v["effectiveAtMs"].as_u64().unwrap();
    let msn_before = now_ms() / 2048;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kill9();
    let s2 = Server::start_in(&s.dir.clone(), &s.music.clone(), Options::default());
    let st = s2.get_json("/api/session").await;
    assert_eq!(st["nowPlaying"]["trackId"], ids[0], "{st}");
    // Position at effectiveAt matches the wall clock since the track started.
    let expected = (st["effectiveAtMs"].as_u64().unwrap() - started) as f64 / 1000.0;
    assert!((st["nowPlaying"]["position"].as_f64().unwrap() - expected).abs() < 0.6, "{st}");
    let p = s2.get("/hls/256k/live.m3u8").await.text().await.unwrap();
    let seq: u64 = p.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")).unwrap().parse().unwrap();
    assert!(seq + 12 >= msn_before, "media sequence went backwards");
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &Server) -> Ws {
    let url = s.base.replace("http://", "ws://") + "/ws";
    let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws
}

/// The next JSON message of `kind`, skipping others (at most 5 s).
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} message"))
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
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

#[tokio::test]
async fn the_control_socket_syncs_clocks_pushes_state_and_guards_commands() {
    let (s, ids) = tone_server("socket").await;
    let mut listener = connect(&s).await;
    let welcome = next_of(&mut listener, "welcome").await;
    assert_eq!(welcome["protocol"], 1);
    assert!(welcome["clientId"].as_str().is_some());
    assert!((welcome["serverTime"].as_f64().unwrap() - now_ms() as f64).abs() < 2000.0);
    send(&mut listener, json!({"type": "hello", "role": "listener", "device": "test phone"})).await;
    let state = next_of(&mut listener, "state").await;
    assert_eq!(state["state"]["stopped"], true);
    let t0 = now_ms() as f64;
    send(&mut listener, json!({"type": "ping", "id": 1, "clientSent": t0})).await;
    let pong = next_of(&mut listener, "pong").await;
    assert_eq!(pong["id"], 1);
    assert_eq!(pong["clientSent"], t0);
    let (t1, t2) = (pong["serverReceived"].as_f64().unwrap(), pong["serverSent"].as_f64().unwrap());
    assert!(t1 <= t2 && (t1 - t0).abs() < 1000.0);
    // The same clock over HTTP, for probes the browser times itself; never cached.
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0;
    let probe = s.get("/api/clock").await;
    let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0;
    assert_eq!(probe.headers()["cache-control"], "no-store");
    let probe: Value = probe.json().await.unwrap();
    let (t1, t2) = (probe["serverReceived"].as_f64().unwrap(), probe["serverSent"].as_f64().unwrap());
    assert!(before <= t1 && t1 <= t2 && t2 <= after, "{before} ≤ {t1} ≤ {t2} ≤ {after}");

    // A listener cannot control the room.
    send(&mut listener, json!({"type": "command", "id": 5, "command": "play", "trackId": ids[0]})).await;
    let err = next_of(&mut listener, "error").await;
    assert_eq!((err["code"].as_str(), err["id"].as_i64()), (Some("forbidden"), Some(5)));
    assert_eq!(s.get_json("/api/session").await["stopped"], true);

    // Bad input gets an error, not a crash.
    listener.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next_of(&mut listener, "error").await["code"], "bad_message");
    let big = json!({"type": "report", "device": "x".repeat(70 * 1024)});
    send(&mut listener, big).await;
    assert_eq!(next_of(&mut listener, "error").await["code"], "too_large");

    // A wrong key is refused; the right key makes a GM whose command reaches everyone.
    let mut gm = connect(&s).await;
    send(&mut gm, json!({"type": "hello", "role": "gm", "key": "wrong"})).await;
    assert_eq!(next_of(&mut gm, "error").await["code"], "forbidden");
    send(&mut gm, json!({"type": "hello", "role": "gm", "key": GM_KEY, "device": "dashboard"})).await;
    next_of(&mut gm, "state").await;
    let report =
        json!({"type": "report", "syncError": 3.5, "buffer": 1.2, "rtt": 4.0, "state": "playing", "struggling": true});
    send(&mut listener, report).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = next_of(&mut gm, "listeners").await;
        let phone = l["listeners"].as_array().unwrap().iter().find(|x| x["device"] == "test phone").cloned();
        if phone.as_ref().is_some_and(|p| p["syncError"] == 3.5) {
            let p = phone.unwrap();
            assert_eq!(
                (p["buffer"].as_f64(), p["rtt"].as_f64(), p["role"].as_str(), p["struggling"].as_bool()),
                (Some(1.2), Some(4.0), Some("listener"), Some(true))
            );
            break;
        }
        assert!(Instant::now() < deadline, "report never reached the GM");
    }
    send(&mut gm, json!({"type": "command", "id": "a", "command": "play", "trackId": ids[0]})).await;
    let reply = next_of(&mut gm, "reply").await;
    assert_eq!(reply["id"], "a");
    let eff = reply["state"]["effectiveAtMs"].as_u64().unwrap();
    let pushed = next_of(&mut listener, "state").await;
    assert_eq!(pushed["state"]["nowPlaying"]["trackId"], ids[0]);
    assert!(now_ms() < eff + 400, "the state reaches listeners before they hear the change");

    // A flood is refused and the server stays up.
    for i in 0..300 {
        if listener.send(Message::Text(json!({"type": "ping", "id": i}).to_string().into())).await.is_err() {
            break;
        }
    }
    let mut limited = false;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(2), listener.next()).await {
        if let Message::Text(t) = msg {
            limited |= serde_json::from_str::<Value>(&t).unwrap()["code"] == "rate_limited";
        }
    }
    assert!(limited, "a flood gets rate_limited errors");
    assert_eq!(s.get("/api/health").await.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_listeners_and_sync_reports() {
    let (s, ids) = tone_server("metrics").await;
    let playing_from = command(&s, "play", json!({"trackId": ids[0]})).await["effectiveAtMs"].as_u64().unwrap();
    let mut ws = connect(&s).await;
    send(&mut ws, json!({"type": "hello", "role": "listener"})).await;
    next_of(&mut ws, "state").await;
    send(&mut ws, json!({"type": "report", "syncError": -3.0, "buffer": 1.0, "rtt": 2.0, "state": "playing"})).await;
    // The track's first part (held until published, as the preload hint can be).
    tokio::time::sleep(Duration::from_millis(playing_from.saturating_sub(now_ms() + 100))).await;
    assert_eq!(s.get(&format!("/hls/256k/part/{}.m4s", playing_from / 512)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = s.get("/metrics").await.text().await.unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(value("bardcast_listeners_connected{room=\"main\"} "), 1.0);
    assert_eq!(value("bardcast_rooms "), 1.0);
    assert!(value("bardcast_live_parts_served_total ") >= 1.0);
    assert_eq!(value("bardcast_sync_error_ms_bucket{le=\"5\"} "), 1.0);
    assert_eq!(value("bardcast_sync_error_ms_bucket{le=\"2\"} "), 0.0);
    assert_eq!(value("bardcast_sync_error_ms_count "), 1.0);
    assert_eq!(value("bardcast_scan_added "), 3.0);
    // The track part served came from the cache: a read of a complete track or of the encode.
    assert!(value("bardcast_cache_hits_total ") + value("bardcast_cache_misses_total ") >= 1.0, "{text}");
    assert_eq!(value("bardcast_cache_evictions_total "), 0.0);
    assert!(value("bardcast_cache_encode_seconds_total ") >= 0.0);
    assert!(value("bardcast_cache_encoded_audio_seconds_total ") >= 0.0);
    assert!(text.contains("bardcast_http_requests_total{route=\"/api/session/{command}\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("bardcast_build_info{version=\""));
    assert!(text.contains("# TYPE bardcast_sync_error_ms histogram"));
}

#[tokio::test]
async fn sigterm_tells_clients_and_exits_promptly() {
    let (mut s, _) = tone_server("sigterm").await;
    let mut ws = connect(&s).await;
    next_of(&mut ws, "welcome").await;
    // A parked blocking request must not hold the shutdown either.
    let parked = s.client.get(s.url(&format!("/hls/256k/live.m3u8?_HLS_msn={}", now_ms() / 2048 + 2))).send();
    let parked = tokio::spawn(parked);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || s.terminate()).await.unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(10), "exit took {:?}", started.elapsed());
    assert_eq!(next_of(&mut ws, "bye").await["reason"], "server shutting down");
    let _ = parked.await;
}

#[tokio::test]
async fn json_logs_carry_request_and_room_spans() {
    let log = common::temp_dir("json-log").join("stderr.log");
    let env = [("LOG_FORMAT", "json"), ("LOG_LEVEL", "info,bardcast=debug")];
    let opts = Options {
        extra_env: env.map(|(k, v)| (k.into(), v.into())).to_vec(),
        stderr: Some(log.clone()),
        ..Default::default()
    };
    let (mut s, ids) = tone_server_with("json-log", opts).await;
    command(&s, "play", json!({"trackId": ids[0]})).await;
    s.get_json("/api/session").await;
    assert_eq!(tokio::task::spawn_blocking(move || s.terminate()).await.unwrap().code(), Some(0));

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()), "{text}");
    let message = |l: &Value, m: &str| l["fields"]["message"] == m;
    let answered = lines.iter().find(|l| message(l, "answered") && l["span"]["uri"] == "/api/session");
    let answered = answered.unwrap_or_else(|| panic!("no request span around /api/session: {text}"));
    assert_eq!((&answered["span"]["name"], &answered["span"]["method"]), (&json!("request"), &json!("GET")));
    assert!(answered["fields"]["latency_ms"].is_number(), "{answered}");
    let command = lines.iter().find(|l| message(l, "command")).unwrap_or_else(|| panic!("no command logged: {text}"));
    assert_eq!(command["span"]["name"], "room", "{command}");
    assert!(command["fields"]["command"].as_str().unwrap().starts_with("Play"), "{command}");
    assert!(command["fields"]["effective_at_ms"].is_u64(), "{command}");
    assert!(lines.iter().any(|l| message(l, "stopped")), "SIGTERM ends with a last line: {text}");
}

#[tokio::test]
async fn a_track_that_cannot_be_decoded_is_skipped_with_an_error() {
    let dir = common::temp_dir("undecodable");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    // Opus: the scanner reads its tags, the segmenter cannot decode it.
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=500:duration=3",
        "-c:a",
        "libopus",
        "-metadata",
        "title=Opus Tone",
        music.join("a.opus").to_str().unwrap(),
    ]);
    // Longer than the room's 4 s look-ahead, so the end of the queue is not yet scheduled
    // (and shown by /api/session) while the test looks for the FLAC track.
    common::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=700:duration=20",
        "-metadata",
        "title=Flac Tone",
        music.join("b.flac").to_str().unwrap(),
    ]);
    let s = Server::start_in(&dir, &music, Options::default());
    s.wait_scan_idle().await;
    let t = s.tracks_by_path().await;
    let (opus, flac) = (t["a.opus"]["id"].as_i64().unwrap(), t["b.flac"]["id"].as_i64().unwrap());
    let (_, folder) = s.gm_json(Method::POST, "/api/folders", json!({"name": "Mixed"})).await;
    let fid = folder["id"].as_i64().unwrap();
    s.gm_json(Method::POST, &format!("/api/folders/{fid}/tracks"), json!({"trackIds": [opus, flac]})).await;
    command(&s, "play", json!({"folderId": fid})).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let st = s.get_json("/api/session").await;
        if st["nowPlaying"]["trackId"] == flac {
            assert!(st["error"].as_str().is_some_and(|e| !e.is_empty()), "the skip is reported: {st}");
            break;
        }
        assert!(Instant::now() < deadline, "the undecodable track was not skipped: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The stream never stalled: the newest part is served.
    assert_eq!(s.get(&format!("/hls/256k/part/{}.m4s", now_ms() / 512)).await.status(), 200);
}

#[tokio::test]
async fn an_address_sending_wrong_gm_keys_is_slowed_down_and_counted() {
    let dir = common::temp_dir("guess");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let log = dir.join("server.log");
    let opts = Options { stderr: Some(log.clone()), ..Options::default() };
    let s = Server::start_in(&dir, &music, opts);
    for i in 0..10 {
        let r = s.client.post(s.url("/api/session/pause")).bearer_auth(format!("guess-{i}")).send().await.unwrap();
        assert_eq!(r.status(), 403, "wrong key {i}");
    }
    let r = s.client.post(s.url("/api/session/stop")).bearer_auth("guess-10").send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    // While throttled, even the right key is not checked: a guess that hits tells nothing.
    let r = s.client.post(s.url("/api/session/stop")).bearer_auth(GM_KEY).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // The control socket's GM hello is guarded by the same count.
    let mut ws = connect(&s).await;
    send(&mut ws, json!({"type": "hello", "role": "gm", "key": GM_KEY})).await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "too_many_requests");
    // Reading needs no key and is never slowed down.
    assert_eq!(s.get("/api/session").await.status(), 200);
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("bardcast_gm_key_refusals_total{reason=\"wrong\"} 10"), "{metrics}");
    assert!(metrics.contains("bardcast_gm_key_refusals_total{reason=\"throttled\"} 3"), "{metrics}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.matches("a wrong GM key").count() >= 10, "{logged}");
}

#[tokio::test]
async fn a_short_configured_gm_key_is_warned_about() {
    let dir = common::temp_dir("short-key");
    let music = dir.join("music");
    std::fs::create_dir_all(&music).unwrap();
    let log = dir.join("server.log");
    let mut s = Server::start_in(
        &dir,
        &music,
        Options { gm_key: Some("hunter2".into()), stderr: Some(log.clone()), ..Options::default() },
    );
    s.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("GM_KEY is 7 characters long; use at least 16"), "{logged}");
}

#[tokio::test]
async fn a_listener_running_short_raises_the_playback_delay_and_the_gm_can_pin_it() {
    let (s, ids) = tone_server("delay").await;
    command(&s, "play", json!({"trackId": ids[0]})).await;
    let mut gm = connect(&s).await;
    send(&mut gm, json!({"type": "hello", "role": "gm", "key": GM_KEY})).await;
    let mut listener = connect(&s).await;
    let client = next_of(&mut listener, "welcome").await["clientId"].as_str().unwrap().to_owned();
    send(&mut listener, json!({"type": "hello", "role": "listener", "device": "slow phone"})).await;
    assert_eq!(next_of(&mut listener, "state").await["state"]["playbackDelayMs"], 400);
    // Parts reach it 350 ms late: at D = 400 ms its buffer dips to 50 ms, and it needs 550 ms
    // to keep the 200 ms margin. It reports as a page still playing at 400 ms would.
    // Its first 10 s of reports (joining) do not count; then two steps of at most 100 ms.
    let deadline = Instant::now() + Duration::from_secs(45);
    let raised = loop {
        let report = json!({"type": "report", "buffer": 0.05, "state": "playing", "syncError": 0.0, "delayMs": 400});
        send(&mut listener, report).await;
        let state = s.get_json("/api/session").await;
        if state["playbackDelayMs"].as_u64() >= Some(550) || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(raised["playbackDelayMs"], 550, "{raised}");
    assert_eq!(raised["delay"]["setBy"], client.as_str());
    assert_eq!(raised["delay"]["pinned"], false);
    // Every listener is told: a state message carries the new D.
    let told = loop {
        let state = next_of(&mut listener, "state").await;
        if state["state"]["playbackDelayMs"] == 550 {
            break state;
        }
    };
    assert_eq!(told["state"]["delay"]["targetMs"], 550);

    // The GM pins D over the socket; it glides there and stops following the listener.
    send(&mut gm, json!({"type": "command", "id": 1, "command": "delay", "ms": 800})).await;
    let reply = next_of(&mut gm, "reply").await;
    assert_eq!(reply["state"]["delay"]["pinned"], true, "{reply}");
    assert_eq!(reply["state"]["delay"]["targetMs"], 800);
    let (st, v) = s.gm_json(Method::POST, "/api/session/delay", json!({"ms": 5})).await;
    assert_eq!((st, v["error"]["message"].as_str().map(|m| m.starts_with("ms:"))), (400, Some(true)));
    let v = command(&s, "delay", json!({"ms": null})).await;
    assert_eq!(v["delay"]["pinned"], false);
}
