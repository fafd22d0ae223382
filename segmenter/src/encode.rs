//! AAC-LC encoding with fdk-aac: 48 kHz stereo, CBR, raw frames of 1024 samples.
//!
//! The encoder's priming frames are dropped so that output frame `k` holds input samples
//! `[k * 1024, (k + 1) * 1024)` as a decoder that ignores edit lists (ffmpeg, hls.js) plays
//! them, and the tail is flushed by feeding silence, so no audio is lost at the end.

use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, Encoder, EncoderParams as FdkParams, Transport};

use crate::error::{Error, Result};
use crate::fmp4::TrackConfig;
use crate::units::{CHANNELS, FRAME_SAMPLES, SAMPLE_RATE};
use crate::EncoderParams;

/// Lowest accepted bitrate in bits per second.
pub const MIN_BITRATE: u32 = 32_000;
/// Highest accepted bitrate in bits per second (fdk's AAC-LC stereo limit at 48 kHz is 576k).
pub const MAX_BITRATE: u32 = 512_000;

/// Interleaved i16 samples in one frame of stereo.
const FRAME_LEN: usize = FRAME_SAMPLES as usize * CHANNELS as usize;

/// One fdk-aac encoder. The C handle is not thread-safe: keep each encoder on one thread.
pub struct AacEncoder {
    enc: Encoder,
    config: TrackConfig,
    /// Encoded frames still to drop: the encoder's delay, in whole frames.
    priming_left: u64,
    /// The last frame dropped: a decoder needs it before frame 0 to decode that exactly.
    lead_in: Vec<u8>,
    /// Per-channel samples given to [`AacEncoder::encode`].
    samples_in: u64,
    /// Frames handed out so far (after priming).
    frames_out: u64,
    out: Vec<u8>,
}

