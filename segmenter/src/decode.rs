//! Decoding with symphonia into stereo `f32` at the source's sample rate.
//!
//! Bad packets are skipped (replaced by silence of the same length, so later audio keeps its
//! time) and reported as warnings; a truncated file ends early with a warning.

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::{Channels, Position};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::{Error, Result};

/// Lowest accepted source sample rate in Hz.
pub const MIN_SOURCE_RATE: u32 = 8_000;
/// Highest accepted source sample rate in Hz.
pub const MAX_SOURCE_RATE: u32 = 192_000;
/// Warnings kept verbatim; the rest are counted.
const MAX_WARNINGS: usize = 16;
/// Consecutive failed packets after which the source is declared undecodable.
const MAX_CONSECUTIVE_ERRORS: u32 = 1_000;
/// -3 dB, the ITU-R BS.775 gain for centre and surround channels folded into L/R.
const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// A source being decoded: one audio track, mixed to stereo.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    rate: u32,
    /// (left gain, right gain) per source channel, in the decoder's channel order.
    mix: Vec<(f32, f32)>,
    interleaved: Vec<f32>,
    warnings: Vec<String>,
    extra_warnings: u64,
    consecutive_errors: u32,
    /// Where the next packet should start, in frames, when timestamps count frames; a later
    /// start means the reader skipped damaged data.
    next_pts: Option<i64>,
    pts_in_frames: bool,
    done: bool,
}

