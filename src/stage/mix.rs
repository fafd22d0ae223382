//! Summing the stage's voices: each voice's gain envelope, the GM volume, and a peak
//! limiter that keeps the sum under full scale. Pure functions over sample buffers.

use super::{tick, Bus, Voice};
use crate::room::ambience::TickStep;

/// The mix's true peak (4× oversampled, as BS.1770 measures it) never exceeds this
/// (−1.5 dBTP): with the encoder's own overshoot, what a listener decodes stays under −1 dBTP.
pub const CEILING: f32 = 0.841;
/// The limiter sees a peak this many samples ahead and lowers its gain over them (1 ms).
const LOOKAHEAD: usize = 48;
/// After a peak the limiter's gain recovers with this time constant, in samples (50 ms).
const RELEASE_SAMPLES: f32 = 2_400.0;
/// Taps of each interpolating phase of the true-peak meter, half before the sample and half after.
const TAPS: usize = 12;
/// Samples between which the true-peak meter looks for peaks at ¼, ½ and ¾.
const PHASES: usize = 3;
/// The meter checks blocks of this many sample pairs, and skips a block whose neighbourhood
/// is too quiet to reach the ceiling between samples.
const BLOCK: usize = 64;

/// Mixes `voices` (each with its decoded audio over the same window: interleaved stereo,
/// `len` sample pairs) over the grid samples `[start, start + len)`: music and ambience
/// scaled by `duck(grid sample)`, the sum by `volume(grid sample)`, the calibration clicks
/// of `ticks` added on top, then limited. `out` is cleared and filled, interleaved stereo.
pub fn mix(
    start: u64,
    len: usize,
    voices: &[(&Voice, &[f32])],
    volume: impl Fn(u64) -> f32,
    duck: impl Fn(u64) -> f32,
    ticks: &[TickStep],
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(len * 2, 0.0);
    for (voice, pcm) in voices {
        let ducked = voice.bus != Bus::Effects;
        for (i, (sum, lr)) in out.chunks_exact_mut(2).zip(pcm.chunks_exact(2)).enumerate() {
            let s = start + i as u64;
            let gain = if ducked { voice.gain(s) * duck(s) } else { voice.gain(s) };
            if gain > 0.0 {
                sum[0] += gain * lr[0];
                sum[1] += gain * lr[1];
            }
        }
    }
    for (i, sum) in out.chunks_exact_mut(2).enumerate() {
        let gain = volume(start + i as u64);
        sum[0] *= gain;
        sum[1] *= gain;
    }
    tick::add_clicks(ticks, start, out);
    limit(out);
}

/// Keeps interleaved stereo's true peak under [`CEILING`]: the gain falls smoothly over
/// the [`LOOKAHEAD`] samples before a peak (never below what the peak needs) and recovers
/// with [`RELEASE_SAMPLES`]. Audio already under the ceiling is left untouched.
pub fn limit(pcm: &mut [f32]) {
    let need: Vec<f32> =
        true_peaks(pcm).into_iter().map(|peak| if peak > CEILING { CEILING / peak } else { 1.0 }).collect();
    if need.iter().all(|&g| g >= 1.0) {
        return;
    }
    let recover = 1.0 - (-1.0 / RELEASE_SAMPLES).exp();
    // The lowest need within the next LOOKAHEAD samples, then released slowly.
    let mut held = Vec::with_capacity(need.len());
    let mut gain = 1.0f32;
    for i in 0..need.len() {
        let ahead = need[i..need.len().min(i + LOOKAHEAD + 1)].iter().copied().fold(1.0, f32::min);
        gain = ahead.min(gain + (1.0 - gain) * recover);
        held.push(gain);
    }
    // Averaging the last LOOKAHEAD + 1 held gains turns each drop into a ramp; every one of
    // them already allows for sample i, so the average does too.
    let mut sum = 0.0f32;
    for i in 0..held.len() {
        sum += held[i];
        if i > LOOKAHEAD {
            sum -= held[i - LOOKAHEAD - 1];
        }
        let count = (i + 1).min(LOOKAHEAD + 1) as f32;
        let g = (sum / count).min(need[i]);
        pcm[2 * i] *= g;
        pcm[2 * i + 1] *= g;
    }
}

