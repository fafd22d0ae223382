//! Scan throughput: a cold scan of 10,000 small tagged files, then a rescan with nothing changed.
//!
//! `cargo bench --bench scan` (release). Prints files/s; targets: cold ≥ 2,000 files/s on a
//! 2-core machine, unchanged rescan < 1 s.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bardcast::clock::SystemClock;
use bardcast::library::Library;
use lofty::config::WriteOptions;
use lofty::prelude::*;
use lofty::tag::{Tag, TagType};

const FILES: usize = 10_000;

fn main() {
    let root = tempfile::tempdir().expect("temp dir");
    let music = root.path().join("music");
    build_library(root.path(), &music);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let lib = Library::open(&root.path().join("db.sqlite"), music.clone(), Arc::new(SystemClock)).expect("open");
        let (cold, status) = scan(&lib).await;
        assert_eq!(status.added as usize, FILES, "{status:?}");
        println!(
            "cold scan: {FILES} files in {:.2} s = {:.0} files/s (target ≥ 2000)",
            cold.as_secs_f64(),
            FILES as f64 / cold.as_secs_f64()
        );
        let (warm, status) = scan(&lib).await;
        assert_eq!(status.to_process, 0, "{status:?}");
        println!(
            "rescan, nothing changed: {FILES} files in {:.3} s = {:.0} files/s (target < 1 s)",
            warm.as_secs_f64(),
            FILES as f64 / warm.as_secs_f64()
        );
    });
}

async fn scan(lib: &Library) -> (Duration, bardcast::library::ScanStatus) {
    let mut status = lib.scan_status();
    let started = Instant::now();
    lib.start_scan().expect("start");
    let done = status.wait_for(|s| s.state == "idle").await.expect("scan").clone();
    (started.elapsed(), done)
}

/// 10,000 distinct tagged MP3 files in 100 folders, from one short ffmpeg-made file.
fn build_library(root: &Path, music: &Path) {
    let base = root.join("base.mp3");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
        ])
        .arg(&base)
        .status()
        .expect("ffmpeg is needed to build the bench library");
    assert!(status.success());
    let started = Instant::now();
    for i in 0..FILES {
        let dir = music.join(format!("Artist {:02}/Album {:02}", i % 100, (i / 100) % 10));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(format!("{i:05} track.mp3"));
        std::fs::copy(&base, &path).expect("copy");
        let mut tag = Tag::new(TagType::Id3v2);
        tag.set_title(format!("Track {i}"));
        tag.set_artist(format!("Artist {:02}", i % 100));
        tag.set_album(format!("Album {:02}", (i / 100) % 10));
        tag.set_track((i % 100) as u32 + 1);
        tag.save_to_path(&path, WriteOptions::default()).expect("tag");
    }
    println!("built {FILES} tagged files in {:.1} s", started.elapsed().as_secs_f64());
}
