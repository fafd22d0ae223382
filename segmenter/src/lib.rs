//! Decode a track, encode AAC-LC and cut it into CMAF parts on bardcast's time grid.
//!
//! Pipeline: symphonia decodes any of mp3, flac, ogg vorbis, wav, aiff, m4a (aac, alac);
//! the audio is mixed to stereo, resampled to 48 kHz by rubato, encoded by fdk-aac (one
//! encoder per rung of the bitrate ladder, all fed from one decode) and cut into parts of 24
//! AAC frames (0.512 s), each an independent `moof` + `mdat`. A track's part `k` starts at
//! track sample `k * 24576`; [`restamp`] moves a part onto the live wall-clock grid.
//!
//! Synchronous and free of any web or database code: call it from a blocking thread.
//!
//! ```
//! use segmenter::{init_segment, restamp, silence_part, EncoderParams, Part, PartSink, Result};
//!
//! # fn main() -> Result<()> {
//! let params = EncoderParams { bitrate: EncoderParams::DEFAULT_BITRATE };
//! assert_eq!(params.cache_key(), "aaclc-48k-2ch-256k-v1");
//!
//! // Encode a second of a 440 Hz tone from a WAV file in memory.
//! let wav = segmenter::wav_bytes(48_000, 1, &(0..48_000)
//!     .map(|i| ((i as f32 * 440.0 / 48_000.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16)
//!     .collect::<Vec<_>>());
//! struct Collect(Vec<Part>);
//! impl PartSink for Collect {
//!     fn part(&mut self, _rendition: usize, part: Part) -> Result<()> {
//!         self.0.push(part);
//!         Ok(())
//!     }
//! }
//! let mut parts = Collect(Vec::new());
//! let summary = segmenter::segment_bytes(wav, &[params], &mut parts)?;
//! assert_eq!(summary.duration.0, 48_000);
//! assert_eq!(summary.parts, 2); // 24 frames, then the remaining 23
//! assert_eq!(parts.0[1].frames, 23);
//!
//! // The live stream re-stamps cached parts onto the wall-clock grid.
//! let grid_part = 3_507_000_000u64;
//! let silence = silence_part(&params)?;
//! let live = restamp(&parts.0[1].bytes, 7, grid_part * 24_576, &silence)?;
//! assert!(!init_segment(&params)?.is_empty() && !live.is_empty());
//! # Ok(())
//! # }
//! ```

pub mod aac_decode;
pub mod decode;
pub mod encode;
mod error;
pub mod fmp4;
pub mod playlist;
pub mod resample;
mod units;
pub mod vod;

use std::io::Cursor;
use std::path::Path;

pub use error::{Error, Result};
pub use fmp4::restamp;
pub use units::{
    Samples, CHANNELS, FRAME_SAMPLES, PARTS_PER_SEGMENT, PART_FRAMES, PART_MS, PART_SAMPLES, SAMPLE_RATE, SEGMENT_MS,
    SEGMENT_SAMPLES,
};

use decode::Decoder;
use encode::{interleave_i16, AacEncoder};
use resample::Resampler;

/// Longest track accepted, in samples at 48 kHz (12 hours).
pub const MAX_DURATION: Samples = Samples(12 * 3600 * SAMPLE_RATE as u64);

/// One rung of the bitrate ladder: AAC-LC, 48 kHz, stereo, CBR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EncoderParams {
    /// Bits per second.
    pub bitrate: u32,
}

impl EncoderParams {
    /// The default bitrate in bits per second.
    pub const DEFAULT_BITRATE: u32 = 256_000;
    /// Bumped whenever the output bytes for the same input change (encoder, muxer, trimming).
    const OUTPUT_VERSION: u32 = 1;

    /// A stable name for cache directories, e.g. `aaclc-48k-2ch-256k-v1`.
    pub fn cache_key(&self) -> String {
        let rate = if self.bitrate.is_multiple_of(1000) {
            format!("{}k", self.bitrate / 1000)
        } else {
            format!("{}bps", self.bitrate)
        };
        format!("aaclc-48k-2ch-{rate}-v{}", Self::OUTPUT_VERSION)
    }
}

impl Default for EncoderParams {
    fn default() -> Self {
        EncoderParams { bitrate: Self::DEFAULT_BITRATE }
    }
}

