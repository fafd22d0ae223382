//! Bad input returns an error or decodes what it can; it never panics.
#![allow(clippy::unwrap_used, reason = "test helpers: a panic is a failed test with its location")]

mod common;

use common::*;
use segmenter::{segment_bytes, segment_track, EncoderParams, Error, Part, PartSink};

fn segment(path: &std::path::Path) -> segmenter::Result<segmenter::TrackSummary> {
    segment_track(path, &[EncoderParams { bitrate: 96_000 }], &mut Collect::default())
}

#[test]
fn zero_byte_file_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.mp3");
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(segment(&p), Err(Error::Empty)));
    assert!(matches!(
        segment_bytes(Vec::new(), &[EncoderParams::default()], &mut Collect::default()),
        Err(Error::Empty)
    ));
}

#[test]
fn missing_file_is_io() {
    assert!(matches!(segment(std::path::Path::new("/nonexistent/x.flac")), Err(Error::Io { .. })));
}

#[test]
fn non_audio_file_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "these are not the droids you are looking for\n".repeat(100)).unwrap();
    assert!(matches!(segment(&p), Err(Error::UnsupportedFormat(_))), "{:?}", segment(&p));
}

#[test]
fn random_bytes_never_panic() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for len in [1usize, 7, 100, 4096, 100_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = segment_bytes(bytes, &[EncoderParams::default()], &mut Collect::default());
    }
}

#[test]
fn opus_is_a_clear_unsupported_format() {
    let dir = tempfile::tempdir().unwrap();
    let p = sine_fixture(dir.path(), "s.opus", 48_000, 1.0, &["-c:a", "libopus"]);
    let err = segment(&p).unwrap_err();
    assert!(matches!(err, Error::UnsupportedFormat(_)), "{err}");
}

#[test]
fn truncated_files_keep_what_decodes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, opts) in [
        ("t.flac", &["-c:a", "flac"][..]),
        ("t.mp3", &["-c:a", "libmp3lame"]),
        ("t.m4a", &["-c:a", "aac"]),
        ("t.ogg", &["-c:a", "libvorbis"]),
        ("t.wav", &["-c:a", "pcm_s16le"]),
    ] {
        let p = sine_fixture(dir.path(), name, 44_100, 4.0, opts);
        let full = segment(&p).unwrap().duration.0;
        let bytes = std::fs::read(&p).unwrap();
        let cut = dir.path().join(format!("cut-{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
        match segment(&cut) {
            Ok(s) => assert!(s.duration.0 > 0 && s.duration.0 <= full, "{name}: {} of {full}", s.duration.0),
            // A container whose index sits at the end (m4a) cannot be read without it.
            Err(e) => assert!(name.ends_with(".m4a"), "{name}: {e}"),
        }
    }
}

#[test]
fn corrupt_bytes_in_the_middle_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    for (name, opts) in
        [("c.flac", &["-c:a", "flac"][..]), ("c.mp3", &["-c:a", "libmp3lame"]), ("c.ogg", &["-c:a", "libvorbis"])]
    {
        let p = sine_fixture(dir.path(), name, 44_100, 6.0, opts);
        let full = segment(&p).unwrap().duration.0;
        let mut bytes = std::fs::read(&p).unwrap();
        let mid = bytes.len() / 2;
        for (i, b) in bytes[mid..mid + 3000].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
        let bad = dir.path().join(format!("bad-{name}"));
        std::fs::write(&bad, &bytes).unwrap();
        let s = segment(&bad).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Timing is kept: skipped packets become silence, so the length barely moves.
        let diff = s.duration.0.abs_diff(full);
        assert!(diff < 48_000 / 2, "{name}: {} vs {full}", s.duration.0);
        if name.ends_with(".flac") {
            assert!(!s.warnings.is_empty(), "{name}: corrupt frames are reported");
        }
    }
}

#[test]
fn extreme_rates_and_channel_counts() {
    let dir = tempfile::tempdir().unwrap();
    let hi = sine_fixture(dir.path(), "hi.wav", 192_000, 1.5, &["-ac", "8", "-c:a", "pcm_s24le"]);
    let s = segment(&hi).unwrap();
    assert_eq!(s.duration.0, 72_000);
    let lo = sine_fixture(dir.path(), "lo.wav", 8_000, 1.5, &["-c:a", "pcm_u8"]);
    let s = segment(&lo).unwrap();
    assert_eq!(s.duration.0, 72_000);
    let six = sine_fixture(dir.path(), "51.flac", 48_000, 1.0, &["-ac", "6", "-c:a", "flac"]);
    assert_eq!(segment(&six).unwrap().duration.0, 48_000);
}

#[test]
fn out_of_range_rate_is_rejected() {
    let wav = segmenter::wav_bytes(4_000, 1, &[0i16; 4_000]);
    let err = segment_bytes(wav, &[EncoderParams::default()], &mut Collect::default()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedSampleRate(4_000)), "{err}");
}

#[test]
fn sink_error_aborts_the_encode() {
    struct Refuse;
    impl PartSink for Refuse {
        fn part(&mut self, _: usize, _: Part) -> segmenter::Result<()> {
            Err(Error::Sink("disk full".into()))
        }
    }
    let wav = segmenter::wav_bytes(48_000, 2, &vec![0i16; 200_000]);
    let err = segment_bytes(wav, &[EncoderParams::default()], &mut Refuse).unwrap_err();
    assert!(matches!(err, Error::Sink(ref m) if m == "disk full"), "{err}");
}

#[test]
fn empty_ladder_is_rejected() {
    let wav = segmenter::wav_bytes(48_000, 1, &[0i16; 1000]);
    assert!(matches!(segment_bytes(wav, &[], &mut Collect::default()), Err(Error::InvalidLadder(_))));
}

#[test]
fn header_only_wav_is_empty() {
    let wav = segmenter::wav_bytes(48_000, 2, &[]);
    let err = segment_bytes(wav, &[EncoderParams::default()], &mut Collect::default()).unwrap_err();
    assert!(matches!(err, Error::Empty), "{err}");
}
