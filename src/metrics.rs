//! Prometheus metrics (`GET /metrics`): counters kept in memory, gauges read at scrape time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Upper bounds (ms) of the reported sync error histogram buckets.
const SYNC_BUCKETS_MS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];

/// Counters shared by the whole server; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Route template → status → requests. Once a pair has been seen, counting it takes a
    /// shared read lock and one atomic add.
    requests: RwLock<HashMap<Box<str>, HashMap<u16, AtomicU64>>>,
    parts_served: AtomicU64,
    segments_served: AtomicU64,
    sync_buckets: [AtomicU64; SYNC_BUCKETS_MS.len()],
    sync_count: AtomicU64,
    /// Sum of |sync error| in µs (integer, so it can be atomic).
    sync_sum_us: AtomicU64,
}

impl Metrics {
    /// Counts one served live part (`segment` false) or segment.
    pub fn served(&self, segment: bool) {
        let c = if segment { &self.inner.segments_served } else { &self.inner.parts_served };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one listener's reported sync error, ms (sign ignored).
    pub fn observe_sync_error(&self, ms: f64) {
        let ms = ms.abs();
        if !ms.is_finite() {
            return;
        }
        for (i, bound) in SYNC_BUCKETS_MS.iter().enumerate() {
            if ms <= *bound {
                self.inner.sync_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.inner.sync_count.fetch_add(1, Ordering::Relaxed);
        self.inner.sync_sum_us.fetch_add((ms * 1000.0) as u64, Ordering::Relaxed);
    }

    /// Counts one answered request by its route template and status.
    pub fn count_request(&self, route: &str, status: u16) {
        if let Ok(map) = self.inner.requests.read() {
            if let Some(n) = map.get(route).and_then(|by_status| by_status.get(&status)) {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut map) = self.inner.requests.write() {
            let by_status = map.entry(route.into()).or_default();
            by_status.entry(status).or_default().fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (route template, status) → requests, sorted.
    fn requests(&self) -> BTreeMap<(String, u16), u64> {
        let Ok(map) = self.inner.requests.read() else { return BTreeMap::new() };
        map.iter()
            .flat_map(|(route, by_status)| {
                by_status.iter().map(|(status, n)| ((route.to_string(), *status), n.load(Ordering::Relaxed)))
            })
            .collect()
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    let m = &state.metrics.inner;
    let mut out = String::new();
    header(&mut out, "bardcast_build_info", "gauge", "Version of the running server.");
    let _ = writeln!(out, "bardcast_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    header(&mut out, "bardcast_listeners_connected", "gauge", "Listener pages connected to the control socket.");
    let _ = writeln!(out, "bardcast_listeners_connected {}", state.listeners.count());
    header(&mut out, "bardcast_http_requests_total", "counter", "HTTP requests by route and status.");
    for ((route, status), n) in state.metrics.requests() {
        let _ = writeln!(out, "bardcast_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
    }
    header(&mut out, "bardcast_live_parts_served_total", "counter", "Live parts served.");
    let _ = writeln!(out, "bardcast_live_parts_served_total {}", m.parts_served.load(Ordering::Relaxed));
    header(&mut out, "bardcast_live_segments_served_total", "counter", "Live segments served.");
    let _ = writeln!(out, "bardcast_live_segments_served_total {}", m.segments_served.load(Ordering::Relaxed));
    header(&mut out, "bardcast_sync_error_ms", "histogram", "Listeners' reported |sync error| in ms.");
    for (i, bound) in SYNC_BUCKETS_MS.iter().enumerate() {
        let _ = writeln!(out, "bardcast_sync_error_ms_bucket{{le=\"{bound}\"}} {}", m.sync_buckets[i].load(Ordering::Relaxed));
    }
    let count = m.sync_count.load(Ordering::Relaxed);
    let _ = writeln!(out, "bardcast_sync_error_ms_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "bardcast_sync_error_ms_sum {}", m.sync_sum_us.load(Ordering::Relaxed) as f64 / 1000.0);
    let _ = writeln!(out, "bardcast_sync_error_ms_count {count}");

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
        ("bardcast_cache_encoded_audio_seconds_total", "Seconds of audio encoded by finished encodes.", cache.encoded_audio_seconds),
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