/// Parses a ladder like `"256,96"` (kbit/s, comma separated, highest quality first by
/// convention) into encoder parameters. Rejects empty lists, non-numbers, out-of-range
/// values (32–512 kbit/s) and duplicates.
pub fn parse_ladder(s: &str) -> Result<Vec<EncoderParams>> {
    let bad = |why: String| Error::InvalidLadder(format!("{why} in {s:?}; expected kbit/s like \"256,96\""));
    let mut out: Vec<EncoderParams> = Vec::new();
    for item in s.split(',') {
        let item = item.trim().trim_end_matches(['k', 'K']);
        if item.is_empty() {
            return Err(bad("empty entry".into()));
        }
        let kbps: u32 = item.parse().map_err(|_| bad(format!("{item:?} is not a whole number")))?;
        let bitrate = kbps
            .checked_mul(1000)
            .filter(|b| (encode::MIN_BITRATE..=encode::MAX_BITRATE).contains(b))
            .ok_or_else(|| bad(format!("{kbps} kbit/s is outside 32..=512")))?;
        let p = EncoderParams { bitrate };
        if out.contains(&p) {
            return Err(bad(format!("{kbps} kbit/s appears twice")));
        }
        out.push(p);
    }
    Ok(out)
}

/// One encoded part of a track: up to 24 AAC frames as a `moof` + `mdat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Part number within the track; `tfdt = index * 24576` and `mfhd` sequence `index + 1`.
    pub index: u64,
    /// AAC frames (of 1024 samples) in the part: 24, fewer only for the track's last part.
    pub frames: u32,
    /// The `moof` + `mdat` bytes.
    pub bytes: Vec<u8>,
}

/// Receives parts as soon as each exists.
pub trait PartSink {
    /// Called with `rendition` (an index into the `params` given to [`segment_track`]) and
    /// each part, in order per rendition. Returning `Err` aborts the encode with that error.
    fn part(&mut self, rendition: usize, part: Part) -> Result<()>;
}

/// What [`segment_track`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackSummary {
    /// Decoded audio length in samples at 48 kHz.
    pub duration: Samples,
    /// Parts per rendition: `ceil(duration / 24576)`.
    pub parts: u64,
    /// Integrated loudness (EBU R128), LUFS; `None` for silence.
    pub loudness_lufs: Option<f64>,
    /// The first rendition's AAC frame before frame 0: decoded first, it makes the track's
    /// first samples exact (see [`encode::AacEncoder::lead_in`]).
    pub lead_in: Vec<u8>,
    /// Problems that did not stop decoding, e.g. corrupt packets skipped.
    pub warnings: Vec<String>,
}

/// Decodes `src` once and encodes it at every rung of `params`, handing each part to `sink`
/// as it is produced. Memory stays bounded whatever the track's length.
pub fn segment_track(src: &Path, params: &[EncoderParams], sink: &mut impl PartSink) -> Result<TrackSummary> {
    run(Decoder::open(src)?, params, sink)
}

/// [`segment_track`] for a file already in memory.
pub fn segment_bytes(bytes: Vec<u8>, params: &[EncoderParams], sink: &mut impl PartSink) -> Result<TrackSummary> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    run(Decoder::from_source(Box::new(Cursor::new(bytes)), None)?, params, sink)
}

/// The init segment (`ftyp` + `moov`) for `params`: the same bytes for every track.
pub fn init_segment(params: &EncoderParams) -> Result<Vec<u8>> {
    fmp4::write_init(AacEncoder::new(params)?.config())
}

/// One full part (24 frames) of encoded digital silence, with `tfdt` 0 and sequence 1.
pub fn silence_part(params: &EncoderParams) -> Result<Vec<u8>> {
    let mut enc = AacEncoder::new(params)?;
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(PART_FRAMES as usize);
    let zeros = vec![0i16; PART_SAMPLES as usize * usize::from(CHANNELS)];
    let mut keep = |f: &[u8]| {
        frames.push(f.to_vec());
        Ok(())
    };
    enc.encode(&zeros, &mut keep)?;
    enc.finish(&mut keep)?;
    fmp4::write_part(1, 0, &frames)
}

/// Blocks of the track in flight to the loudness meter at most.
const METER_QUEUE: usize = 64;

/// Measures integrated loudness (EBU R128) on a thread of its own: the K-weighting filters
/// cost about a third of an encode, and the encode need not wait for them.
struct LoudnessMeter {
    blocks: std::sync::mpsc::SyncSender<(Vec<f32>, Vec<f32>)>,
    thread: std::thread::JoinHandle<Option<f64>>,
}

impl LoudnessMeter {
    fn start() -> Self {
        let (blocks, rx) = std::sync::mpsc::sync_channel::<(Vec<f32>, Vec<f32>)>(METER_QUEUE);
        let thread = std::thread::spawn(move || {
            let mut meter = ebur128::EbuR128::new(u32::from(CHANNELS), SAMPLE_RATE, ebur128::Mode::I).ok()?;
            for (left, right) in rx {
                meter.add_frames_planar_f32(&[&left, &right]).ok()?;
            }
            // The meter's gate makes silence -inf.
            meter.loudness_global().ok().filter(|l| l.is_finite())
        });
        LoudnessMeter { blocks, thread }
    }

    /// Measures a block of 48 kHz stereo; a meter that failed simply stops measuring.
    fn add(&self, left: &[f32], right: &[f32]) {
        let _ = self.blocks.send((left.to_vec(), right.to_vec()));
    }

