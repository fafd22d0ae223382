//! The library follows the music folder without a press of "Scan": the real server on
//! 127.0.0.1:0 watching a temporary music folder, or rescanning it on a timer.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Options, Server};
use serde_json::Value;

/// The product goal: a change shows up within this long.
const GOAL: Duration = Duration::from_secs(5);
/// When a test gives up: well past the goal, so only a hang fails on a loaded machine.
const HANG: Duration = Duration::from_secs(15);

/// A 1 s, 8 kHz, mono 16-bit WAV of a sine at `freq` Hz (each frequency is different content).
fn wav(freq: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate)
        .map(|i| ((i as f32 * freq as f32 * std::f32::consts::TAU / rate as f32).sin() * 8000.0) as i16)
        .collect();
    let data_len = samples.len() as u32 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A server on a music folder holding one track, with `env` set and its log in a file; waits
/// for the startup scan.
async fn start(name: &str, env: &[(&str, &str)]) -> (Server, PathBuf) {
    let dir = common::temp_dir(name);
    let music = dir.join("music");
    std::fs::create_dir_all(&music).expect("create the music folder");
    std::fs::write(music.join("seed.wav"), wav(220)).expect("write a track");
    let log = dir.join("server.log");
    let mut extra_env: Vec<(String, String)> = vec![("LOG_LEVEL".into(), "info".into())];
    extra_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let s = Server::start_in(&dir, &music, Options { extra_env, stderr: Some(log.clone()), ..Default::default() });
    s.wait_scan_idle().await;
    assert!(s.tracks_by_path().await.contains_key("seed.wav"));
    (s, log)
}

/// Polls the track list until `done` holds and returns how long that took (printed);
/// fails after [`HANG`].
async fn until(s: &Server, what: &str, done: impl Fn(&HashMap<String, Value>) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let tracks = s.tracks_by_path().await;
        if done(&tracks) {
            let took = start.elapsed();
            let verdict = if took <= GOAL { "within" } else { "OVER" };
            println!("{what}: seen after {} ms ({verdict} the {} s goal)", took.as_millis(), GOAL.as_secs());
            return took;
        }
        assert!(start.elapsed() < HANG, "{what}: not seen after {HANG:?}: {:?}", tracks.keys());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lines of the server log that contain `text`.
fn log_lines(log: &Path, text: &str) -> usize {
    std::fs::read_to_string(log).expect("read the server log").lines().filter(|l| l.contains(text)).count()
}

fn present(tracks: &HashMap<String, Value>, path: &str) -> bool {
    tracks.get(path).is_some_and(|t| t["missing"] == false)
}

#[tokio::test]
async fn added_renamed_and_removed_files_show_up_without_a_scan() {
    let (mut s, log) = start("watch-each", &[("WATCH", "true"), ("RESCAN_INTERVAL", "0")]).await;
    let album = s.music.join("New Album");

    // A new folder with a file in it: the recursive watch covers folders made after the start.
    std::fs::create_dir(&album).unwrap();
    std::fs::write(album.join("new.wav"), wav(440)).unwrap();
    until(&s, "added", |t| present(t, "New Album/new.wav")).await;
    let id = s.tracks_by_path().await["New Album/new.wav"]["id"].clone();

    // A rename keeps the track (its id, so its folders and queue places).
    std::fs::rename(album.join("new.wav"), album.join("renamed.wav")).unwrap();
    until(&s, "renamed", |t| present(t, "New Album/renamed.wav") && !t.contains_key("New Album/new.wav")).await;
    assert_eq!(s.tracks_by_path().await["New Album/renamed.wav"]["id"], id);

    // A removed file's track is kept, marked missing.
    std::fs::remove_file(album.join("renamed.wav")).unwrap();
    until(&s, "removed", |t| t.get("New Album/renamed.wav").is_some_and(|t| t["missing"] == true)).await;
    assert!(present(&s.tracks_by_path().await, "seed.wav"));

    assert!(log_lines(&log, "music folder changed; scanning") >= 3, "{}", std::fs::read_to_string(&log).unwrap());
    // The watcher stops with the server.
    assert!(s.terminate().success());
}

#[tokio::test]
async fn copying_in_an_album_is_one_scan() {
    let (s, log) = start("watch-album", &[("WATCH", "true"), ("RESCAN_INTERVAL", "0")]).await;
    assert_eq!(log_lines(&log, "scan finished"), 1, "the startup scan");
    let staging = s.dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let names: Vec<String> = (1..=20).map(|i| format!("{i:02} Track.wav")).collect();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(staging.join(name), wav(300 + 20 * i as u32)).unwrap();
    }

    // Like `cp -r`: the folder, then each file, written in pieces (many events per file).
    let copying = Instant::now();
    let album = s.music.join("Album");
    std::fs::create_dir(&album).unwrap();
    for name in &names {
        std::fs::copy(staging.join(name), album.join(name)).unwrap();
    }
    println!("copied 20 files in {} ms", copying.elapsed().as_millis());
    until(&s, "album", |t| names.iter().all(|n| present(t, &format!("Album/{n}")))).await;

    // Give a straggling scan time to start (past the quiet second) and finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.wait_scan_idle().await;
    let scans = log_lines(&log, "scan finished") - 1;
    let triggered = log_lines(&log, "music folder changed; scanning");
    println!("copying 20 files led to {scans} scan(s) ({triggered} started by the watcher)");
    assert_eq!(scans, triggered, "every scan after the startup one was the watcher's");
    // One is expected; two if the copy straddled a quiet second on a loaded machine. Twenty would
    // mean no debouncing.
    assert!((1..=2).contains(&scans), "{scans} scans");
}

#[tokio::test]
async fn without_watching_a_periodic_rescan_finds_changes() {
    let (s, log) = start("watch-periodic", &[("WATCH", "false"), ("RESCAN_INTERVAL", "1")]).await;
    std::fs::write(s.music.join("late.wav"), wav(880)).unwrap();
    until(&s, "added (periodic rescan every 1 s)", |t| present(t, "late.wav")).await;
    assert!(log_lines(&log, "periodic rescan of the music folder") >= 1);
    assert_eq!(log_lines(&log, "music folder changed"), 0, "nothing watches");
}
