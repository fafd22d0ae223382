//! Prometheus counters kept in memory; `http` serves them at `GET /metrics` with the gauges
//! it reads at scrape time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::device_check::{Engine, Verdict};

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
    /// Wrong GM keys refused after being checked.
    gm_key_wrong: AtomicU64,
    /// GM keys refused unchecked, from an address that sent too many wrong ones.
    gm_key_throttled: AtomicU64,
    /// Device checks received since start, by engine and verdict (indices into `Engine::ALL`, `Verdict::ALL`).
    device_checks: [[AtomicU64; Verdict::ALL.len()]; Engine::ALL.len()],
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

    /// Counts one refused GM key: `throttled` when refused unchecked.
    pub fn count_gm_key_refusal(&self, throttled: bool) {
        let c = if throttled { &self.inner.gm_key_throttled } else { &self.inner.gm_key_wrong };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one device check received.
    pub fn count_device_check(&self, engine: Engine, verdict: Verdict) {
        self.inner.device_checks[engine as usize][verdict as usize].fetch_add(1, Ordering::Relaxed);
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

    /// Writes every counter in Prometheus text format.
    pub fn write(&self, out: &mut String) {
        let m = &self.inner;
        header(out, "bardcast_http_requests_total", "counter", "HTTP requests by route and status.");
        for ((route, status), n) in self.requests() {
            let _ = writeln!(out, "bardcast_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        header(out, "bardcast_live_parts_served_total", "counter", "Live parts served.");
        let _ = writeln!(out, "bardcast_live_parts_served_total {}", m.parts_served.load(Ordering::Relaxed));
        header(out, "bardcast_live_segments_served_total", "counter", "Live segments served.");
        let _ = writeln!(out, "bardcast_live_segments_served_total {}", m.segments_served.load(Ordering::Relaxed));
        header(out, "bardcast_sync_error_ms", "histogram", "Listeners' reported |sync error| in ms.");
        for (i, bound) in SYNC_BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "bardcast_sync_error_ms_bucket{{le=\"{bound}\"}} {}",
                m.sync_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = m.sync_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "bardcast_sync_error_ms_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "bardcast_sync_error_ms_sum {}", m.sync_sum_us.load(Ordering::Relaxed) as f64 / 1000.0);
        let _ = writeln!(out, "bardcast_sync_error_ms_count {count}");
        header(
            out,
            "bardcast_gm_key_refusals_total",
            "counter",
            "GM keys refused: wrong, or unchecked from an address guessing.",
        );
        let _ = writeln!(
            out,
            "bardcast_gm_key_refusals_total{{reason=\"wrong\"}} {}",
            m.gm_key_wrong.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "bardcast_gm_key_refusals_total{{reason=\"throttled\"}} {}",
            m.gm_key_throttled.load(Ordering::Relaxed)
        );
        header(
            out,
            "bardcast_device_checks_total",
            "counter",
            "Device checks (/check) received, by engine and verdict.",
        );
        for (e, engine) in Engine::ALL.iter().enumerate() {
            for (v, verdict) in Verdict::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "bardcast_device_checks_total{{engine=\"{}\",verdict=\"{}\"}} {}",
                    engine.label(),
                    verdict.label(),
                    m.device_checks[e][v].load(Ordering::Relaxed)
                );
            }
        }
    }
}

/// Writes the `# HELP` and `# TYPE` lines of one metric.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