impl Decoder {
    /// Opens and probes a file; the extension is a hint only.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Err(Error::Empty);
        }
        let ext = path.extension().and_then(|e| e.to_str());
        Self::from_source(Box::new(file), ext)
    }

    /// Probes any media source (a file, or a `Cursor<Vec<u8>>` for in-memory input).
    pub fn from_source(source: Box<dyn MediaSource>, extension: Option<&str>) -> Result<Self> {
        let mss = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymError::IoError(_) | SymError::Unsupported(_) => {
                    Error::UnsupportedFormat(format!("not a recognised audio file ({e})"))
                }
                other => Error::UnsupportedFormat(other.to_string()),
            })?;
        let track = format.default_track(TrackType::Audio).ok_or(Error::NoAudioTrack)?;
        let params = track.codec_params.as_ref().and_then(|p| p.audio()).ok_or(Error::NoAudioTrack)?;
        let rate = params.sample_rate.unwrap_or(0);
        if !(MIN_SOURCE_RATE..=MAX_SOURCE_RATE).contains(&rate) {
            return Err(Error::UnsupportedSampleRate(rate));
        }
        let mix = match &params.channels {
            Some(ch) => mix_matrix(ch)?,
            None => Vec::new(), // learnt from the first decoded buffer
        };
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| Error::UnsupportedFormat(format!("codec: {e}")))?;
        let track_id = track.id;
        let pts_in_frames = track.time_base.is_some_and(|tb| tb.numer.get() == 1 && tb.denom.get() == rate);
        Ok(Decoder {
            format,
            decoder,
            track_id,
            rate,
            mix,
            interleaved: Vec::new(),
            warnings: Vec::new(),
            extra_warnings: 0,
            consecutive_errors: 0,
            next_pts: None,
            pts_in_frames,
            done: false,
        })
    }

    /// The source sample rate in Hz (8 000–192 000).
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Decodes the next packet and appends its audio, mixed to stereo at the source rate, to
    /// `left` and `right`. Returns `false` once the source is exhausted.
    pub fn next_block(&mut self, left: &mut Vec<f32>, right: &mut Vec<f32>) -> Result<bool> {
        while !self.done {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(SymError::IoError(e)) => {
                    // Truncated files end in an unexpected EOF: keep what was decoded.
                    self.warn(format!("source ended early: {e}"));
                    self.done = true;
                    break;
                }
                Err(SymError::ResetRequired) => {
                    self.warn("stream changed mid-file (chained stream); stopped there".into());
                    self.done = true;
                    break;
                }
                Err(SymError::DecodeError(e)) => {
                    self.failed(format!("corrupt data skipped: {e}"))?;
                    continue;
                }
                Err(e) => return Err(Error::Decode(e.to_string())),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            self.fill_gap(packet.pts.get(), packet.dur.get(), left, right);
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    let spec = buf.spec();
                    if spec.rate() != self.rate {
                        return Err(Error::Decode(format!(
                            "sample rate changed mid-stream from {} to {} Hz",
                            self.rate,
                            spec.rate()
                        )));
                    }
                    let channels = spec.channels().count();
                    if channels != self.mix.len() {
                        self.mix = mix_matrix(spec.channels())?;
                    }
                    self.interleaved.resize(buf.samples_interleaved(), 0.0);
                    buf.copy_to_slice_interleaved(&mut self.interleaved);
                    self.consecutive_errors = 0;
                    mix_into(&self.interleaved, &self.mix, left, right);
                    return Ok(true);
                }
                Err(e @ (SymError::DecodeError(_) | SymError::IoError(_))) => {
                    self.failed(format!("corrupt packet at {} skipped: {e}", packet.pts.get()))?;
                    // Keep the timeline: a skipped packet becomes silence of its length (at
                    // most a second, in case the length itself is corrupt).
                    let frames = packet.dur.get().min(u64::from(self.rate)) as usize;
                    left.resize(left.len() + frames, 0.0);
                    right.resize(right.len() + frames, 0.0);
                    return Ok(true);
                }
                Err(e) => return Err(Error::Decode(e.to_string())),
            }
        }
        Ok(false)
    }

    /// Inserts silence where the reader skipped damaged data (the packet starts later than
    /// the previous one ended), so later audio keeps its time; at most 10 s per gap.
    fn fill_gap(&mut self, pts: i64, dur: u64, left: &mut Vec<f32>, right: &mut Vec<f32>) {
        if !self.pts_in_frames {
            return;
        }
        if let Some(expected) = self.next_pts {
            let gap = pts.saturating_sub(expected);
            if gap > 0 {
                let frames = (gap as u64).min(10 * u64::from(self.rate)) as usize;
                self.warn(format!("damaged data skipped: {gap} samples at {expected} replaced by silence"));
                left.resize(left.len() + frames, 0.0);
                right.resize(right.len() + frames, 0.0);
            }
        }
        self.next_pts = Some(pts.saturating_add(i64::try_from(dur).unwrap_or(i64::MAX)));
    }

    /// Warnings collected so far (corrupt packets, truncation), in order.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.warnings.clone();
        if self.extra_warnings > 0 {
            out.push(format!("... and {} more warnings", self.extra_warnings));
        }
        out
    }

    fn failed(&mut self, warning: String) -> Result<()> {
        self.consecutive_errors += 1;
        if self.consecutive_errors > MAX_CONSECUTIVE_ERRORS {
            return Err(Error::Decode(format!("{MAX_CONSECUTIVE_ERRORS} bad packets in a row; last: {warning}")));
        }
        self.warn(warning);
        Ok(())
    }

    fn warn(&mut self, warning: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        } else {
            self.extra_warnings += 1;
        }
    }
}

/// Appends interleaved audio with `mix.len()` channels to `left`/`right`, mixed by `mix`.
fn mix_into(interleaved: &[f32], mix: &[(f32, f32)], left: &mut Vec<f32>, right: &mut Vec<f32>) {
    match mix.len() {
        1 => {
            left.extend_from_slice(interleaved);
            right.extend_from_slice(interleaved);
        }
        2 if mix == [(1.0, 0.0), (0.0, 1.0)] => {
            left.extend(interleaved.iter().step_by(2));
            right.extend(interleaved.iter().skip(1).step_by(2));
        }
        n => {
            for frame in interleaved.chunks_exact(n) {
                let (l, r) = frame.iter().zip(mix).fold((0.0, 0.0), |(l, r), (s, (gl, gr))| (l + s * gl, r + s * gr));
                left.push(l);
                right.push(r);
            }
        }
    }
}

