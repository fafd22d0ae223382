//! Every input format round-trips through the segmenter: the output parses strictly, decodes
//! with two independent decoders (symphonia, ffmpeg) as AAC-LC 48 kHz stereo, keeps the
//! source's duration, pitch and level, and has no click at any part boundary.
#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test with its location")]

mod common;

use common::*;
use segmenter::{
    init_segment, restamp, segment_track, silence_part, vod, EncoderParams, Part, FRAME_SAMPLES, PART_SAMPLES,
};

struct Case {
    name: &'static str,
    rate: u32,
    opts: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case { name: "sine.mp3", rate: 44_100, opts: &["-c:a", "libmp3lame", "-b:a", "192k"] },
    Case { name: "sine.flac", rate: 44_100, opts: &["-c:a", "flac"] },
    Case { name: "sine.ogg", rate: 44_100, opts: &["-c:a", "libvorbis", "-q:a", "6"] },
    Case { name: "sine.wav", rate: 48_000, opts: &["-c:a", "pcm_s16le"] },
    Case { name: "sine.aiff", rate: 22_050, opts: &["-c:a", "pcm_s16be"] },
    Case { name: "sine-aac.m4a", rate: 48_000, opts: &["-c:a", "aac", "-b:a", "192k"] },
    Case { name: "sine-alac.m4a", rate: 44_100, opts: &["-c:a", "alac"] },
];

/// Parts are numbered, stamped and sized on the track's own grid.
fn check_parts(parts: &[Part], duration: u64) {
    let total_frames: u64 = parts.iter().map(|p| u64::from(p.frames)).sum();
    assert_eq!(total_frames, duration.div_ceil(u64::from(FRAME_SAMPLES)), "every sample is in a frame");
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p.index, i as u64);
        let (seq, tfdt, frames) = parse_part(&p.bytes);
        assert_eq!(seq, i as u32 + 1);
        assert_eq!(tfdt, i as u64 * u64::from(PART_SAMPLES), "tfdt continuous");
        assert_eq!(frames.len() as u32, p.frames);
        if i + 1 < parts.len() {
            assert_eq!(p.frames, 24, "only the last part may be short");
        }
    }
}

/// Pitch, level and boundary smoothness of a decoded 1 kHz sine; `reference_db` is the
/// source's own level.
fn check_sine(name: &str, decoded: &[f32], reference_db: f64) {
    let mid = &decoded[4096..decoded.len() - 4096];
    let f = frequency(mid);
    assert!((f - 1000.0).abs() < 2.0, "{name}: frequency {f}");
    let db = rms_db(mid);
    assert!((db - reference_db).abs() < 1.0, "{name}: level {db:.2} dB vs source {reference_db:.2} dB");
    // The sine's own largest step at 48 kHz, with a margin for coding noise.
    let peak = mid.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let sine_step = peak * (std::f32::consts::TAU * 1000.0 / 48_000.0);
    let part = PART_SAMPLES as usize;
    for b in (part..decoded.len() - 4096).step_by(part) {
        let step = max_step(decoded, b - 64, b + 64);
        assert!(step < sine_step * 1.2, "{name}: step {step} at part boundary {b} (sine's own {sine_step})");
    }
}

