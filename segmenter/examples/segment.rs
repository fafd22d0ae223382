//! Segments one file and reports speed and peak memory:
//! `cargo run --release -p segmenter --example segment -- INPUT [KBPS,...] [OUT_DIR]`.
//! With OUT_DIR it writes a VOD rendition (first bitrate) there instead of discarding parts.

use std::path::Path;
use std::time::Instant;

use segmenter::{parse_ladder, segment_track, vod, Part, PartSink, Result};

/// Counts parts and bytes, and the time until the first part existed.
struct Discard {
    start: Instant,
    first_part_ms: Option<f64>,
    bytes: u64,
}

impl PartSink for Discard {
    fn part(&mut self, _rendition: usize, part: Part) -> Result<()> {
        self.first_part_ms.get_or_insert_with(|| self.start.elapsed().as_secs_f64() * 1000.0);
        self.bytes += part.bytes.len() as u64;
        Ok(())
    }
}

/// Peak resident set size of this process in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let input = args.first().ok_or("usage: segment INPUT [KBPS,...] [OUT_DIR]")?;
    let ladder = parse_ladder(args.get(1).map_or("256", String::as_str))?;
    let start = Instant::now();
    let duration = if let Some(out) = args.get(2) {
        let s = vod::write_vod(Path::new(input), Path::new(out), &ladder[0])?;
        println!("wrote {} segments, {} parts to {out}", s.segments, s.parts);
        s.duration
    } else {
        let mut sink = Discard { start, first_part_ms: None, bytes: 0 };
        let s = segment_track(Path::new(input), &ladder, &mut sink)?;
        println!(
            "{} parts per rendition, {} bytes, first part after {:.1} ms, warnings: {:?}",
            s.parts,
            sink.bytes,
            sink.first_part_ms.unwrap_or(0.0),
            s.warnings
        );
        s.duration
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "audio {:.1} s in {:.3} s = {:.1}x realtime; peak RSS {} KiB",
        duration.as_secs_f64(),
        secs,
        duration.as_secs_f64() / secs,
        peak_rss_kib().unwrap_or(0)
    );
    Ok(())
}
