//! Load harness: N simulated LL-HLS listeners against the origin directly and through each
//! caching proxy we ship config for (real nginx and real Varnish, with k8s/proxy's and k8s/proxy-varnish's configs).
//! Not a test: a bounded run that prints,
//! per N, the p99 latency of playlist and part requests, errors and the origin's peak RSS,
//! then the largest N with p99 < 100 ms and no errors; through the proxy it prints the
//! origin's request rate, which should stay flat as listeners grow.
//!
//! `cargo bench --bench listeners` (release; nginx and varnishd, a missing one is skipped). `LISTENERS=250,500,1000,2000`
//! and `SECONDS_PER_STEP=15` override the steps.
//!
//! Each listener does what hls.js does at the live edge, on two keep-alive connections of its
//! own: a blocking playlist reload for the next part (`_HLS_msn`/`_HLS_part`, gzip
//! accepted), and when it answers, that part and the next reload. All of them wait for the
//! same part, so every publication is a thundering herd. The client is a few lines of HTTP/1.1 over tokio's `TcpStream`: a full
//! HTTP client per listener costs more CPU than the server it measures, and both share
//! this machine's cores.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod load;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::{free_port, listener, now_ms, open_files_limit, quantile, rss_kb, sorted, Origin, Stats, GM_KEY};

/// Latencies are kept from this long after a step starts, ms: listeners join over the first
/// second, each at a random moment of a part.
const WARM_UP_MS: u64 = 3000;

/// Requests the origin answered on routes starting with `route_prefix` (all statuses).
fn origin_requests(metrics: &str, route_prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("bardcast_http_requests_total{{route=\"{route_prefix}")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

struct Step {
    /// Playlist answers and parts together.
    p99_ms: f64,
    /// "playlist p50/p99, part p50/p99" in ms.
    detail: String,
    errors: u64,
    peak_rss_kb: u64,
}

async fn run_step(addr: &str, origin: &Origin, n: usize, secs: u64) -> Step {
    let stats = Arc::new(Stats::default());
    let stop = Instant::now() + Duration::from_secs(secs);
    let measure_from_ms = now_ms() + WARM_UP_MS;
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(tokio::spawn(listener(addr.to_owned(), "/hls".into(), stats.clone(), stop, measure_from_ms)));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut peak_rss_kb = 0;
    while Instant::now() < stop {
        peak_rss_kb = peak_rss_kb.max(rss_kb(origin.child.id()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    let (playlist, part) = (sorted(&stats.playlist_ms), sorted(&stats.part_ms));
    let mut all = [playlist.as_slice(), part.as_slice()].concat();
    all.sort_by(|a, b| a.total_cmp(b));
    let detail = format!(
        "playlist p50 {:.0} p99 {:.0}, part p50 {:.0} p99 {:.0}",
        quantile(&playlist, 0.5),
        quantile(&playlist, 0.99),
        quantile(&part, 0.5),
        quantile(&part, 0.99)
    );
    Step { p99_ms: quantile(&all, 0.99), detail, errors: stats.errors.load(Ordering::Relaxed), peak_rss_kb }
}

async fn metrics(client: &reqwest::Client, origin: &Origin) -> String {
    match client.get(format!("{}/metrics", origin.base)).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn main() {
    let steps: Vec<usize> = std::env::var("LISTENERS")
        .unwrap_or_else(|_| "250,500,1000,2000,3000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs: u64 = std::env::var("SECONDS_PER_STEP").ok().and_then(|s| s.parse().ok()).unwrap_or(15);
    let most = steps.iter().copied().max().unwrap_or(0) as u64;
    if let Some(limit) = open_files_limit().filter(|l| *l < 2 * most + 100) {
        println!("warning: {limit} open files allowed; {most} listeners need more (ulimit -n {})", 4 * most + 200);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let origin = Origin::start(&[]).await;
        let client = reqwest::Client::new();
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
        println!("origin idle RSS {} MB", rss_kb(origin.child.id()) / 1024);

        println!("\n== directly against the origin ({secs} s per step, load generator on the same {} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));
        let mut best = 0;
        for &n in &steps {
            let step = run_step(&origin.addr, &origin, n, secs).await;
            println!(
                "{n:5} listeners: p99 {:5.0} ms ({}), errors {}, origin peak RSS {} MB",
                step.p99_ms,
                step.detail,
                step.errors,
                step.peak_rss_kb / 1024
            );
            if step.p99_ms < 100.0 && step.errors == 0 {
                best = n;
            }
        }
        println!("largest N with p99 < 100 ms and no errors: {best}");

        for proxy in [Proxy::Nginx, Proxy::Varnish] {
            let folder = origin.dir.path().join(proxy.name());
            let port = free_port();
            if !proxy.start(&origin.addr, port, &folder) {
                println!("\n{} could not start; skipping its run", proxy.name());
                continue;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            println!("\n== through the caching proxy ({})", proxy.label());
            for &n in &steps {
                let before = metrics(&client, &origin).await;
                let step = run_step(&format!("127.0.0.1:{port}"), &origin, n, secs).await;
                let after = metrics(&client, &origin).await;
                let rate = |route: &str| origin_requests(&after, route).saturating_sub(origin_requests(&before, route)) as f64 / secs as f64;
                println!(
                    "{n:5} listeners: p99 {:5.0} ms ({}), errors {}, origin {:.1} playlist + {:.1} part requests/s, origin peak RSS {} MB",
                    step.p99_ms,
                    step.detail,
                    step.errors,
                    rate("/hls/{name}/live.m3u8"),
                    rate("/hls/{rendition}/part/"),
                    step.peak_rss_kb / 1024
                );
            }
            Proxy::stop(&folder);
        }
    });
}

/// A caching proxy in front of the origin, with the config in k8s/proxy/.
#[derive(Clone, Copy)]
enum Proxy {
    Nginx,
    Varnish,
}

impl Proxy {
    fn name(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Varnish => "varnish",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx, 1 worker, bardcast.conf.template",
            Proxy::Varnish => "Varnish, bardcast.vcl",
        }
    }

    /// Renders its config into `folder` (with its start and stop scripts) and starts it on
    /// 127.0.0.1:`port`; false if it could not.
    fn start(self, origin: &str, port: u16, folder: &std::path::Path) -> bool {
        let script = match self {
            Proxy::Nginx => concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/proxy/render-local.sh"),
            Proxy::Varnish => concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/proxy-varnish/render-varnish-local.sh"),
        };
        let run = |cmd: &mut Command| cmd.stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        run(Command::new(script).args([origin, &port.to_string(), &folder.display().to_string()]))
            && run(&mut Command::new(folder.join("start")))
    }

    fn stop(folder: &std::path::Path) {
        let _ = Command::new(folder.join("stop")).status();
    }
}
