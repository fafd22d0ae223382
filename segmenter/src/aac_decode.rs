//! Decoding our own AAC-LC frames back to PCM, so the room's stage can mix cached tracks.
//!
//! An AAC frame overlaps the one before it (MDCT): decoded alone, its first half is wrong.
//! [`decode_frames`] therefore takes the frame before the wanted ones and drops its output.

use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoderOptions};
use symphonia::core::packet::Packet;
use symphonia::core::units::{Duration, Timestamp};

use crate::error::{Error, Result};
use crate::units::{CHANNELS, FRAME_SAMPLES, SAMPLE_RATE};

/// Interleaved stereo samples in one decoded frame.
const FRAME_LEN: usize = FRAME_SAMPLES as usize * CHANNELS as usize;

/// Decodes raw AAC frames (as in our parts' `mdat`) with the stream's AudioSpecificConfig.
/// The first `priming` frames (1, or 0 at a track's start) only prime the decoder; the
/// others' samples are appended to `out`, interleaved stereo, full scale ±1.0. A frame that
/// fails to decode gives silence of its length, so `out` always grows by
/// `(frames.len() - priming) × 1024` sample pairs.
pub fn decode_frames<F: AsRef<[u8]>>(
    audio_specific_config: &[u8],
    frames: &[F],
    priming: usize,
    out: &mut Vec<f32>,
) -> Result<()> {
    let mut params = AudioCodecParameters::new();
    params
        .for_codec(CODEC_ID_AAC)
        .with_sample_rate(SAMPLE_RATE)
        .with_extra_data(audio_specific_config.to_vec().into_boxed_slice());
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| Error::Decode(format!("AAC config: {e}")))?;
    let mut pcm = Vec::with_capacity(FRAME_LEN);
    for (i, frame) in frames.iter().enumerate() {
        let packet = Packet::new(
            0,
            Timestamp::new(i as i64 * i64::from(FRAME_SAMPLES)),
            Duration::new(u64::from(FRAME_SAMPLES)),
            frame.as_ref(),
        );
        pcm.clear();
        if let Ok(buf) = decoder.decode(&packet) {
            if buf.spec().channels().count() == usize::from(CHANNELS) && buf.samples_interleaved() == FRAME_LEN {
                pcm.resize(FRAME_LEN, 0.0);
                buf.copy_to_slice_interleaved(&mut pcm);
            }
        }
        pcm.resize(FRAME_LEN, 0.0);
        if i >= priming {
            out.extend_from_slice(&pcm);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{interleave_i16, AacEncoder};
    use crate::EncoderParams;

    /// A 440 Hz sine, encoded and decoded, comes back at the same place and level.
    #[test]
    fn a_sine_survives_encode_and_decode_in_place() {
        let n = 20 * FRAME_SAMPLES as usize;
        let tone: Vec<f32> =
            (0..n).map(|i| 0.5 * (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin()).collect();
        let mut pcm = Vec::new();
        interleave_i16(&tone, &tone, &mut pcm);
        let mut encoder = AacEncoder::new(&EncoderParams { bitrate: 256_000 }).unwrap();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let mut keep = |f: &[u8]| {
            frames.push(f.to_vec());
            Ok(())
        };
        encoder.encode(&pcm, &mut keep).unwrap();
        encoder.finish(&mut keep).unwrap();
        assert_eq!(frames.len(), 20);

        // Frames 5..15, primed by frame 4.
        let mut out = Vec::new();
        decode_frames(&encoder.config().audio_specific_config, &frames[4..15], 1, &mut out).unwrap();
        assert_eq!(out.len(), 10 * FRAME_LEN);
        let first = 5 * FRAME_SAMPLES as usize;
        let error =
            out.chunks_exact(2).enumerate().map(|(i, lr)| (lr[0] - tone[first + i]).abs()).fold(0.0f32, f32::max);
        assert!(error < 0.005, "largest difference from the source {error}");

        // The track's first frame: exact only after the frame the encoder dropped before it.
        let first_error = |frames: &[Vec<u8>], priming: usize| {
            let mut out = Vec::new();
            decode_frames(&encoder.config().audio_specific_config, frames, priming, &mut out).unwrap();
            out.chunks_exact(2).take(1024).enumerate().map(|(i, lr)| (lr[0] - tone[i]).abs()).fold(0.0f32, f32::max)
        };
        let primed: Vec<Vec<u8>> = std::iter::once(encoder.lead_in().to_vec()).chain(frames[..2].to_vec()).collect();
        assert!(first_error(&primed, 1) < 0.01);
        assert!(first_error(&frames[..2], 0) > 0.05, "without it the first frame fades in");
    }

    #[test]
    fn garbage_frames_give_silence_not_a_panic() {
        let encoder = AacEncoder::new(&EncoderParams { bitrate: 96_000 }).unwrap();
        let frames = [vec![0xffu8; 7], vec![], vec![1, 2, 3]];
        let mut out = Vec::new();
        decode_frames(&encoder.config().audio_specific_config, &frames, 1, &mut out).unwrap();
        assert_eq!(out.len(), 2 * FRAME_LEN);
        assert!(decode_frames(&[0xff], &frames, 0, &mut out).is_err());
    }
}
