//! The segment cache: progressive single-flight encodes, atomic files, eviction, prepare.
//!
//! Most tests drive `SegmentCache` directly on a tokio runtime; the prepare and `segment`
//! tests run the real binary.

// Helpers outside #[test] fns: a failed setup step should panic with its location.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bardcast::cache::{CacheError, SegmentCache, SourceKey};
use common::Server;
use reqwest::Method;
use serde_json::{json, Value};

const MB: u64 = 1 << 20;

fn ladder() -> Vec<segmenter::EncoderParams> {
    segmenter::parse_ladder("256").unwrap()
}

/// A sine tone as `name` in `dir` (the codec follows the extension).
fn tone(dir: &Path, name: &str, freq: u32, secs: u32) -> SourceKey {
    let path = dir.join(name);
    let src = format!("sine=frequency={freq}:duration={secs}:sample_rate=44100");
    common::ffmpeg(&["-f", "lavfi", "-i", &src, "-ac", "2", path.to_str().unwrap()]);
    key(&path)
}

fn key(path: &Path) -> SourceKey {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let fingerprint = bardcast::library::scan::fingerprint(path, size)
        .unwrap_or_else(|_| format!("missing-{}", path.file_name().unwrap().to_string_lossy()));
    SourceKey { fingerprint, path: path.to_path_buf() }
}

/// Every part of rendition 0, in order.
async fn all_parts(cache: &SegmentCache, src: &SourceKey) -> Vec<bytes::Bytes> {
    let mut out = Vec::new();
    while let Some(p) = cache.part(src, 0, out.len() as u64).await.unwrap() {
        out.push(p);
    }
    out
}

fn dirs(root: &Path) -> Vec<String> {
    let mut names: Vec<_> =
        std::fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_part_arrives_before_the_track_is_encoded() {
    let dir = common::temp_dir("cache-progressive");
    let src = tone(&dir, "long.mp3", 440, 60);
    let cache = SegmentCache::open(&dir.join("cache"), 100 * MB, ladder()).unwrap();

    let started = Instant::now();
    let first = cache.part(&src, 0, 0).await.unwrap().expect("part 0");
    let first_ms = started.elapsed().as_millis();
    assert_eq!(cache.known_parts(&src), None, "the whole track was encoded before part 0 came back");
    assert_eq!(&first[4..8], b"moof");
    assert_eq!(cache.status().encodes_running, 1);

    let parts = cache.track_parts(&src).await.unwrap();
    let whole_ms = started.elapsed().as_millis();
    // 60 s is 117.2 parts of 0.512 s; the MP3 encoder may pad a little.
    assert!((118..=120).contains(&parts), "{parts} parts");
    assert_eq!(cache.known_parts(&src), Some(parts));
    assert!(cache.part(&src, 0, parts - 1).await.unwrap().is_some());
    assert_eq!(cache.part(&src, 0, parts).await.unwrap(), None);
    assert_eq!(cache.part(&src, 0, 0).await.unwrap(), Some(first));
    eprintln!("first part after {first_ms} ms, whole 60 s track after {whole_ms} ms");
    let st = cache.status();
    assert_eq!((st.encodes_started, st.encodes_running, st.cached_tracks), (1, 0, 1));
    assert!(st.bytes_used > 1_500_000, "{st:?}"); // about 256 kbit/s for 60 s
                                                  // The first part waited on the encode; the three reads after it found the track done.
    assert_eq!((st.misses, st.hits), (1, 3), "{st:?}");
    assert!((st.encoded_audio_seconds - 60.0).abs() < 0.5, "{st:?}");
    assert!(st.encode_seconds > 0.0 && st.encode_seconds < 60.0, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_encode() {
    let dir = common::temp_dir("cache-single-flight");
    let src = tone(&dir, "a.flac", 330, 8);
    let cache = SegmentCache::open(&dir.join("cache"), 100 * MB, ladder()).unwrap();

    let mut tasks = Vec::new();
    for i in 0..12u64 {
        let (cache, src) = (cache.clone(), src.clone());
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                cache.warm(&src);
            }
            (i % 4, cache.part(&src, 0, i % 4 * 5).await.unwrap().expect("part"))
        }));
    }
    let mut by_index = std::collections::HashMap::new();
    for t in tasks {
        let (k, bytes) = t.await.unwrap();
        assert_eq!(by_index.entry(k).or_insert_with(|| bytes.clone()), &bytes);
    }
    assert_eq!(cache.track_parts(&src).await.unwrap(), 16); // 8 s = 15.6 parts
    assert_eq!(cache.status().encodes_started, 1);
}

