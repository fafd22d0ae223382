//! What the stage costs: `cargo bench --bench stage`.
//!
//! Renders live parts of the default ladder (256k and 96k) from two cached 60 s tracks:
//! parts with one voice, parts inside a crossfade (two voices), and a busy room (the
//! crossfade, eight ambience loops and two effects: twelve voices). Prints the median time
//! per part and what that is as a share of one core (a part lasts 512 ms), which bounds the
//! rooms a pod can hold. Serving a rendered part to listeners costs what it did before:
//! each part is rendered once and then served from memory.

#![allow(clippy::unwrap_used)] // clippy.toml allows it in #[test] fns; a test's helpers fail the same way

use std::process::Command;
use std::time::Instant;

use bardcast::cache::{SegmentCache, SourceKey};
use bardcast::ids::TrackId;
use bardcast::room::timeline::{Entry, Source, Timeline, TrackRef};
use bardcast::stage::render::Renderer;

/// Parts rendered per kind.
const PARTS: u64 = 40;
/// A grid part in 2026.
const BASE: u64 = 3_500_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let music = dir.path().join("music");
    std::fs::create_dir_all(&music)?;
    let ladder = segmenter::parse_ladder("256,96")?;
    let cache = SegmentCache::open(&dir.path().join("cache"), 10 << 30, ladder)?;
    let rt = tokio::runtime::Runtime::new()?;
    let mut tracks = Vec::new();
    for (id, freq) in [(1, 440), (2, 660)] {
        let name = format!("{freq}.flac");
        let path = music.join(&name);
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
            .args(["-i", &format!("sine=frequency={freq}:duration=60:sample_rate=44100"), "-ac", "2"])
            .arg(&path)
            .output()?;
        if !out.status.success() {
            return Err(format!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let size = std::fs::metadata(&path)?.len();
        let key = SourceKey { fingerprint: bardcast::library::scan::fingerprint(&path, size)?, path };
        let parts = rt.block_on(cache.track_parts(&key))?;
        tracks.push(TrackRef {
            id: TrackId(id),
            fingerprint: key.fingerprint,
            relpath: name.into_bytes(),
            parts: Some(parts),
            samples: None,
            duration_ms: 60_000,
            loudness_lufs: None,
            gain_db: 0.0,
        });
    }
    let renderer = Renderer::new(cache, music)?;
    let one = Timeline {
        entries: vec![Entry {
            start_part: BASE,
            source: Source::Track { track: tracks[0].clone(), from_part: 0 },
            fade_ms: 0,
            early_samples: 0,
            settle: None,
        }],
        ..Timeline::default()
    };
    let mut crossfade = one.clone();
    crossfade.entries.push(Entry {
        start_part: BASE + 10,
        source: Source::Track { track: tracks[1].clone(), from_part: 0 },
        fade_ms: 12_000,
        early_samples: 0,
        settle: None,
    });
    // A busy room: the crossfade, eight ambience loops and two effects on top.
    let mut busy = crossfade.clone();
    for i in 0..8 {
        busy.add_layer(BASE + 1, tracks[i % 2].clone(), 60 * 48_000, 0.3, 2000);
    }
    busy.add_oneshot(BASE + 11, tracks[0].clone(), 0.5);
    busy.add_oneshot(BASE + 12, tracks[1].clone(), 0.5);
    for (name, timeline, first) in [
        ("one voice", &one, BASE + 10),
        ("crossfade, two voices", &crossfade, BASE + 11),
        ("busy: crossfade, 8 layers, 2 effects", &busy, BASE + 11),
    ] {
        let mut times = Vec::new();
        for part in first..first + PARTS {
            let started = Instant::now();
            let rendered = rt.block_on(renderer.render(timeline, part))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(rendered.map(|r| r.len()), Some(2));
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "stage, {name}: median {median:.2} ms per part for 2 renditions (max {:.2}), {:.1} % of one core",
            times[times.len() - 1],
            median / 512.0 * 100.0
        );
    }
    Ok(())
}
