//! Shared test harness: the real `bardcast` binary on 127.0.0.1:0 against a generated
//! music folder and a temporary data folder.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const GM_KEY: &str = "test-gm-key-0123456789";

/// A running server process with its folders.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: PathBuf,
    pub music: PathBuf,
    pub db: PathBuf,
    pub client: reqwest::Client,
    pub stdout_lines: Vec<String>,
}

/// How to start a server.
#[derive(Clone)]
pub struct Options {
    pub gm_key: Option<String>,
    pub scan_on_startup: bool,
    pub extra_env: Vec<(String, String)>,
    /// Where the server's log (stderr) goes; the test's own stderr when `None`.
    pub stderr: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { gm_key: Some(GM_KEY.into()), scan_on_startup: true, extra_env: Vec::new(), stderr: None }
    }
}

/// A fresh temporary folder that lives as long as the test process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = tempfile::Builder::new().prefix(&format!("bardcast-{name}-")).tempdir().unwrap();
    dir.keep()
}

impl Server {
    /// Starts the binary against `music` with its data in `dir`, waiting until it listens.
    pub fn start_in(dir: &Path, music: &Path, opts: Options) -> Server {
        let db = dir.join("data/bardcast.db");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bardcast"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("MUSIC_DIR", music)
            .env("DATABASE_PATH", &db)
            .env("CACHE_DIR", dir.join("data/cache"))
            .env("PLAYER_DIR", Path::new(env!("CARGO_MANIFEST_DIR")).join("player"))
            .env("SCAN_ON_STARTUP", opts.scan_on_startup.to_string())
            .env("LOG_LEVEL", "warn")
            // Tests scan when they say so: a watcher's scan would race `rescan()` (tests/watch.rs opts in).
            .env("WATCH", "false")
            .env("RESCAN_INTERVAL", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(k) = &opts.gm_key {
            cmd.env("GM_KEY", k);
        }
        for (k, v) in &opts.extra_env {
            cmd.env(k, v);
        }
        if let Some(path) = &opts.stderr {
            cmd.stderr(std::fs::File::create(path).expect("create the log file"));
        }
        let mut child = cmd.spawn().expect("start bardcast");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut base = None;
        while lines.len() < 3 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(addr) = line.trim().strip_prefix("bardcast listening on ") {
                base = Some(addr.to_owned());
            }
            lines.push(line.trim().to_owned());
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        let base = base.unwrap_or_else(|| panic!("server did not start: {lines:?}"));
        Server {
            child,
            base,
            dir: dir.to_path_buf(),
            music: music.to_path_buf(),
            db,
            client: reqwest::Client::new(),
            stdout_lines: lines,
        }
    }

    /// A server on a copy of the standard fixture library, scanned.
    pub async fn with_fixtures(name: &str) -> Server {
        let dir = temp_dir(name);
        let music = dir.join("music");
        copy_dir(fixture_library(), &music);
        let s = Server::start_in(&dir, &music, Options::default());
        s.wait_scan_idle().await;
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// A request with the GM key.
    pub fn gm(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(GM_KEY)
    }

    pub async fn gm_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self.gm(method, path).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Waits (at most 60 s) until no scan is running and at least one has finished.
    pub async fn wait_scan_idle(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.get_json("/api/scan/status").await;
            if s["state"] == "idle" && !s["lastFinishedAt"].is_null() {
                return s;
            }
            assert!(Instant::now() < deadline, "scan did not finish: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a scan and waits for it to finish.
    pub async fn rescan(&self) -> serde_json::Value {
        let before = self.get_json("/api/scan/status").await["lastFinishedAt"].clone();
        let r = self.gm(reqwest::Method::POST, "/api/scan").send().await.unwrap();
        assert_eq!(r.status(), 202);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.get_json("/api/scan/status").await;
            if s["state"] == "idle" && s["lastFinishedAt"] != before {
                return s;
            }
            assert!(Instant::now() < deadline, "scan did not finish: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// All tracks, keyed by file path.
    pub async fn tracks_by_path(&self) -> std::collections::HashMap<String, serde_json::Value> {
        let page = self.get_json("/api/tracks?limit=500").await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["filepath"].as_str().unwrap().to_owned(), t.clone()))
            .collect()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns the exit status (waiting at most 15 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs ffmpeg quietly; panics with its output on failure.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is needed by the tests (scripts/test installs it)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The standard music folder, generated once per test binary:
/// tagged and untagged mp3, flac, ogg, wav, m4a; cover art; broken and ignored files.
pub fn fixture_library() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = temp_dir("fixtures").join("music");
        std::fs::create_dir_all(dir.join("Tavern")).unwrap();
        std::fs::create_dir_all(dir.join("Battle/Boss")).unwrap();
        let tone = |f: u32, secs: u32| format!("sine=frequency={f}:duration={secs}:sample_rate=44100");
        let cover = dir.parent().unwrap().join("cover.png");
        ffmpeg(&["-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1", cover.to_str().unwrap()]);
        let p = |rel: &str| dir.join(rel).to_str().unwrap().to_owned();
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &tone(440, 3),
            "-i",
            cover.to_str().unwrap(),
            "-map",
            "0",
            "-map",
            "1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-c:v",
            "png",
            "-disposition:v",
            "attached_pic",
            "-id3v2_version",
            "3",
            "-metadata",
            "title=Drunken Dwarf",
            "-metadata",
            "artist=The Bards",
            "-metadata",
            "album=Ale",
            "-metadata",
            "track=3",
            "-metadata",
            "disc=1",
            &p("Tavern/dwarf.mp3"),
        ]);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &tone(330, 2),
            "-c:a",
            "flac",
            "-metadata",
            "TITLE=Éowyn's Lament",
            "-metadata",
            "ArTiSt=Rohirrim Choir",
            "-metadata",
            "album=Edoras",
            "-metadata",
            "tracknumber=7",
            &p("Battle/lament.flac"),
        ]);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &tone(550, 2),
            "-c:a",
            "libvorbis",
            "-metadata",
            "title=Dragon Fight",
            "-metadata",
            "artist=Orchestra of Doom",
            &p("Battle/Boss/dragon.ogg"),
        ]);
        ffmpeg(&["-f", "lavfi", "-i", &tone(660, 2), "-c:a", "pcm_s16le", &p("Tavern/untagged jig.wav")]);
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &tone(220, 2),
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-metadata",
            "title=Quiet Harbour",
            "-metadata",
            "artist=Sea Shanty Crew",
            &p("harbour.m4a"),
        ]);
        // Broken or ignored files.
        std::fs::write(dir.join("empty.mp3"), b"").unwrap();
        std::fs::write(dir.join("notes-not-audio.mp3"), b"This is a text file with a misleading name.\n".repeat(20))
            .unwrap();
        let flac = std::fs::read(dir.join("Battle/lament.flac")).unwrap();
        std::fs::write(dir.join("truncated.flac"), &flac[..100]).unwrap();
        let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(dir.join("corrupt.ogg"), noise).unwrap();
        std::fs::write(dir.join("readme.txt"), b"not music").unwrap();
        std::fs::copy(dir.join("Tavern/untagged jig.wav"), dir.join(".hidden.wav")).unwrap();
        // A non-UTF-8 file name.
        let odd = std::ffi::OsStr::from_bytes(b"odd-\xff-name.wav");
        std::fs::copy(dir.join("Tavern/untagged jig.wav"), dir.join(odd)).unwrap();
        // A symlink loop.
        std::os::unix::fs::symlink("..", dir.join("Battle/loop")).unwrap();
        dir
    })
}

use std::os::unix::ffi::OsStrExt;
