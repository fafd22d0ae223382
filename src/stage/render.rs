//! Rendering one live part: the cached parts of every voice are decoded, mixed and encoded
//! once per rendition, with [`super::WARM_FRAMES`] before and [`super::LOOKAHEAD_FRAMES`]
//! after the part so that it joins its neighbours seamlessly.

use std::path::PathBuf;

use bytes::Bytes;
use segmenter::encode::AacEncoder;
use segmenter::{EncoderParams, FRAME_SAMPLES, PART_FRAMES, PART_SAMPLES};

use super::{duck_glides, glide_at, mix, tick, voices, volume_at, window, Voice};
use crate::cache::{SegmentCache, SourceKey};
use crate::room::timeline::Timeline;
use crate::room::Error;

/// Renders live parts from the timeline and the segment cache; cheap to clone.
#[derive(Clone)]
pub struct Renderer {
    cache: SegmentCache,
    music_dir: PathBuf,
    /// The AudioSpecificConfig of rendition 0, whose cached parts voices are decoded from.
    source_config: Vec<u8>,
}

/// A stretch of one track's samples, as AAC frames ready to decode, and where in the window
/// it goes.
struct Run {
    /// Sample pairs into the window.
    dest: usize,
    frames: Vec<Vec<u8>>,
    /// Frames that only prime the decoder (0 or 1).
    priming: usize,
    /// Decoded samples to drop before the run's first (its start within its first frame).
    skip: usize,
    /// Samples in the run.
    count: usize,
}

/// One voice's audio over the window, still encoded.
struct VoiceFrames {
    voice: Voice,
    runs: Vec<Run>,
}

/// A loop shorter than this (samples) plays once: 2 frames.
const MIN_LOOP_SAMPLES: u64 = 2 * FRAME_SAMPLES as u64;

impl Renderer {
    pub fn new(cache: SegmentCache, music_dir: PathBuf) -> Result<Self, String> {
        let top = cache.ladder().first().ok_or("the bitrate ladder is empty")?;
        let source_config = AacEncoder::new(top).map_err(|e| e.to_string())?.config().audio_specific_config.clone();
        Ok(Renderer { cache, music_dir, source_config })
    }

    /// Grid part `part` of every rendition (`tfdt` = part × 24576), or `None` when nothing
    /// (not even the calibration tick) sounds in it: the caller serves silence without encoding.
    pub async fn render(&self, timeline: &Timeline, part: u64) -> Result<Option<Vec<Bytes>>, Error> {
        let (start, end) = window(part);
        let voices = voices(timeline, start, end);
        if voices.is_empty() && !tick::ticks_in(&timeline.tick_steps, start, end) {
            return Ok(None);
        }
        let len = (end - start) as usize;
        let mut fetched = Vec::with_capacity(voices.len());
        for voice in voices {
            fetched.push(self.fetch(voice, start, len).await);
        }
        let steps = timeline.volume_steps.clone();
        let current = timeline.volume;
        let duck = duck_glides(&timeline.duck_steps);
        let ticks = timeline.tick_steps.clone();
        let ladder = self.cache.ladder().to_vec();
        let config = self.source_config.clone();
        tokio::task::spawn_blocking(move || {
            let decoded: Vec<Vec<f32>> = fetched.iter().map(|v| decode(&config, &v.runs, len)).collect();
            let inputs: Vec<(&Voice, &[f32])> =
                fetched.iter().zip(&decoded).map(|(v, pcm)| (&v.voice, pcm.as_slice())).collect();
            let mut pcm = Vec::new();
            let volume = |s| volume_at(&steps, current, s);
            mix::mix(start, len, &inputs, volume, |s| glide_at(&duck, s), &ticks, &mut pcm);
            let pcm = to_i16(&pcm);
            // Whole frames of the window before the part (fewer than WARM_FRAMES only at the epoch).
            let before = ((part * u64::from(PART_SAMPLES) - start) / u64::from(FRAME_SAMPLES)) as usize;
            ladder.iter().map(|params| encode_part(params, &pcm, before, part)).collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| Error::Internal(format!("rendering part {part}: {e}")))?
        .map(Some)
    }

    /// The cached frames `voice` plays in the window of `len` samples from grid sample
    /// `start`; a looped voice comes back to its first sample after its last. A part missing
    /// past the track's end, or a track that cannot be decoded, ends the voice early: it falls
    /// silent rather than failing the part.
    async fn fetch(&self, voice: Voice, start: u64, len: usize) -> VoiceFrames {
        let key = SourceKey {
            fingerprint: voice.track.fingerprint.clone(),
            path: crate::library::file_path(&self.music_dir, &voice.track.relpath),
        };
        let first = voice.track_sample(start);
        let mut dest = usize::try_from(-first).unwrap_or(0).min(len);
        let loop_len = voice.loop_samples.filter(|&n| n >= MIN_LOOP_SAMPLES);
        let mut from = first.max(0) as u64;
        if let Some(n) = loop_len {
            from %= n;
        }
        let mut runs = Vec::new();
        while dest < len {
            let count = match loop_len {
                Some(n) => (len - dest).min((n - from) as usize),
                None => len - dest,
            };
            runs.push(self.fetch_run(&key, from, count, dest, voice.seamless).await);
            dest += count;
            from = 0;
            if loop_len.is_none() {
                break;
            }
        }
        VoiceFrames { voice, runs }
    }

    /// Track samples `[from, from + count)`, bound for window sample `dest`; `seamless`: a
    /// run from the track's first sample continues audio before it.
    async fn fetch_run(&self, key: &SourceKey, from: u64, count: usize, dest: usize, seamless: bool) -> Run {
        let frame = u64::from(FRAME_SAMPLES);
        let first_frame = from / frame;
        let before = usize::from(first_frame > 0);
        let first_fetched = first_frame - before as u64;
        // A loop's first frame is primed by the frame the encoder dropped before it, so that
        // the loop comes round without a 21 ms fade-in. A layer's track was encoded whole
        // before it was added, and a repeated track before it came round, so that frame is
        // known whenever the part renders. (A track that starts plays its first 21 ms faded
        // in, as it always did.)
        let mut frames: Vec<Vec<u8>> = match first_frame {
            0 if seamless => self.cache.known_lead_in(key).map(|l| l.to_vec()).into_iter().collect(),
            _ => Vec::new(),
        };
        let priming = before + frames.len();
        let wanted = ((from + count as u64).div_ceil(frame) - first_fetched) as usize + frames.len();
        let part_frames = u64::from(PART_FRAMES);
        let mut index = first_fetched / part_frames;
        while frames.len() < wanted {
            let bytes = match self.cache.part(key, 0, index).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "a track part is unavailable; the voice falls silent");
                    break;
                }
            };
            let Ok(parsed) = segmenter::fmp4::parse_part(&bytes) else { break };
            let skip = if index == first_fetched / part_frames { (first_fetched % part_frames) as usize } else { 0 };
            let room = wanted - frames.len();
            frames.extend(parsed.frames.iter().skip(skip).take(room).map(|f| f.to_vec()));
            index += 1;
        }
        Run { dest, priming: priming.min(frames.len()), skip: (from % frame) as usize, count, frames }
    }
}

