//! Helpers shared by the integration tests: fixtures made with ffmpeg, independent decoders
//! (ffmpeg, symphonia's AAC decoder) and an MP4 parser (mp4-atom, strict).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;

use mp4_atom::{Any, Codec, Decode, Moof, Moov};
use segmenter::{Part, PartSink};
use symphonia::core::audio::Channels;
use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoderOptions};
use symphonia::core::packet::Packet;

/// Collects every part, per rendition.
#[derive(Default)]
pub struct Collect(pub Vec<Vec<Part>>);

impl PartSink for Collect {
    fn part(&mut self, rendition: usize, part: Part) -> segmenter::Result<()> {
        if self.0.len() <= rendition {
            self.0.resize_with(rendition + 1, Vec::new);
        }
        self.0[rendition].push(part);
        Ok(())
    }
}

/// Runs a tool and returns stdout; panics with a clear message if it is missing or fails.
pub fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is required by these tests (apt-get install -y ffmpeg): {e}"));
    assert!(out.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A 1 kHz sine (amplitude 1/8) of `secs` seconds, made by ffmpeg into `dir/name` with the
/// given output options (codec, rate, channels).
pub fn sine_fixture(dir: &Path, name: &str, rate: u32, secs: f64, opts: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let src = format!("sine=frequency=1000:sample_rate={rate}:duration={secs}");
    let mut args = vec!["-v", "error", "-y", "-f", "lavfi", "-i", &src];
    args.extend_from_slice(opts);
    let p = path.to_str().unwrap().to_string();
    args.push(&p);
    run("ffmpeg", &args);
    path
}

/// Decodes any file or playlist with ffmpeg to 48 kHz, keeping its channels, and returns
/// the first channel (ffmpeg's own mono-to-stereo upmix would be 3 dB down).
pub fn ffmpeg_decode(input: &Path) -> Vec<f32> {
    let probe = ffprobe_stream(input);
    let channels: usize = probe
        .lines()
        .find_map(|l| l.strip_prefix("channels="))
        .and_then(|c| c.trim().parse().ok())
        .expect("channel count");
    let raw = run("ffmpeg", &["-v", "error", "-i", input.to_str().unwrap(), "-f", "s16le", "-ar", "48000", "-"]);
    raw.chunks_exact(2 * channels).map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32_768.0).collect()
}

/// `key=value` lines of ffprobe's description of the first audio stream.
pub fn ffprobe_stream(input: &Path) -> String {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name,profile,sample_rate,channels",
            "-of",
            "default=nw=1",
            input.to_str().unwrap(),
        ],
    );
    String::from_utf8(out).unwrap()
}

/// Parses an init segment strictly with mp4-atom (unknown boxes are errors) and returns the
/// `moov` and the AudioSpecificConfig.
pub fn parse_init(init: &[u8]) -> (Moov, Vec<u8>) {
    let mut buf = init;
    let ftyp = match Any::decode(&mut buf).unwrap() {
        Any::Ftyp(f) => f,
        other => panic!("expected ftyp, got {other:?}"),
    };
    assert_eq!(ftyp.major_brand, b"iso6".into());
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "trailing bytes after moov");
    let stsd = &moov.trak[0].mdia.minf.stbl.stsd;
    let Codec::Mp4a(mp4a) = &stsd.codecs[0] else { panic!("not mp4a: {:?}", stsd.codecs) };
    let dec = &mp4a.esds.es_desc.dec_config;
    let asc = dec.dec_specific.as_ref().expect("AudioSpecificConfig");
    let asc = vec![(asc.profile << 3) | (asc.freq_index >> 1), ((asc.freq_index & 1) << 7) | (asc.chan_conf << 3)];
    (moov, asc)
}

/// Parses a part strictly with mp4-atom: returns (sequence, tfdt, frames).
pub fn parse_part(part: &[u8]) -> (u32, u64, Vec<Vec<u8>>) {
    let mut buf = part;
    let moof = Moof::decode(&mut buf).unwrap();
    let mdat = match Any::decode(&mut buf).unwrap() {
        Any::Mdat(m) => m,
        other => panic!("expected mdat, got {other:?}"),
    };
    assert!(buf.is_empty(), "trailing bytes after mdat");
    assert_eq!(moof.traf.len(), 1);
    let traf = &moof.traf[0];
    assert!(traf.tfhd.default_base_is_moof);
    assert_eq!(traf.tfhd.default_sample_duration, Some(1024));
    assert_eq!(traf.tfhd.default_sample_flags, Some(0x0200_0000), "every sample a sync sample");
    let trun = &traf.trun[0];
    let moof_len = part.len() - mdat.data.len() - 8;
    assert_eq!(trun.data_offset, Some((moof_len + 8) as i32));
    let mut frames = Vec::new();
    let mut at = 0;
    for i in 0..trun.samples.len() {
        let size = trun.samples.get(i).unwrap().size.unwrap() as usize;
        frames.push(mdat.data[at..at + size].to_vec());
        at += size;
    }
    assert_eq!(at, mdat.data.len());
    (moof.mfhd.sequence_number, traf.tfdt.as_ref().unwrap().base_media_decode_time, frames)
}

/// Decodes parts with symphonia's AAC decoder; returns the left channel and checks every
/// frame is 1024 samples of 48 kHz stereo.
pub fn symphonia_decode(asc: &[u8], parts: &[Part]) -> Vec<f32> {
    let mut params = AudioCodecParameters::new();
    params
        .for_codec(CODEC_ID_AAC)
        .with_sample_rate(48_000)
        .with_channels(Channels::Discrete(2))
        .with_extra_data(asc.to_vec().into_boxed_slice());
    let mut dec =
        symphonia::default::get_codecs().make_audio_decoder(&params, &AudioDecoderOptions::default()).unwrap();
    let mut left = Vec::new();
    let mut pcm: Vec<f32> = Vec::new();
    for part in parts {
        let (_, tfdt, frames) = parse_part(&part.bytes);
        for (i, f) in frames.into_iter().enumerate() {
            let pts = tfdt + i as u64 * 1024;
            let buf = dec.decode(&Packet::new(0, (pts as i64).into(), 1024u64.into(), f)).unwrap();
            assert_eq!(buf.spec().rate(), 48_000);
            assert_eq!(buf.spec().channels().count(), 2);
            assert_eq!(buf.frames(), 1024);
            pcm.resize(buf.samples_interleaved(), 0.0);
            buf.copy_to_slice_interleaved(&mut pcm);
            left.extend(pcm.iter().step_by(2));
        }
    }
    left
}

/// Index of the first sample louder than `threshold` (full scale 1.0).
pub fn first_audible(x: &[f32], threshold: f32) -> Option<usize> {
    x.iter().position(|s| s.abs() > threshold)
}

/// RMS level in dBFS of `x`.
pub fn rms_db(x: &[f32]) -> f64 {
    let p: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64;
    10.0 * p.log10()
}

/// Frequency in Hz at 48 kHz from rising zero crossings.
pub fn frequency(x: &[f32]) -> f64 {
    let rising = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    rising as f64 * 48_000.0 / x.len() as f64
}

/// Largest sample-to-sample step in `x[from..to]`.
pub fn max_step(x: &[f32], from: usize, to: usize) -> f32 {
    x[from..to.min(x.len())].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max)
}
