//! What rooms cost: 32 rooms on one server, 8 busy (a track crossfading into the next, two
//! ambience layers, a one-shot every 5 s) and 24 idle (nothing playing), 100 simulated LL-HLS
//! listeners spread over all of them. Not a test: a bounded run that prints
//!
//! - the memory of a room: the server's RSS with 32 rooms less with one, per room;
//! - the CPU of 32 rooms nobody listens to (nothing renders);
//! - the CPU per busy room: 100 listeners with the 8 rooms busy, less the same 100 with every
//!   room silent, over 8;
//! - p99 of part requests and blocking playlist answers, and errors, in both.
//!
//! `cargo bench --bench rooms` (release). `SECONDS_PER_STEP=20` overrides each step's length.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod load;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::{listener, now_ms, quantile, rss_kb, sorted, Origin, Stats, GM_KEY};
use serde_json::{json, Value};

const ROOMS: usize = 32;
const BUSY: usize = 8;
const LISTENERS: usize = 100;
/// Latencies are kept from this long after a step starts, ms.
const WARM_UP_MS: u64 = 3000;

/// CPU time the process `pid` has used, s (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the 3rd field, utime the 14th.
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // `after` starts at the state (not a number), so utime and stime are fields 11 and 12 here.
    fields.get(10).zip(fields.get(11)).map_or(0.0, |(u, s)| (u + s) / 100.0)
}

/// The server's CPU over `secs` with nothing asked of it by this process, % of one core.
async fn idle_cpu(origin: &Origin, secs: u64) -> f64 {
    let before = cpu_seconds(origin.child.id());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    (cpu_seconds(origin.child.id()) - before) / secs as f64 * 100.0
}

struct Step {
    cpu_percent: f64,
    /// The server's RSS at the step's end, MB.
    rss_mb: u64,
    detail: String,
    errors: u64,
}

/// `LISTENERS` listeners spread over `slugs` in turn for `secs`.
async fn run_step(addr: &str, origin: &Origin, slugs: &[String], secs: u64) -> Step {
    let stats = Arc::new(Stats::default());
    let stop = Instant::now() + Duration::from_secs(secs);
    let measure_from_ms = now_ms() + WARM_UP_MS;
    let tasks: Vec<_> = (0..LISTENERS)
        .map(|i| {
            let prefix = format!("/hls/{}", slugs[i % slugs.len()]);
            tokio::spawn(listener(addr.to_owned(), prefix, stats.clone(), stop, measure_from_ms))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(WARM_UP_MS)).await;
    let before = cpu_seconds(origin.child.id());
    let measured = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let cpu_percent = (cpu_seconds(origin.child.id()) - before) / measured.elapsed().as_secs_f64() * 100.0;
    let (playlist, part) = (sorted(&stats.playlist_ms), sorted(&stats.part_ms));
    let detail = format!(
        "part p50 {:.0} p99 {:.0} ms, blocking playlist p50 {:.0} p99 {:.0} ms",
        quantile(&part, 0.5),
        quantile(&part, 0.99),
        quantile(&playlist, 0.5),
        quantile(&playlist, 0.99)
    );
    Step { cpu_percent, rss_mb: rss_kb(origin.child.id()) / 1024, detail, errors: stats.errors.load(Ordering::Relaxed) }
}

async fn post(client: &reqwest::Client, origin: &Origin, path: &str, body: Value) -> Value {
    let r = client.post(format!("{}{path}", origin.base)).bearer_auth(GM_KEY).json(&body).send().await.expect(path);
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

/// In room `slug`: a track on repeat-all with a 3 s crossfade, two layers under it.
async fn make_busy(client: &reqwest::Client, origin: &Origin, slug: &str) {
    let session = format!("/api/rooms/{slug}/session");
    post(client, origin, &format!("{session}/settings"), json!({"crossfadeSeconds": 3})).await;
    post(client, origin, &format!("{session}/play"), json!({"trackId": 1})).await;
    post(client, origin, &format!("{session}/queue"), json!({"action": "add", "trackIds": [2, 3]})).await;
    post(client, origin, &format!("{session}/repeat"), json!({"mode": "all"})).await;
    post(client, origin, &format!("{session}/layer"), json!({"action": "add", "trackId": 4, "gain": 0.5})).await;
    post(client, origin, &format!("{session}/layer"), json!({"action": "add", "trackId": 2, "gain": 0.3})).await;
}

fn main() {
    let secs: u64 = std::env::var("SECONDS_PER_STEP").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let origin = Origin::start(&[("MAX_ROOMS", ROOMS.to_string())]).await;
        let client = reqwest::Client::new();
        // The demo tracks encoded once, so no step pays for a first encode.
        post(&client, &origin, "/api/cache/prepare", json!({})).await;
        tokio::time::sleep(Duration::from_secs(8)).await;
        let one_room_kb = rss_kb(origin.child.id());

        let mut slugs = vec!["main".to_owned()];
        for i in 1..ROOMS {
            let room = post(&client, &origin, "/api/rooms", json!({"name": format!("Table {i}")})).await;
            slugs.push(room["slug"].as_str().unwrap().to_owned());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rooms_kb = rss_kb(origin.child.id());
        let idle = idle_cpu(&origin, secs).await;
        println!(
            "{ROOMS} rooms: RSS {} MB with one room, {} MB with {ROOMS}: {:.0} kB per room; {ROOMS} idle rooms use {idle:.2} % of a core",
            one_room_kb / 1024,
            rooms_kb / 1024,
            (rooms_kb.saturating_sub(one_room_kb)) as f64 / (ROOMS - 1) as f64,
        );

        let silent = run_step(&origin.addr, &origin, &slugs, secs).await;
        println!(
            "{LISTENERS} listeners over {ROOMS} silent rooms: {:.1} % of a core, RSS {} MB; {}; errors {}",
            silent.cpu_percent, silent.rss_mb, silent.detail, silent.errors
        );
        for slug in &slugs[..BUSY] {
            make_busy(&client, &origin, slug).await;
        }
        let effects = {
            let (client, base, busy) = (client.clone(), origin.base.clone(), slugs[..BUSY].to_vec());
            let until = Instant::now() + Duration::from_secs(secs + 4);
            tokio::spawn(async move {
                while Instant::now() < until {
                    for slug in &busy {
                        let url = format!("{base}/api/rooms/{slug}/session/oneshot");
                        let _ = client.post(url).bearer_auth(GM_KEY).json(&json!({"trackId": 3, "gain": 0.5})).send().await;
                    }
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let busy = run_step(&origin.addr, &origin, &slugs, secs).await;
        let _ = effects.await;
        println!(
            "{LISTENERS} listeners over {ROOMS} rooms, {BUSY} busy: {:.1} % of a core, RSS {} MB; {}; errors {}",
            busy.cpu_percent, busy.rss_mb, busy.detail, busy.errors
        );
        println!(
            "per busy room (a track, crossfades, two layers, a one-shot every 5 s, 1 rendition): {:.2} % of a core, {:.1} MB",
            (busy.cpu_percent - silent.cpu_percent) / BUSY as f64,
            busy.rss_mb.saturating_sub(silent.rss_mb) as f64 / BUSY as f64
        );
    });
}
