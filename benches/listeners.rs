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

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const GM_KEY: &str = "bench";
/// Part length on the time grid, ms.
const PART_MS: u64 = 512;
/// Latencies are kept from this long after a step starts, ms: listeners join over the first
/// second, each at a random moment of a part.
const WARM_UP_MS: u64 = 3000;

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
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The soft limit on open files of this process (each listener holds two sockets here and
/// two in the server).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits.lines().find(|l| l.starts_with("Max open files"))?.split_whitespace().nth(3)?.parse().ok()
}

/// One keep-alive HTTP/1.1 connection that can GET and read a response (length-delimited
/// or chunked, as nginx sends gzip).
struct Connection {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    fn new(addr: &str) -> Self {
        Connection { addr: addr.to_owned(), stream: None }
    }

    /// GETs `path`; the status and the body's length. Any failure drops the connection.
    async fn get(&mut self, path: &str) -> std::io::Result<(u16, usize)> {
        let result = self.try_get(path).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn try_get(&mut self, path: &str) -> std::io::Result<(u16, usize)> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => self.stream.insert(BufReader::new(TcpStream::connect(&self.addr).await?)),
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: gzip\r\n\r\n", self.addr);
        stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(&line))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if stream.read_line(&mut line).await? == 0 {
                return Err(bad("closed in the headers"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(|| bad(header))?;
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim_end(), 16).map_err(|_| bad(&line))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                stream.read_exact(&mut body[start..]).await?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length.ok_or_else(|| bad("no content-length"))?, 0);
            stream.read_exact(&mut body).await?;
        }
        Ok((status, body.len()))
    }
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad response: {what}"))
}

#[derive(Default)]
struct Stats {
    /// From a part's publication to its blocking playlist answer, ms.
    playlist_ms: Mutex<Vec<f64>>,
    /// From asking for a part to having it, ms.
    part_ms: Mutex<Vec<f64>>,
    errors: AtomicU64,
}

fn blocking_reload(part: u64) -> String {
    format!("/hls/256k/live.m3u8?_HLS_msn={}&_HLS_part={}", part / 4, part % 4)
}

fn ok(answer: &std::io::Result<(u16, usize)>) -> bool {
    matches!(answer, Ok((200, n)) if *n > 0)
}

/// One listener until `stop`, as hls.js plays LL-HLS: when the blocking reload for part P
/// answers, it asks for P's bytes and for the reload of P + 1 at once, on two connections.
/// Latencies of parts published before `measure_from_ms` (the warm-up, while listeners
/// join at random moments) are not kept.
async fn listener(addr: String, stats: Arc<Stats>, stop: Instant, measure_from_ms: u64) {
    let (mut playlists, mut parts) = (Connection::new(&addr), Connection::new(&addr));
    let mut next = now_ms() / PART_MS + 1;
    let mut answer = playlists.get(&blocking_reload(next)).await;
    let mut answered_at = now_ms();
    let (mut playlist_ms, mut part_ms) = (Vec::new(), Vec::new());
    while Instant::now() < stop {
        if !ok(&answer) {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            next = now_ms() / PART_MS + 1;
            answer = playlists.get(&blocking_reload(next)).await;
            answered_at = now_ms();
            continue;
        }
        let measured = next * PART_MS >= measure_from_ms;
        if measured {
            // A blocking answer's latency counts from when its part was published.
            playlist_ms.push(answered_at.saturating_sub(next * PART_MS) as f64);
        }
        let asked = Instant::now();
        let (part, (following, at)) =
            tokio::join!(async { (parts.get(&format!("/hls/256k/part/{next}.m4s")).await, asked.elapsed()) }, async {
                (playlists.get(&blocking_reload(next + 1)).await, now_ms())
            },);
        if !ok(&part.0) {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        } else if measured {
            part_ms.push(part.1.as_secs_f64() * 1000.0);
        }
        (next, answer, answered_at) = (next + 1, following, at);
    }
    if let (Ok(mut a), Ok(mut b)) = (stats.playlist_ms.lock(), stats.part_ms.lock()) {
        a.extend(playlist_ms);
        b.extend(part_ms);
    }
}

/// The `q` quantile of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
}

fn sorted(mutex: &Mutex<Vec<f64>>) -> Vec<f64> {
    let mut v = mutex.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

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
        tasks.push(tokio::spawn(listener(addr.to_owned(), stats.clone(), stop, measure_from_ms)));
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
    let origin_addr = format!("127.0.0.1:{port}");
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
        println!("origin idle RSS {} MB", rss_kb(origin.child.id()) / 1024);

        println!("\n== directly against the origin ({secs} s per step, load generator on the same {} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));
        let mut best = 0;
        for &n in &steps {
            let step = run_step(&origin_addr, &origin, n, secs).await;
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
            let folder = dir.path().join(proxy.name());
            let port = free_port();
            if !proxy.start(&origin_addr, port, &folder) {
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
                    rate("/hls/{rendition}/live.m3u8"),
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