#[test]
fn every_format_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let params = EncoderParams::default();
    let init = init_segment(&params).unwrap();
    let (moov, asc) = parse_init(&init);
    assert_eq!(asc, vec![0x11, 0x90], "AAC-LC, 48 kHz, stereo");
    assert_eq!(moov.trak[0].mdia.mdhd.timescale, 48_000);
    assert_eq!(moov.mvex.as_ref().unwrap().trex[0].default_sample_duration, 1024);

    for case in CASES {
        let src = sine_fixture(dir.path(), case.name, case.rate, 2.5, case.opts);
        let reference = ffmpeg_decode(&src);
        let reference_db = rms_db(&reference[4096..reference.len() - 4096]);
        assert!(reference_db > -30.0, "{}: fixture is not a sine at {reference_db} dB", case.name);

        // In memory, through symphonia's AAC decoder.
        let mut sink = Collect::default();
        let summary = segment_track(&src, &[params], &mut sink).unwrap();
        let parts = &sink.0[0];
        let duration = summary.duration.0;
        assert!(
            duration.abs_diff(reference.len() as u64) <= u64::from(FRAME_SAMPLES),
            "{}: duration {duration} vs source {} samples at 48 kHz",
            case.name,
            reference.len()
        );
        assert_eq!(summary.parts, parts.len() as u64);
        check_parts(parts, duration);
        let decoded = symphonia_decode(&asc, parts);
        check_sine(case.name, &decoded, reference_db);

        // On disk as VOD, through ffprobe and ffmpeg reading the playlist.
        let out = dir.path().join(format!("{}-vod", case.name));
        let v = vod::write_vod(&src, &out, &params).unwrap();
        assert_eq!(v.duration, summary.duration);
        assert_eq!(std::fs::read(out.join("init.mp4")).unwrap(), init, "init identical for every track");
        let playlist = out.join("index.m3u8");
        let probe = ffprobe_stream(&playlist);
        for want in ["codec_name=aac", "profile=LC", "sample_rate=48000", "channels=2"] {
            assert!(probe.contains(want), "{}: ffprobe says {probe}", case.name);
        }
        let decoded = ffmpeg_decode(&playlist);
        assert!(
            (decoded.len() as u64).abs_diff(reference.len() as u64) <= u64::from(FRAME_SAMPLES),
            "{}: ffmpeg decoded {} samples, source {}",
            case.name,
            decoded.len(),
            reference.len()
        );
        check_sine(case.name, &decoded, reference_db);
    }
}