#[tokio::test]
async fn parts_are_byte_identical_after_a_restart_and_not_encoded_again() {
    let dir = common::temp_dir("cache-restart");
    let src = tone(&dir, "a.ogg", 550, 3);
    let wav = tone(&dir, "b.wav", 660, 2);
    let cache_dir = dir.join("cache");
    let cache = SegmentCache::open(&cache_dir, 100 * MB, ladder()).unwrap();
    let before = all_parts(&cache, &src).await;
    let before_wav = all_parts(&cache, &wav).await;
    let used = cache.status().bytes_used;
    drop(cache);

    let cache = SegmentCache::open(&cache_dir, 100 * MB, ladder()).unwrap();
    assert_eq!(cache.known_parts(&src), Some(before.len() as u64));
    assert_eq!(all_parts(&cache, &src).await, before);
    assert_eq!(all_parts(&cache, &wav).await, before_wav);
    let st = cache.status();
    assert_eq!((st.encodes_started, st.cached_tracks, st.bytes_used), (0, 2, used));
    assert_eq!(used, before.iter().chain(&before_wav).map(|p| p.len() as u64).sum::<u64>());
}

#[tokio::test]
async fn an_interrupted_or_damaged_track_is_never_served_and_is_encoded_again() {
    let dir = common::temp_dir("cache-torn");
    let a = tone(&dir, "a.flac", 440, 3);
    let b = tone(&dir, "b.flac", 880, 3);
    let cache_dir = dir.join("cache");
    let cache = SegmentCache::open(&cache_dir, 100 * MB, ladder()).unwrap();
    let a_parts = all_parts(&cache, &a).await;
    let b_parts = all_parts(&cache, &b).await;
    let root = cache.root().to_path_buf();
    drop(cache);

    // What a kill at various moments leaves: an encode folder without its manifest, a track
    // whose data file lost its tail, a track whose manifest is garbage.
    let a_dir = root.join(&a.fingerprint);
    let killed = root.join(format!(".tmp-{}-7", a.fingerprint));
    std::fs::create_dir(&killed).unwrap();
    std::fs::write(killed.join("r0.data"), &a_parts[0][..100]).unwrap();
    let data = std::fs::read(a_dir.join("r0.data")).unwrap();
    std::fs::write(a_dir.join("r0.data"), &data[..data.len() - 1]).unwrap();
    std::fs::write(root.join(&b.fingerprint).join("manifest.json"), b"{\"version\":1,").unwrap();

    let cache = SegmentCache::open(&cache_dir, 100 * MB, ladder()).unwrap();
    assert!(dirs(&root).is_empty(), "left behind: {:?}", dirs(&root));
    assert_eq!((cache.known_parts(&a), cache.known_parts(&b)), (None, None));
    assert_eq!(all_parts(&cache, &a).await, a_parts);
    assert_eq!(all_parts(&cache, &b).await, b_parts);
    assert_eq!(cache.status().encodes_started, 2);
    assert_eq!(dirs(&root), {
        let mut v = vec![a.fingerprint.clone(), b.fingerprint.clone()];
        v.sort();
        v
    });

    // A data file damaged while the server runs is noticed at read time and re-encoded.
    std::fs::write(a_dir.join("r0.data"), b"short").unwrap();
    assert_eq!(cache.part(&a, 0, 3).await.unwrap().as_ref(), Some(&a_parts[3]));
    assert_eq!(cache.status().encodes_started, 3);
}

