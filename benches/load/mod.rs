//! The load generator the benches share: simulated LL-HLS listeners over a few lines of
//! HTTP/1.1 (a full HTTP client per listener costs more CPU than the server it measures),
//! and the numbers kept about them.

#![allow(dead_code)] // each bench uses a different part

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Part length on the time grid, ms.
pub const PART_MS: u64 = 512;
/// The GM (admin) key the benches start the server with.
pub const GM_KEY: &str = "bench";

/// A release bardcast on 127.0.0.1 with the demo tracks, its database and cache in a temp
/// dir; killed when dropped.
pub struct Origin {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `127.0.0.1:<port>`, for the load generator.
    pub addr: String,
    /// Holds the database, the cache and whatever a bench puts beside them.
    pub dir: tempfile::TempDir,
}

impl Origin {
    /// Starts the server with `env` on top of the benches' settings and waits until it answers.
    pub async fn start(env: &[(&str, String)]) -> Origin {
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
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .expect("start bardcast");
        let origin = Origin { child, base: format!("http://127.0.0.1:{port}"), addr: format!("127.0.0.1:{port}"), dir };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{}/api/scan/status", origin.base)).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        origin
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(38300)
}

pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The soft limit on open files of this process (each listener holds two sockets here and
/// two in the server).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits.lines().find(|l| l.starts_with("Max open files"))?.split_whitespace().nth(3)?.parse().ok()
}

/// One keep-alive HTTP/1.1 connection that can GET and read a response (length-delimited
/// or chunked, as nginx sends gzip).
pub struct Connection {
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

pub fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad response: {what}"))
}

#[derive(Default)]
pub struct Stats {
    /// From a part's publication to its blocking playlist answer, ms.
    pub playlist_ms: Mutex<Vec<f64>>,
    /// From asking for a part to having it, ms.
    pub part_ms: Mutex<Vec<f64>>,
    pub errors: AtomicU64,
}

/// The blocking reload for `part` of the stream under `prefix` (`/hls`, `/hls/<room>`).
pub fn blocking_reload(prefix: &str, part: u64) -> String {
    format!("{prefix}/256k/live.m3u8?_HLS_msn={}&_HLS_part={}", part / 4, part % 4)
}

pub fn ok(answer: &std::io::Result<(u16, usize)>) -> bool {
    matches!(answer, Ok((200, n)) if *n > 0)
}

/// One listener of the stream under `prefix` until `stop`, as hls.js plays LL-HLS: when the blocking reload for part P
/// answers, it asks for P's bytes and for the reload of P + 1 at once, on two connections.
/// Latencies of parts published before `measure_from_ms` (the warm-up, while listeners
/// join at random moments) are not kept.
pub async fn listener(addr: String, prefix: String, stats: Arc<Stats>, stop: Instant, measure_from_ms: u64) {
    let (mut playlists, mut parts) = (Connection::new(&addr), Connection::new(&addr));
    let mut next = now_ms() / PART_MS + 1;
    let mut answer = playlists.get(&blocking_reload(&prefix, next)).await;
    let mut answered_at = now_ms();
    let (mut playlist_ms, mut part_ms) = (Vec::new(), Vec::new());
    while Instant::now() < stop {
        if !ok(&answer) {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
            next = now_ms() / PART_MS + 1;
            answer = playlists.get(&blocking_reload(&prefix, next)).await;
            answered_at = now_ms();
            continue;
        }
        let measured = next * PART_MS >= measure_from_ms;
        if measured {
            // A blocking answer's latency counts from when its part was published.
            playlist_ms.push(answered_at.saturating_sub(next * PART_MS) as f64);
        }
        let asked = Instant::now();
        let (part, (following, at)) = tokio::join!(
            async { (parts.get(&format!("{prefix}/256k/part/{next}.m4s")).await, asked.elapsed()) },
            async { (playlists.get(&blocking_reload(&prefix, next + 1)).await, now_ms()) },
        );
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
pub fn quantile(v: &[f64], q: f64) -> f64 {
    v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
}

pub fn sorted(mutex: &Mutex<Vec<f64>>) -> Vec<f64> {
    let mut v = mutex.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}