/// Per sample pair of interleaved stereo, the highest level of either channel at the sample
/// or between it and the next (at ¼, ½ and ¾, interpolated by a windowed sinc): the signal a
/// decoder reconstructs peaks there, up to 3 dB above its samples.
pub fn true_peaks(pcm: &[f32]) -> Vec<f32> {
    let n = pcm.len() / 2;
    let mut peaks: Vec<f32> = pcm.chunks_exact(2).map(|lr| lr[0].abs().max(lr[1].abs())).collect();
    let filter = interpolator();
    // Between samples the signal exceeds its neighbourhood's peak by at most the filter's gain.
    let gain = filter.iter().map(|h| h.iter().map(|x| x.abs()).sum::<f32>()).fold(0.0, f32::max);
    let half = TAPS / 2;
    // Each channel on its own, with silence around it: sample i's taps are `[i, i + TAPS)`.
    let mut channels: Option<[Vec<f32>; 2]> = None;
    for block in (0..n).step_by(BLOCK) {
        let end = (block + BLOCK).min(n);
        let near = &peaks[block.saturating_sub(half)..(end + half).min(n)];
        if near.iter().fold(0.0f32, |m, &x| m.max(x)) * gain <= CEILING {
            continue;
        }
        let channels = channels.get_or_insert_with(|| {
            [0, 1].map(|ch| {
                let mut padded = vec![0.0; half - 1];
                padded.extend(pcm.iter().skip(ch).step_by(2));
                padded.extend([0.0; TAPS]);
                padded
            })
        });
        for (i, peak) in peaks.iter_mut().enumerate().take(end).skip(block) {
            for channel in channels.iter() {
                let Some(taps) = channel.get(i..i + TAPS) else { continue };
                for h in &filter {
                    let y: f32 = h.iter().zip(taps).map(|(c, x)| c * x).sum();
                    *peak = peak.max(y.abs());
                }
            }
        }
    }
    peaks
}

