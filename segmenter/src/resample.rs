//! Sample-rate conversion to 48 kHz with rubato, streaming, with the filter delay trimmed so
//! that output sample 0 is input sample 0.

use audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Async, Fft, FixedAsync, FixedSync, Indexing, SincInterpolationParameters};

use crate::error::{Error, Result};
use crate::units::SAMPLE_RATE;

/// Input frames per resampler call.
const CHUNK: usize = 1024;
/// Largest input block (`rate / gcd(rate, 48000)`) for which the FFT resampler is used;
/// above it (odd rates such as 44 101 Hz) the sinc resampler avoids huge FFTs.
const MAX_FFT_BLOCK: usize = 4_800;

/// Converts stereo audio at one rate to 48 kHz. At 48 kHz it passes samples through.
pub struct Resampler {
    inner: Option<Box<dyn rubato::Resampler<f32>>>,
    rate: u32,
    pending: Vec<Vec<f32>>,
    out: Vec<Vec<f32>>,
    /// Output frames still to drop: the resampler's startup delay.
    delay: usize,
    input_total: u64,
    output_total: u64,
}

impl Resampler {
    /// A resampler from `rate` Hz to 48 kHz.
    pub fn new(rate: u32) -> Result<Self> {
        let inner: Option<Box<dyn rubato::Resampler<f32>>> = if rate == SAMPLE_RATE {
            None
        } else {
            let (rin, rout) = (rate as usize, SAMPLE_RATE as usize);
            let block = rin / gcd(rin, rout);
            let r: Box<dyn rubato::Resampler<f32>> = if block <= MAX_FFT_BLOCK {
                Box::new(
                    Fft::<f32>::new(rin, rout, CHUNK, 2, FixedSync::Input)
                        .map_err(|e| Error::Resample(e.to_string()))?,
                )
            } else {
                Box::new(
                    Async::<f32>::new_sinc(
                        rout as f64 / rin as f64,
                        1.0,
                        &SincInterpolationParameters::default(),
                        CHUNK,
                        2,
                        FixedAsync::Input,
                    )
                    .map_err(|e| Error::Resample(e.to_string()))?,
                )
            };
            Some(r)
        };
        let (delay, out_len) = inner.as_ref().map_or((0, 0), |r| (r.output_delay(), r.output_frames_max()));
        Ok(Resampler {
            inner,
            rate,
            pending: vec![Vec::new(), Vec::new()],
            out: vec![vec![0.0; out_len]; 2],
            delay,
            input_total: 0,
            output_total: 0,
        })
    }

    /// Output frames the input seen so far should give: `ceil(input * 48000 / rate)`.
    fn expected_output(&self) -> u64 {
        (u128::from(self.input_total) * u128::from(SAMPLE_RATE)).div_ceil(u128::from(self.rate)) as u64
    }

    /// Feeds stereo input; `emit(left, right)` receives 48 kHz output as it becomes ready.
    pub fn push(
        &mut self,
        left: &[f32],
        right: &[f32],
        emit: &mut impl FnMut(&[f32], &[f32]) -> Result<()>,
    ) -> Result<()> {
        self.input_total += left.len() as u64;
        if self.inner.is_none() {
            self.output_total += left.len() as u64;
            return emit(left, right);
        }
        self.pending[0].extend_from_slice(left);
        self.pending[1].extend_from_slice(right);
        let mut offset = 0;
        while let Some(needed) = self.inner.as_ref().map(|r| r.input_frames_next()) {
            if self.pending[0].len() - offset < needed {
                break;
            }
            offset += self.process(offset, None, emit)?;
        }
        self.pending.iter_mut().for_each(|p| {
            p.drain(..offset);
        });
        Ok(())
    }

    /// Flushes the tail; total output is exactly `ceil(input * 48000 / rate)` frames.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[f32], &[f32]) -> Result<()>) -> Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        let rest = self.pending[0].len();
        if rest > 0 {
            self.process(0, Some(rest), emit)?;
            self.pending.iter_mut().for_each(Vec::clear);
        }
        while self.output_total < self.expected_output() {
            self.process(0, Some(0), emit)?;
        }
        Ok(())
    }

    /// One resampler call on `pending[offset..]`; returns the input frames consumed.
    fn process(
        &mut self,
        offset: usize,
        partial: Option<usize>,
        emit: &mut impl FnMut(&[f32], &[f32]) -> Result<()>,
    ) -> Result<usize> {
        let expected = self.expected_output();
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let frames_in = self.pending[0].len();
        let input =
            SequentialSliceOfVecs::new(&self.pending, 2, frames_in).map_err(|e| Error::Resample(e.to_string()))?;
        let out_len = self.out[0].len();
        let mut output =
            SequentialSliceOfVecs::new_mut(&mut self.out, 2, out_len).map_err(|e| Error::Resample(e.to_string()))?;
        let mut indexing = Indexing::new().input_offset(offset);
        if let Some(n) = partial {
            indexing = indexing.partial_len(n);
        }
        let (consumed, produced) = inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| Error::Resample(e.to_string()))?;
        let skip = self.delay.min(produced);
        self.delay -= skip;
        // While flushing, stop at the exact expected length.
        let wanted = (expected.saturating_sub(self.output_total)) as usize;
        let end = if partial.is_some() { (skip + wanted).min(produced) } else { produced };
        if end > skip {
            self.output_total += (end - skip) as u64;
            emit(&self.out[0][skip..end], &self.out[1][skip..end])?;
        }
        Ok(consumed)
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: u32, frames: usize) -> (Vec<f32>, Vec<f32>) {
        let mut r = Resampler::new(rate).unwrap();
        let sine: Vec<f32> =
            (0..frames).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5).collect();
        let (mut l, mut rr) = (Vec::new(), Vec::new());
        let mut emit = |a: &[f32], b: &[f32]| {
            l.extend_from_slice(a);
            rr.extend_from_slice(b);
            Ok(())
        };
        for chunk in sine.chunks(777) {
            r.push(chunk, chunk, &mut emit).unwrap();
        }
        r.finish(&mut emit).unwrap();
        (l, rr)
    }

    #[test]
    fn output_length_is_exact() {
        for (rate, frames) in [(44_100, 44_100), (8_000, 12_345), (192_000, 5), (44_101, 30_000), (48_000, 999)] {
            let (l, r) = run(rate, frames);
            let want = (frames as u64 * 48_000).div_ceil(u64::from(rate)) as usize;
            assert_eq!(l.len(), want, "rate {rate}");
            assert_eq!(r.len(), want);
        }
    }

    #[test]
    fn delay_is_trimmed() {
        // A 440 Hz sine starting at phase 0 must still start near 0 and rise.
        let (l, _) = run(44_100, 44_100);
        let expect = |i: usize| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5;
        for i in [100usize, 1000, 20_000] {
            assert!((l[i] - expect(i)).abs() < 0.01, "sample {i}: {} vs {}", l[i], expect(i));
        }
    }
}
