//! Segmenter throughput, one group per stage, with inputs built in memory; then (under
//! `cargo bench` only) a side-by-side run against ffmpeg's own AAC + fMP4 HLS muxer on a
//! 4-minute track, single thread each.
//!
//! `CARGO_TARGET_DIR=/work/target-seg cargo bench --bench segmenter`
#![allow(clippy::unwrap_used, reason = "a benchmark that fails should stop loudly")]

use std::hint::black_box;
use std::io::Cursor;
use std::process::Command;
use std::time::Instant;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use segmenter::decode::Decoder;
use segmenter::encode::AacEncoder;
use segmenter::resample::Resampler;
use segmenter::{fmp4, segment_bytes, segment_track, EncoderParams, Part, PartSink, Result};

/// Seconds of audio per benchmark iteration.
const SECS: u32 = 10;

/// Stereo test signal at `rate`: two tones and a little noise, as 16-bit interleaved.
fn signal(rate: u32, secs: u32) -> Vec<i16> {
    let mut x = 0x9e37_79b9u32;
    (0..rate * secs)
        .flat_map(|i| {
            let t = i as f32 / rate as f32;
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x as f32 / u32::MAX as f32 - 0.5) * 0.02;
            let l = 0.3 * (t * 440.0 * std::f32::consts::TAU).sin() + noise;
            let r = 0.3 * (t * 554.4 * std::f32::consts::TAU).sin() - noise;
            [(l * 32_767.0) as i16, (r * 32_767.0) as i16]
        })
        .collect()
}

/// Discards parts.
struct Discard;

impl PartSink for Discard {
    fn part(&mut self, _: usize, part: Part) -> Result<()> {
        black_box(part);
        Ok(())
    }
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.sample_size(10);
    for rate in [48_000u32, 44_100] {
        let wav = segmenter::wav_bytes(rate, 2, &signal(rate, SECS));
        g.throughput(Throughput::Elements(u64::from(rate * SECS)));
        g.bench_with_input(BenchmarkId::new("wav_to_48k", rate), &wav, |b, wav| {
            b.iter(|| {
                let mut d = Decoder::from_source(Box::new(Cursor::new(wav.clone())), Some("wav")).unwrap();
                let mut r = Resampler::new(d.sample_rate()).unwrap();
                let (mut left, mut right) = (Vec::new(), Vec::new());
                let mut out = 0usize;
                let mut emit = |l: &[f32], _: &[f32]| {
                    out += l.len();
                    Ok(())
                };
                while d.next_block(&mut left, &mut right).unwrap() {
                    r.push(&left, &right, &mut emit).unwrap();
                    left.clear();
                    right.clear();
                }
                r.finish(&mut emit).unwrap();
                black_box(out)
            })
        });
    }
    g.finish();
}

fn encode_aac(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode_aac");
    g.sample_size(10);
    let pcm = signal(48_000, SECS);
    g.throughput(Throughput::Elements(u64::from(48_000 * SECS)));
    for kbps in [256u32, 96] {
        g.bench_with_input(BenchmarkId::new("cbr", kbps), &pcm, |b, pcm| {
            b.iter(|| {
                let mut enc = AacEncoder::new(&EncoderParams { bitrate: kbps * 1000 }).unwrap();
                let mut bytes = 0usize;
                let mut count = |f: &[u8]| {
                    bytes += f.len();
                    Ok(())
                };
                enc.encode(pcm, &mut count).unwrap();
                enc.finish(&mut count).unwrap();
                black_box(bytes)
            })
        });
    }
    g.finish();
}

fn mux_fmp4(c: &mut Criterion) {
    let mut g = c.benchmark_group("mux_fmp4");
    let params = EncoderParams::default();
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut enc = AacEncoder::new(&params).unwrap();
    let mut keep = |f: &[u8]| {
        frames.push(f.to_vec());
        Ok(())
    };
    enc.encode(&signal(48_000, 1), &mut keep).unwrap();
    enc.finish(&mut keep).unwrap();
    frames.truncate(24);
    let silence = segmenter::silence_part(&params).unwrap();
    let part = fmp4::write_part(1, 0, &frames).unwrap();
    g.throughput(Throughput::Elements(u64::from(segmenter::PART_SAMPLES)));
    g.bench_function("write_part", |b| b.iter(|| fmp4::write_part(black_box(5), 5 * 24_576, &frames).unwrap()));
    g.bench_function("restamp", |b| {
        b.iter(|| segmenter::restamp(black_box(&part), 7, 3_507_000_000 * 24_576, &silence).unwrap())
    });
    g.finish();
}

fn segment(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment");
    g.sample_size(10);
    let wav = segmenter::wav_bytes(44_100, 2, &signal(44_100, SECS));
    g.throughput(Throughput::Elements(u64::from(48_000 * SECS)));
    for ladder in ["256", "256,96"] {
        let params = segmenter::parse_ladder(ladder).unwrap();
        g.bench_with_input(BenchmarkId::new("wav44k1", ladder), &wav, |b, wav| {
            b.iter(|| segment_bytes(wav.clone(), &params, &mut Discard).unwrap())
        });
    }
    g.finish();
}

/// Segments a 4-minute 44.1 kHz FLAC at 256 kbit/s with us and with ffmpeg (AAC + fMP4 HLS),
/// one thread each, and prints both speeds and their ratio.
fn compare_with_ffmpeg() {
    let dir = std::env::temp_dir().join(format!("bardcast-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let track = dir.join("track.flac");
    let expr = "0.25*sin(2*PI*440*t)+0.15*sin(2*PI*1234*t)*sin(2*PI*0.5*t)+0.03*(random(0)-0.5)|\
                0.25*sin(2*PI*554*t)+0.15*sin(2*PI*987*t)*cos(2*PI*0.3*t)+0.03*(random(1)-0.5)";
    let src = format!("aevalsrc={expr}:s=44100:d=240");
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &src, "-c:a", "flac"])
        .arg(&track)
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        eprintln!("ffmpeg not available: skipping the side-by-side run (apt-get install -y ffmpeg)");
        return;
    }
    let audio_secs = 240.0;

    let start = Instant::now();
    let summary = segment_track(&track, &[EncoderParams::default()], &mut Discard).expect("segment");
    let ours = start.elapsed().as_secs_f64();
    assert_eq!(summary.duration.0, 240 * 48_000);

    let out = dir.join("ffmpeg");
    std::fs::create_dir_all(&out).expect("out dir");
    let start = Instant::now();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-threads", "1", "-i"])
        .arg(&track)
        .args(["-ar", "48000", "-c:a", "aac", "-b:a", "256k", "-f", "hls", "-hls_segment_type", "fmp4"])
        .args(["-hls_time", "2", "-hls_playlist_type", "vod", "-filter_threads", "1"])
        .arg(out.join("index.m3u8"))
        .status()
        .expect("ffmpeg");
    let theirs = start.elapsed().as_secs_f64();
    assert!(status.success());

    println!("side by side, 4 min 44.1 kHz stereo FLAC -> AAC-LC 256k fMP4, one thread:");
    println!("  segmenter: {ours:.2} s = {:.0}x realtime", audio_secs / ours);
    println!("  ffmpeg:    {theirs:.2} s = {:.0}x realtime", audio_secs / theirs);
    println!("  ratio:     {:.2}x ffmpeg's speed (target >= 3)", theirs / ours);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, decode, encode_aac, mux_fmp4, segment);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs this binary without `--bench`: keep that quick.
    if std::env::args().any(|a| a == "--bench") {
        compare_with_ffmpeg();
    }
}