/// The interpolating filters of the true-peak meter: for each phase k of [`PHASES`], the
/// taps that give the signal at i + k/4 from samples i + 1 − TAPS/2 ..= i + TAPS/2
/// (a sinc under a Hann window).
fn interpolator() -> [[f32; TAPS]; PHASES] {
    let mut filter = [[0.0; TAPS]; PHASES];
    for (k, h) in filter.iter_mut().enumerate() {
        let frac = (k + 1) as f64 / (PHASES + 1) as f64;
        for (t, c) in h.iter_mut().enumerate() {
            let x = t as f64 + 1.0 - (TAPS / 2) as f64 - frac;
            let sinc = if x == 0.0 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
            let window = 0.5 + 0.5 * (std::f64::consts::PI * x / (TAPS / 2) as f64).cos();
            *c = (sinc * window) as f32;
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::timeline::TrackRef;
    use crate::stage::Fade;

    fn voice(enter: Fade, leave: Option<Fade>) -> Voice {
        let track = TrackRef {
            id: crate::ids::TrackId(1),
            fingerprint: String::new(),
            relpath: vec![],
            parts: None,
            samples: None,
            duration_ms: 0,
            loudness_lufs: None,
            gain_db: 0.0,
        };
        Voice {
            track,
            origin: 0,
            enter,
            leave,
            level: Vec::new(),
            loop_samples: None,
            seamless: false,
            bus: Bus::Music,
            trim: 1.0,
        }
    }

    fn constant(len: usize, level: f32) -> Vec<f32> {
        vec![level; len * 2]
    }

    #[test]
    fn voices_add_with_their_gains_and_the_volume() {
        let full = voice(Fade { at: 0, len: 0 }, None);
        let (a, b) = (constant(100, 0.2), constant(100, 0.1));
        let mut out = Vec::new();
        mix(0, 100, &[(&full, &a), (&full, &b)], |_| 0.5, |_| 1.0, &[], &mut out);
        assert!(out.iter().all(|&x| (x - 0.15).abs() < 1e-6));
        // A voice that has not come in yet adds nothing.
        let later = voice(Fade { at: 1000, len: 0 }, None);
        mix(0, 100, &[(&later, &a)], |_| 1.0, |_| 1.0, &[], &mut out);
        assert!(out.iter().all(|&x| x == 0.0));
        // Ducking lowers music, not effects: 0.2 × 0.5 + 0.1.
        let effect = Voice { bus: Bus::Effects, ..full.clone() };
        mix(0, 100, &[(&full, &a), (&effect, &b)], |_| 1.0, |_| 0.5, &[], &mut out);
        assert!(out.iter().all(|&x| (x - 0.2).abs() < 1e-6));
    }

    #[test]
    fn the_limiter_keeps_the_sum_under_the_ceiling_without_jumps() {
        // Two loud sines crossfading at equal power peak well over full scale.
        let n = 48_000;
        let mut pcm: Vec<f32> = (0..n)
            .flat_map(|i| {
                let x = 1.3 * (i as f32 * 0.05).sin() * if (20_000..30_000).contains(&i) { 1.0 } else { 0.5 };
                [x, -x]
            })
            .collect();
        let before = pcm.clone();
        limit(&mut pcm);
        let peak = pcm.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(peak <= CEILING + 1e-6, "peak {peak}");
        // The gain changes smoothly: by less than 1 % per sample.
        let gains: Vec<(usize, f32)> = pcm
            .iter()
            .zip(&before)
            .step_by(2)
            .enumerate()
            .filter(|(_, (_, b))| b.abs() > 0.1)
            .map(|(i, (a, b))| (i, a / b))
            .collect();
        let steepest = gains.windows(2).map(|w| (w[1].1 - w[0].1).abs() / (w[1].0 - w[0].0) as f32).fold(0.0, f32::max);
        assert!(steepest < 0.01, "the gain jumps by {steepest} per sample");
        // Quiet audio is untouched.
        let mut quiet = constant(1000, 0.5);
        limit(&mut quiet);
        assert!(quiet.iter().all(|&x| x == 0.5));
    }

    #[test]
    fn the_limiter_catches_peaks_between_samples() {
        // A quarter-rate sine sampled 45° off its crests: every sample is at 0.707 of its
        // amplitude, so 1.1 samples at 0.78, under the ceiling, and peaks at 1.1 between them.
        let sine: Vec<f32> = (0..4_800)
            .flat_map(|i| {
                let x = 1.1 * (std::f32::consts::FRAC_PI_2 * i as f32 + std::f32::consts::FRAC_PI_4).sin();
                [x, x]
            })
            .collect();
        assert!(sine.iter().all(|x| x.abs() < CEILING));
        let peaks = true_peaks(&sine);
        let middle = &peaks[100..4_700];
        // A crest lies between every other pair of samples.
        assert!(middle.iter().all(|&p| p < 1.13), "no peak higher than the sine's");
        let crests = middle.windows(2).map(|w| w[0].max(w[1]));
        assert!(crests.clone().all(|p| p > 1.07), "the meter sees the peaks between samples");
        let mut limited = sine.clone();
        limit(&mut limited);
        let after = true_peaks(&limited);
        assert!(
            after.iter().all(|&p| p <= CEILING * 1.01),
            "limited to {:?}",
            after.iter().copied().fold(0.0f32, f32::max)
        );
        assert!(after[2_000] > CEILING * 0.95, "and no lower than it needs");
    }
}
