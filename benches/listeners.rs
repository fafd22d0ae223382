//! Load harness: N simulated LL-HLS listeners against the origin directly and through the
//! caching proxy (real nginx with k8s/proxy's config). Not a test: a bounded run that prints,
//! per N, the p99 latency of playlist and part requests, errors and the origin's RSS, then
//! the largest N with p99 < 100 ms and no errors; through the proxy it prints the origin's
//! request rate, which should stay flat as listeners grow.
//!
//! `cargo bench --bench listeners` (release; needs nginx). `LISTENERS=250,500,1000,2000`
//! and `SECONDS_PER_STEP=15` override the steps.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GM_KEY: &str = "bench";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(38300)
}

struct Origin {
    child: Child,
    base: String,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

#[derive(Default)]
struct Stats {
    latencies_ms: Mutex<Vec<f64>>,
    errors: AtomicU64,
}

/// One listener: blocking reload for the next part, then fetch that part; until `stop`.
async fn listener(client: reqwest::Client, base: String, stats: Arc<Stats>, stop: Instant) {
    let mut next = now_ms() / 512 + 1;
    while Instant::now() < stop {
        let url = format!("{base}/hls/256k/live.m3u8?_HLS_msn={}&_HLS_part={}", next / 4, next % 4);
        let ok = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        };
        // Latency of a blocking answer counts from when the part was published.
        let published = next * 512;
        let late = now_ms().saturating_sub(published) as f64;
        if !ok {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            next = now_ms() / 512 + 1;
            continue;
        }
        let t = Instant::now();
        let part = client.get(format!("{base}/hls/256k/part/{next}.m4s")).send().await;
        let ok = match part {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        };
        if !ok {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut l) = stats.latencies_ms.lock() {
            l.push(late);
            l.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        next += 1;
    }
}

fn p99(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)]
}

fn origin_requests(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("bardcast_http_requests_total{route=\"/hls/"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn run_step(base: &str, origin: &Origin, n: usize, secs: u64) -> (f64, u64, u64) {
    let stats = Arc::new(Stats::default());
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        // One connection pool per listener, as each browser has its own.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        tasks.push(tokio::spawn(listener(client, base.to_owned(), stats.clone(), stop)));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut peak_rss = 0;
    while Instant::now() < stop {
        peak_rss = peak_rss.max(rss_kb(origin.child.id()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let lat = std::mem::take(&mut *stats.latencies_ms.lock().expect("stats"));
    (p99(lat), stats.errors.load(Ordering::Relaxed), peak_rss)
}

fn main() {
    let steps: Vec<usize> = std::env::var("LISTENERS")
        .unwrap_or_else(|_| "250,500,1000,2000,3000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs: u64 = std::env::var("SECONDS_PER_STEP").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_bardcast"))
        .envs([
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("DEMO", "true".into()),
            ("DATABASE_PATH", dir.path().join("db.sqlite").display().to_string()),
            ("CACHE_DIR", dir.path().join("cache").display().to_string()),
            ("GM_KEY", GM_KEY.into()),
            ("LOG_LEVEL", "warn".into()),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("start bardcast");
    let origin = Origin { child, base: format!("http://127.0.0.1:{port}") };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{}/api/scan/status", origin.base)).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = client
            .post(format!("{}/api/session/play", origin.base))
            .bearer_auth(GM_KEY)
            .json(&serde_json::json!({"trackId": 1}))
            .send()
            .await
            .expect("play");
        assert!(r.status().is_success(), "play: {}", r.status());
        let _ = client.post(format!("{}/api/session/repeat", origin.base)).bearer_auth(GM_KEY).json(&serde_json::json!({"mode": "all"})).send().await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("origin idle RSS {} kB", rss_kb(origin.child.id()));

        println!("\n== directly against the origin ({secs} s per step, all on this machine)");
        let mut best = 0;
        for &n in &steps {
            let (p, errors, rss) = run_step(&origin.base, &origin, n, secs).await;
            println!("{n:5} listeners: p99 {p:7.1} ms, errors {errors}, origin peak RSS {} MB", rss / 1024);
            if p < 100.0 && errors == 0 {
                best = n;
            }
        }
        println!("largest N with p99 < 100 ms and no errors: {best}");

        let px = dir.path().join("proxy");
        let proxy_port = free_port();
        let rendered = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/proxy/render-local.sh"))
            .args([&format!("127.0.0.1:{port}"), &proxy_port.to_string(), &px.display().to_string()])
            .status();
        let started = rendered.is_ok_and(|s| s.success())
            && Command::new("nginx").arg("-p").arg(&px).arg("-c").arg(px.join("nginx.conf")).status().is_ok_and(|s| s.success());
        if !started {
            println!("nginx could not start; skipping the proxy run");
            return;
        }
        let proxy = format!("http://127.0.0.1:{proxy_port}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("\n== through the caching proxy (nginx)");
        for &n in &steps {
            let before = client.get(format!("{}/metrics", origin.base)).send().await.expect("metrics").text().await.unwrap_or_default();
            let (p, errors, rss) = run_step(&proxy, &origin, n, secs).await;
            let after = client.get(format!("{}/metrics", origin.base)).send().await.expect("metrics").text().await.unwrap_or_default();
            let rate = (origin_requests(&after) - origin_requests(&before)) as f64 / secs as f64;
            println!("{n:5} listeners: p99 {p:7.1} ms, errors {errors}, origin {rate:7.1} HLS requests/s, origin peak RSS {} MB", rss / 1024);
        }
        let _ = Command::new("nginx").arg("-p").arg(&px).arg("-c").arg(px.join("nginx.conf")).args(["-s", "quit"]).status();
    });
}
