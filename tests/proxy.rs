//! Real nginx and real Varnish, each with the caching configuration we ship, in front of
//! bardcast: 50 simulated listeners for 60 s; the origin serves each part and segment at
//! most once, listeners waiting on the same blocking reload share the origin's answers (with
//! Varnish, one origin request per reload URL), and every listener gets the origin's bytes.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Options, Server};
use reqwest::Method;
use serde_json::json;

const LISTENERS: usize = 50;
const RUN: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn digest(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// URI → digests seen by listeners.
type Seen = Arc<Mutex<HashMap<String, HashSet<u64>>>>;

/// A caching proxy with the config in k8s/proxy/, running until dropped.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Nginx,
    Varnish,
}

struct Proxy {
    dir: std::path::PathBuf,
}

impl Proxy {
    /// Renders the config into `dir` (with its start and stop scripts) and starts the proxy on
    /// 127.0.0.1:`port`.
    fn start(kind: Kind, upstream: &str, port: u16, dir: std::path::PathBuf) -> Proxy {
        let script = match kind {
            Kind::Nginx => concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/proxy/render-local.sh"),
            Kind::Varnish => concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/proxy-varnish/render-varnish-local.sh"),
        };
        let render = Command::new(script).args([upstream, &port.to_string(), dir.to_str().unwrap()]).status().unwrap();
        assert!(render.success());
        let started = Command::new(dir.join("start"))
            .status()
            .expect("nginx and varnishd are needed (scripts/test installs them)");
        assert!(started.success());
        Proxy { dir }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new(self.dir.join("stop")).status();
    }
}

/// The media sequence and parts of the newest listed segment (complete or in progress).
fn live_edge(playlist: &str) -> (u64, Vec<String>) {
    let parts: Vec<String> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1).and_then(|r| r.split('"').next()).map(str::to_owned))
        .collect();
    let last = parts
        .last()
        .and_then(|p| p.strip_prefix("part/"))
        .and_then(|p| p.strip_suffix(".m4s"))
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    (last, parts)
}

/// Playlist reloads the listeners made: blocking ones (and their distinct URLs), and plain
/// ones (which pass the proxy).
#[derive(Default)]
struct Reloads {
    blocking: AtomicU64,
    plain: AtomicU64,
    blocking_urls: Mutex<HashSet<String>>,
}