#[tokio::test]
async fn eviction_takes_the_least_recently_used_and_never_a_pinned_track() {
    let dir = common::temp_dir("cache-evict");
    let tracks: Vec<SourceKey> =
        [220, 330, 440, 550].iter().enumerate().map(|(i, f)| tone(&dir, &format!("{i}.wav"), *f, 2)).collect();
    let [a, b, c, d] = &tracks[..] else { unreachable!() };
    // Learn a track's size with an uncapped cache.
    let probe = SegmentCache::open(&dir.join("probe"), 100 * MB, ladder()).unwrap();
    probe.track_parts(a).await.unwrap();
    let size = probe.status().bytes_used;
    drop(probe);

    let cache = SegmentCache::open(&dir.join("cache"), size * 5 / 2, ladder()).unwrap();
    cache.set_pinned(vec![a.clone()]);
    for t in [a, b, c] {
        cache.track_parts(t).await.unwrap();
    }
    // Over the cap after c: a is the oldest but pinned, so b goes.
    let known = |cache: &SegmentCache| tracks.iter().map(|t| cache.known_parts(t).is_some()).collect::<Vec<_>>();
    assert_eq!(known(&cache), [true, false, true, false]);
    assert!(!cache.root().join(&b.fingerprint).exists());

    cache.set_pinned(Vec::new());
    cache.part(a, 0, 1).await.unwrap(); // a is now used more recently than c
    cache.track_parts(d).await.unwrap();
    assert_eq!(known(&cache), [true, false, false, true]);
    let st = cache.status();
    assert!(st.bytes_used <= st.max_bytes, "{st:?}");
    assert_eq!(dirs(cache.root()).len(), 2);
    assert_eq!(st.evictions, 2, "b, then c");
    assert_eq!((st.hits, st.misses), (1, 0), "the one part read found a complete track");

    // The order survives a restart (completion order, then access order).
    drop(cache);
    let cache = SegmentCache::open(&dir.join("cache"), size * 5 / 2, ladder()).unwrap();
    assert_eq!(known(&cache), [true, false, false, true]);
    // A smaller cap at open evicts down to it right away.
    drop(cache);
    let cache = SegmentCache::open(&dir.join("cache"), size * 3 / 2, ladder()).unwrap();
    assert_eq!(cache.status().cached_tracks, 1);
}

#[tokio::test]
async fn an_undecodable_file_is_a_clear_error() {
    let dir = common::temp_dir("cache-bad");
    let text = dir.join("notes.mp3");
    std::fs::write(&text, b"This is a text file with a misleading name.\n".repeat(50)).unwrap();
    let cache = SegmentCache::open(&dir.join("cache"), 100 * MB, ladder()).unwrap();

    let bad = key(&text);
    let err = cache.part(&bad, 0, 0).await.unwrap_err();
    let CacheError::Source { path, reason } = &err else { panic!("{err:?}") };
    assert!(path.ends_with("notes.mp3") && !reason.is_empty(), "{err}");
    assert!(err.to_string().starts_with("cannot play "), "{err}");
    // Remembered for a while: asking again does not decode again.
    assert_eq!(cache.track_parts(&bad).await.unwrap_err(), err);
    assert_eq!(cache.status().encodes_started, 1);

    let gone = SourceKey { fingerprint: "feedface".into(), path: dir.join("gone.flac") };
    let err = cache.part(&gone, 0, 0).await.unwrap_err();
    assert!(err.to_string().contains("gone.flac"), "{err}");
    assert_eq!(cache.part(&gone, 5, 0).await.unwrap_err(), CacheError::NoSuchRendition(5));

    let st = cache.status();
    assert_eq!((st.encodes_running, st.cached_tracks, st.bytes_used), (0, 0, 0));
    assert!(dirs(cache.root()).is_empty(), "{:?}", dirs(cache.root()));
}

#[tokio::test]
async fn init_and_silence_come_from_the_ladder() {
    let dir = common::temp_dir("cache-init");
    let cache = SegmentCache::open(&dir, MB, segmenter::parse_ladder("256,96").unwrap()).unwrap();
    assert_eq!(cache.ladder().len(), 2);
    for r in 0..2 {
        let ladder = &cache.ladder()[r];
        assert_eq!(cache.init_segment(r).unwrap(), segmenter::init_segment(ladder).unwrap());
        assert_eq!(cache.silence_part(r).unwrap(), segmenter::silence_part(ladder).unwrap());
    }
    assert!(cache.init_segment(2).is_none() && cache.silence_part(2).is_none());
}

