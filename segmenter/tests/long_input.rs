//! Memory stays bounded however long the track: peak RSS after 8 minutes of audio is no
//! higher than after 1 minute (within a few MiB). Its own test binary, so no other test's
//! allocations share the process. (3 h would take too long for CI; the pipeline holds at
//! most one part per rendition and one decoded packet, whatever the length.)
#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test with its location")]

use std::io::{BufWriter, Write};
use std::path::Path;

use segmenter::{segment_track, EncoderParams, Part, PartSink};

/// Drops parts after counting them, as a cache writing to disk would.
struct Count(u64);

impl PartSink for Count {
    fn part(&mut self, _: usize, _: Part) -> segmenter::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

/// Writes `secs` of a 48 kHz mono 8-bit WAV with a slow tone, streaming to disk.
fn write_long_wav(path: &Path, secs: u32) {
    let rate = 48_000u32;
    let n = rate * secs;
    let mut w = BufWriter::new(std::fs::File::create(path).unwrap());
    let header = segmenter::wav_bytes(rate, 1, &[]);
    // Patch the 16-bit header to 8-bit and the sizes to n bytes.
    let mut h = header.clone();
    h[4..8].copy_from_slice(&(36 + n).to_le_bytes());
    h[28..32].copy_from_slice(&rate.to_le_bytes());
    h[32..34].copy_from_slice(&1u16.to_le_bytes());
    h[34..36].copy_from_slice(&8u16.to_le_bytes());
    h[40..44].copy_from_slice(&n.to_le_bytes());
    w.write_all(&h).unwrap();
    let period: Vec<u8> =
        (0..480).map(|i| (128.0 + 60.0 * (i as f32 * std::f32::consts::TAU / 480.0).sin()) as u8).collect();
    for _ in 0..n / 480 {
        w.write_all(&period).unwrap();
    }
    w.flush().unwrap();
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn memory_does_not_grow_with_track_length() {
    let dir = tempfile::tempdir().unwrap();
    let ladder = [EncoderParams { bitrate: 64_000 }];
    let short = dir.path().join("short.wav");
    write_long_wav(&short, 60);
    let s = segment_track(&short, &ladder, &mut Count(0)).unwrap();
    assert_eq!(s.duration.0, 60 * 48_000);
    let after_short = peak_rss_kib();

    let long = dir.path().join("long.wav");
    write_long_wav(&long, 8 * 60);
    let mut count = Count(0);
    let s = segment_track(&long, &ladder, &mut count).unwrap();
    assert_eq!(s.duration.0, 8 * 60 * 48_000);
    assert_eq!(count.0, s.parts);
    let after_long = peak_rss_kib();
    eprintln!("peak RSS after 1 min: {after_short} KiB, after 8 min: {after_long} KiB");
    assert!(after_long < after_short + 4 * 1024, "peak RSS grew from {after_short} to {after_long} KiB");
}
