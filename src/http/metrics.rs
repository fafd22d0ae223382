//! `GET /metrics`: the server's counters and the gauges read at scrape time.

use std::fmt::Write;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::metrics::header;
use crate::state::AppState;

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus metrics", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn render(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    header(&mut out, "bardcast_build_info", "gauge", "Version of the running server.");
    let _ = writeln!(out, "bardcast_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    let rooms = state.rooms.list();
    header(&mut out, "bardcast_rooms", "gauge", "Rooms on this server.");
    let _ = writeln!(out, "bardcast_rooms {}", rooms.len());
    header(
        &mut out,
        "bardcast_listeners_connected",
        "gauge",
        "Listener pages connected to the control socket, per room.",
    );
    for room in &rooms {
        let _ = writeln!(out, "bardcast_listeners_connected{{room=\"{}\"}} {}", room.slug, room.listeners.count());
    }
    header(
        &mut out,
        "bardcast_room_rendering",
        "gauge",
        "1 while a room renders its parts (someone listened in the last 30 s).",
    );
    let now = crate::clock::unix_ms(state.clock.now());
    for room in &rooms {
        let _ =
            writeln!(out, "bardcast_room_rendering{{room=\"{}\"}} {}", room.slug, u8::from(room.live.rendering(now)));
    }
    state.metrics.write(&mut out);

    let cache = state.cache.status();
    for (name, kind, help, value) in [
        ("bardcast_cache_bytes", "gauge", "Bytes in the segment cache.", cache.bytes_used),
        ("bardcast_cache_max_bytes", "gauge", "Size cap of the segment cache.", cache.max_bytes),
        ("bardcast_cache_tracks", "gauge", "Complete tracks in the segment cache.", cache.cached_tracks),
        ("bardcast_cache_encodes_running", "gauge", "Encodes running now.", cache.encodes_running),
        ("bardcast_cache_encodes_started_total", "counter", "Encodes started since start.", cache.encodes_started),
        ("bardcast_cache_hits_total", "counter", "Part reads answered from a complete cached track.", cache.hits),
        ("bardcast_cache_misses_total", "counter", "Part reads that waited on an encode.", cache.misses),
        ("bardcast_cache_evictions_total", "counter", "Tracks evicted to stay under the size cap.", cache.evictions),
    ] {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    // Encode throughput (× realtime) = rate(encoded audio) / rate(encode time).
    for (name, help, value) in [
        (
            "bardcast_cache_encoded_audio_seconds_total",
            "Seconds of audio encoded by finished encodes.",
            cache.encoded_audio_seconds,
        ),
        ("bardcast_cache_encode_seconds_total", "Wall-clock seconds those encodes took.", cache.encode_seconds),
    ] {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let scan = state.library.scan_status().borrow().clone();
    for (name, help, value) in [
        ("bardcast_scan_files_seen", "Audio files found by the last scan.", scan.seen),
        ("bardcast_scan_added", "Tracks added by the last scan.", scan.added),
        ("bardcast_scan_updated", "Tracks updated by the last scan.", scan.updated),
        ("bardcast_scan_missing", "Tracks found missing by the last scan.", scan.missing),
        ("bardcast_scan_errors", "Files the last scan could not read.", scan.errors),
        ("bardcast_scan_running", "1 while a scan runs.", u64::from(scan.state == "scanning")),
    ] {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