    /// The track's loudness, LUFS; `None` for silence or if the meter failed.
    fn finish(self) -> Option<f64> {
        drop(self.blocks);
        self.thread.join().ok().flatten()
    }
}

/// One rung of the ladder while a track is encoded: its encoder and the part being filled.
struct Rendition {
    encoder: AacEncoder,
    frames: Vec<Vec<u8>>,
    next_index: u64,
}

impl Rendition {
    /// Hands every complete part collected so far to `sink`; with `all`, the short rest too.
    fn flush(&mut self, rendition: usize, sink: &mut impl PartSink, all: bool) -> Result<()> {
        let full = PART_FRAMES as usize;
        while self.frames.len() >= full || (all && !self.frames.is_empty()) {
            let rest = self.frames.split_off(full.min(self.frames.len()));
            let frames = std::mem::replace(&mut self.frames, rest);
            let index = self.next_index;
            let too_far = || Error::TooLong { max_hours: MAX_DURATION.0 / 3600 / u64::from(SAMPLE_RATE) };
            let tfdt = Samples::part_start(index).ok_or_else(too_far)?;
            let sequence = u32::try_from(index + 1).map_err(|_| too_far())?;
            let bytes = fmp4::write_part(sequence, tfdt.0, &frames)?;
            self.next_index += 1;
            sink.part(rendition, Part { index, frames: frames.len() as u32, bytes })?;
        }
        Ok(())
    }
}

fn run(mut decoder: Decoder, params: &[EncoderParams], sink: &mut impl PartSink) -> Result<TrackSummary> {
    if params.is_empty() {
        return Err(Error::InvalidLadder("no encoder parameters given".into()));
    }
    let mut renditions = params
        .iter()
        .map(|p| Ok(Rendition { encoder: AacEncoder::new(p)?, frames: Vec::new(), next_index: 0 }))
        .collect::<Result<Vec<_>>>()?;
    let mut resampler = Resampler::new(decoder.sample_rate())?;
    let meter = LoudnessMeter::start();
    let mut duration = Samples::ZERO;
    let mut pcm: Vec<i16> = Vec::new();

    let mut emit = |left: &[f32], right: &[f32]| -> Result<()> {
        duration = Samples(duration.0 + left.len() as u64);
        if duration > MAX_DURATION {
            return Err(Error::TooLong { max_hours: MAX_DURATION.0 / 3600 / u64::from(SAMPLE_RATE) });
        }
        meter.add(left, right);
        interleave_i16(left, right, &mut pcm);
        for (i, r) in renditions.iter_mut().enumerate() {
            let Rendition { encoder, frames, .. } = r;
            encoder.encode(&pcm, &mut |f| {
                frames.push(f.to_vec());
                Ok(())
            })?;
            r.flush(i, sink, false)?;
        }
        Ok(())
    };

    let (mut left, mut right) = (Vec::new(), Vec::new());
    while decoder.next_block(&mut left, &mut right)? {
        resampler.push(&left, &right, &mut emit)?;
        left.clear();
        right.clear();
    }
    resampler.finish(&mut emit)?;
    if duration == Samples::ZERO {
        return Err(Error::Empty);
    }
    for (i, r) in renditions.iter_mut().enumerate() {
        let Rendition { encoder, frames, .. } = r;
        encoder.finish(&mut |f| {
            frames.push(f.to_vec());
            Ok(())
        })?;
        r.flush(i, sink, true)?;
    }
    let lead_in = renditions.first().map(|r| r.encoder.lead_in().to_vec()).unwrap_or_default();
    let loudness_lufs = meter.finish();
    Ok(TrackSummary { duration, parts: duration.parts_ceil(), loudness_lufs, lead_in, warnings: decoder.warnings() })
}

/// A 16-bit PCM WAV file in memory: for examples, tests and benches.
pub fn wav_bytes(rate: u32, channels: u16, interleaved: &[i16]) -> Vec<u8> {
    let data_len = (interleaved.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + interleaved.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in interleaved {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_parses_kbps() {
        let l = parse_ladder("256, 96k").unwrap();
        assert_eq!(l, vec![EncoderParams { bitrate: 256_000 }, EncoderParams { bitrate: 96_000 }]);
    }

    #[test]
    fn ladder_errors_are_clear() {
        for (s, needle) in [
            ("", "empty entry"),
            ("256,", "empty entry"),
            ("abc", "not a whole number"),
            ("8", "outside"),
            ("99999999", "outside"),
            ("128,128", "twice"),
        ] {
            let e = parse_ladder(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s:?}: {e}");
        }
    }

    #[test]
    fn cache_key_names_the_configuration() {
        assert_eq!(EncoderParams::default().cache_key(), "aaclc-48k-2ch-256k-v1");
        assert_eq!(EncoderParams { bitrate: 96_500 }.cache_key(), "aaclc-48k-2ch-96500bps-v1");
    }
}