/// Per-channel (left, right) gains that fold `channels` into stereo: mono goes to both sides
/// at full level; otherwise ITU-R BS.775 (centre and surrounds at -3 dB, LFE dropped),
/// scaled down so that no output can exceed full scale.
fn mix_matrix(channels: &Channels) -> Result<Vec<(f32, f32)>> {
    let positions: Vec<Position> = match channels {
        Channels::Positioned(p) => p.iter().collect(),
        // Discrete layouts follow the WAVE order, which is also symphonia's bit order.
        Channels::Discrete(n @ 1..=18) => (0..*n).map(|i| Position::from_bits_truncate(1 << i)).collect(),
        other => return Err(Error::UnsupportedChannels(format!("{other:?}"))),
    };
    match positions.len() {
        0 => return Err(Error::UnsupportedChannels("no channels".into())),
        1 => return Ok(vec![(1.0, 1.0)]),
        _ => {}
    }
    let k = MINUS_3DB;
    let mut mix: Vec<(f32, f32)> = positions
        .iter()
        .map(|&p| match p {
            Position::FRONT_LEFT | Position::FRONT_LEFT_CENTER => (1.0, 0.0),
            Position::FRONT_RIGHT | Position::FRONT_RIGHT_CENTER => (0.0, 1.0),
            Position::FRONT_CENTER => (k, k),
            Position::LFE1 | Position::LFE2 => (0.0, 0.0),
            Position::REAR_LEFT
            | Position::SIDE_LEFT
            | Position::TOP_FRONT_LEFT
            | Position::TOP_REAR_LEFT
            | Position::TOP_SIDE_LEFT
            | Position::BOTTOM_FRONT_LEFT => (k, 0.0),
            Position::REAR_RIGHT
            | Position::SIDE_RIGHT
            | Position::TOP_FRONT_RIGHT
            | Position::TOP_REAR_RIGHT
            | Position::TOP_SIDE_RIGHT => (0.0, k),
            _ => (k * k, k * k),
        })
        .collect();
    let peak = mix.iter().fold((0.0f32, 0.0f32), |(l, r), (gl, gr)| (l + gl, r + gr));
    let scale = 1.0 / peak.0.max(peak.1).max(1.0);
    mix.iter_mut().for_each(|(l, r)| {
        *l *= scale;
        *r *= scale;
    });
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_goes_to_both_sides_at_full_level() {
        assert_eq!(mix_matrix(&Channels::Discrete(1)).unwrap(), vec![(1.0, 1.0)]);
    }

    #[test]
    fn stereo_is_untouched() {
        assert_eq!(mix_matrix(&Channels::Discrete(2)).unwrap(), vec![(1.0, 0.0), (0.0, 1.0)]);
    }

    #[test]
    fn five_one_follows_itu_and_cannot_clip() {
        let m = mix_matrix(&Channels::Discrete(6)).unwrap();
        let norm = 1.0 / (1.0 + 2.0 * MINUS_3DB);
        assert!((m[0].0 - norm).abs() < 1e-6, "front left");
        assert!((m[2].0 - MINUS_3DB * norm).abs() < 1e-6, "centre at -3 dB");
        assert_eq!(m[3], (0.0, 0.0), "LFE dropped");
        assert!((m[4].0 - MINUS_3DB * norm).abs() < 1e-6 && m[4].1 == 0.0, "rear left");
        let sum_l: f32 = m.iter().map(|g| g.0).sum();
        assert!(sum_l <= 1.0 + 1e-6);
    }

    #[test]
    fn no_channels_is_an_error() {
        assert!(matches!(mix_matrix(&Channels::None), Err(Error::UnsupportedChannels(_))));
        assert!(matches!(mix_matrix(&Channels::Discrete(0)), Err(Error::UnsupportedChannels(_))));
    }
}