async fn ll_listener(client: reqwest::Client, base: String, seen: Seen, reloads: Arc<Reloads>, stop: Instant) {
    let mut fetched: HashSet<String> = HashSet::new();
    let init = client.get(format!("{base}/hls/256k/init.mp4")).send().await.unwrap();
    assert_eq!(init.status(), 200);
    let mut next: Option<u64> = None;
    while Instant::now() < stop {
        let url = match next {
            Some(p) => {
                reloads.blocking.fetch_add(1, Ordering::Relaxed);
                let query = format!("_HLS_msn={}&_HLS_part={}", p / 4, p % 4);
                reloads.blocking_urls.lock().unwrap().insert(query.clone());
                format!("{base}/hls/256k/live.m3u8?{query}")
            }
            None => {
                reloads.plain.fetch_add(1, Ordering::Relaxed);
                format!("{base}/hls/256k/live.m3u8")
            }
        };
        let r = client.get(&url).timeout(Duration::from_secs(10)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let text = r.text().await.unwrap();
        let (last, parts) = live_edge(&text);
        for uri in parts.iter().rev().take(3) {
            if fetched.insert(uri.clone()) {
                let r = client.get(format!("{base}/hls/256k/{uri}")).send().await.unwrap();
                assert_eq!(r.status(), 200, "{uri}");
                let d = digest(&r.bytes().await.unwrap());
                seen.lock().unwrap().entry(uri.clone()).or_default().insert(d);
            }
        }
        next = Some(last + 1);
    }
}

async fn segment_listener(client: reqwest::Client, base: String, seen: Seen, reloads: Arc<Reloads>, stop: Instant) {
    let mut fetched: HashSet<String> = HashSet::new();
    while Instant::now() < stop {
        reloads.plain.fetch_add(1, Ordering::Relaxed);
        let text = client.get(format!("{base}/hls/256k/live.m3u8")).send().await.unwrap().text().await.unwrap();
        let segs: Vec<&str> = text.lines().filter(|l| l.starts_with("seg/")).collect();
        for uri in segs.iter().rev().take(2) {
            if fetched.insert(uri.to_string()) {
                let r = client.get(format!("{base}/hls/256k/{uri}")).send().await.unwrap();
                assert_eq!(r.status(), 200, "{uri}");
                let d = digest(&r.bytes().await.unwrap());
                seen.lock().unwrap().entry(uri.to_string()).or_default().insert(d);
            }
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

fn origin_count(metrics: &str, route: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("bardcast_http_requests_total{{route=\"{route}\",status=\"200\"}} ")))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_listeners_through_nginx_cost_the_origin_one_fetch_per_file() {
    fifty_listeners_through(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_listeners_through_varnish_cost_the_origin_one_fetch_per_file_and_reload() {
    fifty_listeners_through(Kind::Varnish).await;
}

async fn fifty_listeners_through(kind: Kind) {
    let dir = common::temp_dir("proxy");
    let s = Server::start_in(
        &dir,
        &dir.join("unused"),
        Options { extra_env: vec![("DEMO".into(), "true".into())], ..Default::default() },
    );
    s.wait_scan_idle().await;
    let (_, folder) = s.gm_json(Method::POST, "/api/folders", json!({"name": "All"})).await;
    let fid = folder["id"].as_i64().unwrap();
    let ids: Vec<i64> = s.get_json("/api/tracks").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    s.gm_json(Method::POST, &format!("/api/folders/{fid}/tracks"), json!({"trackIds": ids})).await;
    let (st, _) = s.gm_json(Method::POST, "/api/session/play", json!({"folderId": fid})).await;
    assert_eq!(st, 200);

    let port = free_port();
    let upstream = s.base.trim_start_matches("http://").to_owned();
    let _proxy = Proxy::start(kind, &upstream, port, dir.join("proxy"));
    let proxy = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("{proxy}/api/health")).await.map(|r| !r.status().is_success()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "the proxy did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let before = s.get("/metrics").await.text().await.unwrap();
    let seen: Seen = Arc::default();
    let reloads: Arc<Reloads> = Arc::default();
    let stop = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for i in 0..LISTENERS {
        let client = reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
        let (base, seen, reloads) = (proxy.clone(), seen.clone(), reloads.clone());
        tasks.push(if i % 5 == 4 {
            tokio::spawn(segment_listener(client, base, seen, reloads, stop))
        } else {
            tokio::spawn(ll_listener(client, base, seen, reloads, stop))
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A track change and a pause while they listen.
    tokio::time::sleep(Duration::from_secs(20)).await;
    s.gm_json(Method::POST, "/api/session/next", json!({})).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.gm_json(Method::POST, "/api/session/pause", json!({})).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.gm_json(Method::POST, "/api/session/resume", json!({})).await;
    for t in tasks {
        t.await.unwrap();
    }
    let after = s.get("/metrics").await.text().await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let parts: Vec<_> = seen.keys().filter(|u| u.starts_with("part/")).collect();
    let segs: Vec<_> = seen.keys().filter(|u| u.starts_with("seg/")).collect();
    assert!(parts.len() > 100, "only {} distinct parts fetched", parts.len());
    assert!(segs.len() > 20, "only {} distinct segments fetched", segs.len());
    let origin_parts =
        origin_count(&after, "/hls/{rendition}/part/{file}") - origin_count(&before, "/hls/{rendition}/part/{file}");
    let origin_segs =
        origin_count(&after, "/hls/{rendition}/seg/{file}") - origin_count(&before, "/hls/{rendition}/seg/{file}");
    println!(
        "{} distinct parts, origin served {origin_parts}; {} distinct segments, origin served {origin_segs}",
        parts.len(),
        segs.len()
    );
    assert!(
        origin_parts <= parts.len() as u64,
        "the origin served {origin_parts} parts for {} distinct ones",
        parts.len()
    );
    assert!(
        origin_segs <= segs.len() as u64,
        "the origin served {origin_segs} segments for {} distinct ones",
        segs.len()
    );
    // Listeners parked on the same part share the origin's blocking answers, rather than
    // each holding one at the origin: nginx's cache lock ages every 50 ms (a few upstream
    // requests per URL); Varnish's waiting list sends exactly one and wakes every waiter.
    let blocking = reloads.blocking.load(Ordering::Relaxed);
    let distinct = reloads.blocking_urls.lock().unwrap().len() as u64;
    let origin_playlists =
        origin_count(&after, "/hls/{rendition}/live.m3u8") - origin_count(&before, "/hls/{rendition}/live.m3u8");
    let origin_blocking = origin_playlists.saturating_sub(reloads.plain.load(Ordering::Relaxed));
    println!("{blocking} blocking reloads by listeners ({distinct} distinct), origin served {origin_blocking}");
    assert!(
        origin_blocking * 4 < blocking,
        "the origin served {origin_blocking} blocking reloads for the listeners' {blocking}"
    );
    if kind == Kind::Varnish {
        assert!(
            origin_blocking <= distinct,
            "the origin served {origin_blocking} blocking reloads for {distinct} distinct ones"
        );
    }

    // Every listener got the same bytes, and they are the origin's.
    for (uri, digests) in &seen {
        assert_eq!(digests.len(), 1, "listeners got different bytes for {uri}");
    }
    for uri in parts.iter().rev().take(40).chain(segs.iter().rev().take(10)) {
        let origin = s.get(&format!("/hls/256k/{uri}")).await.bytes().await.unwrap();
        assert!(seen[*uri].contains(&digest(&origin)), "{uri} differs from the origin's bytes");
    }
}