impl AacEncoder {
    /// An AAC-LC 48 kHz stereo CBR encoder at `params.bitrate`, afterburner off (fdk's default).
    pub fn new(params: &EncoderParams) -> Result<Self> {
        if !(MIN_BITRATE..=MAX_BITRATE).contains(&params.bitrate) {
            return Err(Error::InvalidLadder(format!(
                "{} bit/s is outside {MIN_BITRATE}..={MAX_BITRATE}",
                params.bitrate
            )));
        }
        let enc = Encoder::new(FdkParams {
            bit_rate: BitRate::Cbr(params.bitrate),
            sample_rate: SAMPLE_RATE,
            transport: Transport::Raw,
            channels: ChannelMode::Stereo,
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| Error::Encode(e.to_string()))?;
        let info = enc.info().map_err(|e| Error::Encode(e.to_string()))?;
        if info.frameLength != FRAME_SAMPLES {
            return Err(Error::Encode(format!("unexpected frame length {}", info.frameLength)));
        }
        let conf_len = (info.confSize as usize).min(info.confBuf.len());
        let config = TrackConfig { audio_specific_config: info.confBuf[..conf_len].to_vec(), bitrate: params.bitrate };
        Ok(AacEncoder {
            enc,
            config,
            priming_left: u64::from(info.nDelay).div_ceil(u64::from(FRAME_SAMPLES)),
            lead_in: Vec::new(),
            samples_in: 0,
            frames_out: 0,
            out: vec![0; (info.maxOutBufBytes as usize).max(8192)],
        })
    }

    /// The frame before frame 0, which a decoder needs to decode frame 0 exactly (the MDCT
    /// overlaps); empty until the encoder's delay has passed.
    pub fn lead_in(&self) -> &[u8] {
        &self.lead_in
    }

    /// The AudioSpecificConfig and bitrate, for the init segment.
    pub fn config(&self) -> &TrackConfig {
        &self.config
    }

    /// Encodes interleaved stereo i16; `frame` receives each finished AAC frame, in order.
    pub fn encode(&mut self, interleaved: &[i16], frame: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.samples_in += (interleaved.len() / usize::from(CHANNELS)) as u64;
        self.feed(interleaved, frame)
    }

    /// Flushes the encoder with silence until every input sample is in a frame: the total
    /// is `ceil(samples / 1024)` frames.
    pub fn finish(&mut self, frame: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let wanted = self.samples_in.div_ceil(u64::from(FRAME_SAMPLES));
        let silence = [0i16; FRAME_LEN];
        // Each frame of silence yields one more frame; the bound only guards against a
        // misbehaving encoder.
        for _ in 0..(wanted + self.priming_left + 8) {
            if self.frames_out >= wanted {
                return Ok(());
            }
            self.feed_limited(&silence, wanted, frame)?;
        }
        Err(Error::Encode("encoder did not flush".into()))
    }

    fn feed(&mut self, input: &[i16], frame: &mut impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.feed_limited(input, u64::MAX, frame)
    }

    /// Feeds `input`, handing out frames after priming and at most up to `limit` in total.
    fn feed_limited(
        &mut self,
        mut input: &[i16],
        limit: u64,
        frame: &mut impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        while !input.is_empty() {
            let info = self.enc.encode(input, &mut self.out).map_err(|e| Error::Encode(e.to_string()))?;
            if info.input_consumed == 0 && info.output_size == 0 {
                return Err(Error::Encode("encoder made no progress".into()));
            }
            input = input.get(info.input_consumed..).unwrap_or_default();
            if info.output_size > 0 {
                if self.priming_left > 0 {
                    self.priming_left -= 1;
                    if self.priming_left == 0 {
                        self.lead_in = self.out[..info.output_size].to_vec();
                    }
                } else if self.frames_out < limit {
                    self.frames_out += 1;
                    frame(&self.out[..info.output_size])?;
                }
            }
        }
        Ok(())
    }
}

/// Interleaves 48 kHz stereo `f32` (full scale ±1.0) into `i16`, clamping overs.
pub fn interleave_i16(left: &[f32], right: &[f32], out: &mut Vec<i16>) {
    // `as` saturates, so overs clamp to the 16-bit range; ties round to even, which
    // compiles to one vector instruction where `round` would call libm per sample.
    let to_i16 = |x: f32| (x * 32_768.0).round_ties_even() as i16;
    out.clear();
    out.resize(left.len().min(right.len()) * 2, 0);
    for ((pair, &l), &r) in out.chunks_exact_mut(2).zip(left).zip(right) {
        pair[0] = to_i16(l);
        pair[1] = to_i16(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_frames(samples: usize) -> u64 {
        let mut enc = AacEncoder::new(&EncoderParams { bitrate: 128_000 }).unwrap();
        let mut n = 0u64;
        let input = vec![0i16; samples * 2];
        enc.encode(&input, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        enc.finish(&mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    }

    #[test]
    fn frame_count_covers_input_exactly() {
        assert_eq!(count_frames(1), 1);
        assert_eq!(count_frames(1024), 1);
        assert_eq!(count_frames(1025), 2);
        assert_eq!(count_frames(24 * 1024 + 17), 25);
    }

    #[test]
    fn audio_specific_config_is_aac_lc_48k_stereo() {
        let enc = AacEncoder::new(&EncoderParams { bitrate: 256_000 }).unwrap();
        // object type 2 (5 bits), frequency index 3 (4 bits), channel config 2 (4 bits).
        assert_eq!(&enc.config().audio_specific_config[..2], &[0x11, 0x90]);
    }

    #[test]
    fn bitrate_out_of_range_is_rejected() {
        assert!(AacEncoder::new(&EncoderParams { bitrate: 1_000 }).is_err());
        assert!(AacEncoder::new(&EncoderParams { bitrate: 10_000_000 }).is_err());
    }

    #[test]
    fn interleave_clamps() {
        let mut out = Vec::new();
        interleave_i16(&[2.0, -0.5], &[-2.0, 0.0], &mut out);
        assert_eq!(out, vec![32_767, -32_768, -16_384, 0]);
    }
}