/// Polls the cache status until nothing is pending.
async fn wait_prepared(s: &Server) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = s.get_json("/api/cache/status").await;
        if st["pending"] == 0 && st["encodesRunning"] == 0 {
            return st;
        }
        assert!(Instant::now() < deadline, "prepare did not finish: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn prepare_over_the_http_api_reports_done_pending_and_failures() {
    let s = Server::with_fixtures("cache-prepare").await;
    let tracks = s.tracks_by_path().await;
    let id = |p: &str| tracks[p]["id"].clone();

    // Tavern (dwarf, jig) with a sub-folder Battle (lament).
    let (code, tavern) = s.gm_json(Method::POST, "/api/folders", json!({ "name": "Tavern" })).await;
    assert_eq!(code, 201, "{tavern}");
    let (code, battle) =
        s.gm_json(Method::POST, "/api/folders", json!({ "name": "Battle", "parentId": tavern["id"] })).await;
    assert_eq!(code, 201, "{battle}");
    let path = format!("/api/folders/{}/tracks", tavern["id"]);
    let ids = json!({ "trackIds": [id("Tavern/dwarf.mp3"), id("Tavern/untagged jig.wav")] });
    assert_eq!(s.gm_json(Method::POST, &path, ids).await.0, 200);
    let path = format!("/api/folders/{}/tracks", battle["id"]);
    assert_eq!(s.gm_json(Method::POST, &path, json!({ "trackIds": [id("Battle/lament.flac")] })).await.0, 200);
    // A file that disappears after the scan cannot be encoded.
    std::fs::remove_file(s.music.join("Tavern/dwarf.mp3")).unwrap();

    let r = s.client.post(s.url("/api/cache/prepare")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s.gm(Method::POST, "/api/cache/prepare").body("{\"folder\":1}").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let (code, _) = s.gm_json(Method::POST, "/api/cache/prepare", json!({ "folderId": 9999 })).await;
    assert_eq!(code, 404);

    let (code, st) = s.gm_json(Method::POST, "/api/cache/prepare", json!({ "folderId": tavern["id"] })).await;
    assert_eq!(code, 202, "{st}");
    let counted: u64 = ["done", "pending", "failed"].iter().map(|k| st[*k].as_u64().unwrap()).sum();
    assert_eq!(counted, 3, "{st}");
    let st = wait_prepared(&s).await;
    assert_eq!(
        (st["done"].as_u64(), st["failed"].as_u64(), st["state"].as_str()),
        (Some(2), Some(1), Some("idle")),
        "{st}"
    );
    assert_eq!(st["cachedTracks"], 2, "{st}");
    assert!(st["bytesUsed"].as_u64().unwrap() > 100_000, "{st}");
    assert_eq!(st["maxBytes"].as_u64(), Some(10 * 1024 * MB));
    assert!(st["prepareConcurrency"].as_u64().unwrap() >= 1);
    let failure = &st["failures"][0];
    assert!(failure["path"].as_str().unwrap().ends_with("dwarf.mp3"), "{st}");
    assert!(failure["error"].as_str().unwrap().contains("cannot play"), "{st}");

    // The whole library (an empty body). Cached count as done at once: the jig, the lament and
    // "odd-\xff-name.wav", a byte-identical copy of the jig (same fingerprint, same cache entry).
    let r = s.gm(Method::POST, "/api/cache/prepare").send().await.unwrap();
    assert_eq!(r.status(), 202);
    let st: Value = r.json().await.unwrap();
    assert!(st["done"].as_u64().unwrap() >= 3, "{st}");
    let st = wait_prepared(&s).await;
    assert_eq!((st["done"].as_u64(), st["failed"].as_u64()), (Some(5), Some(1)), "{st}");
    assert_eq!(st["encodesStarted"], 5, "{st}");
    assert_eq!(st["cachedTracks"], 4, "{st}");
}

fn bardcast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bardcast")).args(args).env_clear().output().unwrap()
}

#[test]
fn segment_command_writes_a_vod_rendition() {
    let dir = common::temp_dir("cache-cli");
    let src = tone(&dir, "in.flac", 440, 5).path;
    let out: PathBuf = dir.join("out");
    let o = bardcast(&["segment", src.to_str().unwrap(), "--out", out.to_str().unwrap(), "--bitrate", "128"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("3 segments, 10 parts"), "{o:?}");
    let playlist = std::fs::read_to_string(out.join("index.m3u8")).unwrap();
    assert!(playlist.contains("#EXT-X-ENDLIST") && playlist.contains("segment-00002.m4s"), "{playlist}");
    assert!(out.join("init.mp4").exists());

    let text = dir.join("notes.mp3");
    std::fs::write(&text, b"not audio at all\n".repeat(100)).unwrap();
    let o = bardcast(&["segment", text.to_str().unwrap(), "--out", dir.join("bad").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot segment") && err.contains("notes.mp3"), "{err}");

    let o = bardcast(&["segment", src.to_str().unwrap(), "--out", "x", "--bitrate", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside 32..=512"), "{o:?}");
    let o = bardcast(&["segment", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "--out is required");
}