/// A voice's audio over the whole window (`len` sample pairs), silent where it has none.
fn decode(config: &[u8], runs: &[Run], len: usize) -> Vec<f32> {
    let mut pcm = vec![0.0; len * 2];
    let mut decoded = Vec::new();
    for run in runs {
        decoded.clear();
        if let Err(e) = segmenter::aac_decode::decode_frames(config, &run.frames, run.priming, &mut decoded) {
            tracing::warn!(error = %e, "a voice could not be decoded; it falls silent");
            continue;
        }
        // Fewer samples than asked for (none, past the track's end): the rest stays silent.
        let have = (decoded.len() / 2).saturating_sub(run.skip).min(run.count);
        let src = decoded.get(run.skip * 2..(run.skip + have) * 2);
        if let (Some(src), Some(dest)) = (src, pcm.get_mut(run.dest * 2..(run.dest + have) * 2)) {
            dest.copy_from_slice(src);
        }
    }
    pcm
}

/// Full-scale ±1.0 to 16 bits; overs were limited, rounding clamps the rest.
fn to_i16(pcm: &[f32]) -> Vec<i16> {
    pcm.iter().map(|&x| (x * 32_768.0).round_ties_even() as i16).collect()
}

/// Encodes the window and keeps the part's own 24 frames, which follow `before` frames.
fn encode_part(params: &EncoderParams, pcm: &[i16], before: usize, part: u64) -> Result<Bytes, Error> {
    let internal = |e: segmenter::Error| Error::Internal(format!("encoding part {part}: {e}"));
    let mut encoder = AacEncoder::new(params).map_err(internal)?;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut keep = |f: &[u8]| {
        frames.push(f.to_vec());
        Ok(())
    };
    encoder.encode(pcm, &mut keep).map_err(internal)?;
    encoder.finish(&mut keep).map_err(internal)?;
    let own = frames
        .get(before..before + PART_FRAMES as usize)
        .ok_or_else(|| Error::Internal(format!("encoding part {part}: too few frames")))?;
    let sequence = (part & u64::from(u32::MAX)) as u32;
    let bytes = segmenter::fmp4::write_part(sequence, part * u64::from(PART_SAMPLES), own).map_err(internal)?;
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_fewer_samples_than_it_skips_is_silence() {
        // AAC-LC, 48 kHz, stereo. A run past a track's last part has no frames at all.
        let config = [0x11, 0x90];
        let run = Run { dest: 10, frames: Vec::new(), priming: 0, skip: 1464, count: 100 };
        assert_eq!(decode(&config, &[run], 200), vec![0.0; 400]);
    }
}