#[test]
fn vod_playlist_has_exact_durations_and_parses() {
    let dir = tempfile::tempdir().unwrap();
    let src = sine_fixture(dir.path(), "s.flac", 48_000, 5.0, &["-c:a", "flac"]);
    let out = dir.path().join("vod");
    let v = vod::write_vod(&src, &out, &EncoderParams::default()).unwrap();
    assert_eq!(v.duration.0, 240_000);
    assert_eq!((v.parts, v.segments), (10, 3));
    let text = std::fs::read_to_string(out.join("index.m3u8")).unwrap();
    let (_, m3u8_rs::Playlist::MediaPlaylist(pl)) = m3u8_rs::parse_playlist(text.as_bytes()).unwrap() else {
        panic!("not a media playlist")
    };
    assert!(pl.end_list);
    assert_eq!(pl.target_duration, 2);
    let durations: Vec<f32> = pl.segments.iter().map(|s| s.duration).collect();
    // 240000 samples = 235 frames (ceil) = 2 full segments of 96 frames + 43 frames.
    let want = [2.048, 2.048, 43.0 * 1024.0 / 48_000.0];
    assert_eq!(durations.len(), want.len());
    assert!(durations.iter().zip(want).all(|(d, w)| (d - w).abs() < 1e-5), "{durations:?}");
    assert!(text.contains("#EXTINF:0.91733,\nsegment-00002.m4s"), "{text}");
    for s in &pl.segments {
        assert!(out.join(&s.uri).exists());
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

/// A track's first audible sample lands within one frame of its start, as ffmpeg (which, like
/// hls.js here, ignores edit lists: we write none) and symphonia decode it.
#[test]
fn first_audible_sample_is_within_one_frame_of_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let params = EncoderParams::default();
    let (_, asc) = parse_init(&init_segment(&params).unwrap());
    for onset in [0usize, 333, 10_000] {
        let pcm: Vec<i16> = (0..96_000)
            .map(|i| if i < onset { 0 } else { ((i - onset) as f32 * 0.13).sin().mul_add(16_000.0, 0.0) as i16 })
            .collect();
        let src = dir.path().join(format!("onset{onset}.wav"));
        std::fs::write(&src, segmenter::wav_bytes(48_000, 1, &pcm)).unwrap();
        let out = dir.path().join(format!("onset{onset}"));
        vod::write_vod(&src, &out, &params).unwrap();
        let by_ffmpeg = first_audible(&ffmpeg_decode(&out.join("index.m3u8")), 0.01).unwrap();
        let mut sink = Collect::default();
        segment_track(&src, &[params], &mut sink).unwrap();
        let by_symphonia = first_audible(&symphonia_decode(&asc, &sink.0[0]), 0.01).unwrap();
        for (who, at) in [("ffmpeg", by_ffmpeg), ("symphonia", by_symphonia)] {
            let offset = at as i64 - onset as i64;
            eprintln!("onset {onset}: first audible sample by {who} at {at} (offset {offset})");
            assert!(offset.abs() <= i64::from(FRAME_SAMPLES), "{who}: onset {onset} heard at {at}");
        }
    }
}

#[test]
fn ladder_encodes_every_rung_from_one_decode() {
    let dir = tempfile::tempdir().unwrap();
    let src = sine_fixture(dir.path(), "s.ogg", 44_100, 3.0, &["-c:a", "libvorbis"]);
    let ladder = segmenter::parse_ladder("256,96").unwrap();
    let mut sink = Collect::default();
    let summary = segment_track(&src, &ladder, &mut sink).unwrap();
    assert_eq!(sink.0.len(), 2);
    assert_eq!(sink.0[0].len() as u64, summary.parts);
    assert_eq!(sink.0[1].len() as u64, summary.parts);
    let bytes = |r: usize| sink.0[r].iter().map(|p| p.bytes.len()).sum::<usize>();
    assert!(bytes(1) * 2 < bytes(0), "96k smaller than 256k");
    let reference = ffmpeg_decode(&src);
    let reference_db = rms_db(&reference[4096..reference.len() - 4096]);
    for (r, p) in ladder.iter().enumerate() {
        let (_, asc) = parse_init(&init_segment(p).unwrap());
        check_sine("ladder", &symphonia_decode(&asc, &sink.0[r]), reference_db);
    }
}

#[test]
fn restamp_puts_a_real_part_on_the_wall_clock_grid() {
    let dir = tempfile::tempdir().unwrap();
    let params = EncoderParams { bitrate: 128_000 };
    let src = sine_fixture(dir.path(), "s.wav", 48_000, 1.3, &["-c:a", "pcm_s16le"]);
    let mut sink = Collect::default();
    segment_track(&src, &[params], &mut sink).unwrap();
    let parts = &sink.0[0];
    let last = parts.last().unwrap();
    assert!(last.frames < 24);
    let silence = silence_part(&params).unwrap();
    let (seq, tfdt, frames) = parse_part(&silence);
    assert_eq!((seq, tfdt, frames.len()), (1, 0, 24));

    let grid_part = 3_507_000_123u64; // 2026, epoch-anchored
    let live = restamp(&last.bytes, 99, grid_part * 24_576, &silence).unwrap();
    let (seq, tfdt, frames) = parse_part(&live);
    assert_eq!((seq, tfdt, frames.len()), (99, grid_part * 24_576, 24));
    let (_, own, _) = parse_part(&last.bytes);
    assert_eq!(own, last.index * 24_576);

    // Full parts keep their bytes apart from the stamps; the result still decodes.
    let first = restamp(&parts[0].bytes, 7, 1 << 40, &silence).unwrap();
    assert_eq!(first.len(), parts[0].bytes.len());
    let (_, asc) = parse_init(&init_segment(&params).unwrap());
    let padded = Part { index: 0, frames: 24, bytes: live };
    let decoded = symphonia_decode(&asc, &[padded]);
    let tail = &decoded[last.frames as usize * 1024 + 1024..];
    assert!(tail.iter().all(|s| s.abs() < 1e-3), "padding decodes to silence");
}

#[test]
fn silence_decodes_to_silence() {
    let params = EncoderParams::default();
    let (_, asc) = parse_init(&init_segment(&params).unwrap());
    let part = Part { index: 0, frames: 24, bytes: silence_part(&params).unwrap() };
    let decoded = symphonia_decode(&asc, &[part]);
    assert_eq!(decoded.len(), 24 * 1024);
    assert!(decoded.iter().all(|s| s.abs() < 1e-4));
}

#[test]
fn init_segment_is_identical_across_calls_and_tracks() {
    let p = EncoderParams::default();
    assert_eq!(init_segment(&p).unwrap(), init_segment(&p).unwrap());
    assert_ne!(init_segment(&p).unwrap(), init_segment(&EncoderParams { bitrate: 96_000 }).unwrap());
}
