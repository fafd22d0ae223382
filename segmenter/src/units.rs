//! The time grid: constants and newtypes for media time at 48 kHz.
//!
//! Everything after decoding is 48 000 Hz stereo. One AAC frame is 1024 samples, a part is
//! 24 frames (0.512 s) and a segment is 4 parts (2.048 s); both are whole milliseconds, so
//! program-date-times computed from them never drift.

use std::fmt;

/// Output sample rate in Hz.
pub const SAMPLE_RATE: u32 = 48_000;
/// Output channel count (stereo).
pub const CHANNELS: u16 = 2;
/// Samples (per channel) in one AAC-LC frame.
pub const FRAME_SAMPLES: u32 = 1024;
/// AAC frames in one part.
pub const PART_FRAMES: u32 = 24;
/// Samples (per channel) in one part: 24 frames of 1024.
pub const PART_SAMPLES: u32 = PART_FRAMES * FRAME_SAMPLES;
/// Parts in one segment.
pub const PARTS_PER_SEGMENT: u32 = 4;
/// Duration of one part in milliseconds (exact).
pub const PART_MS: u64 = 512;
/// Duration of one segment in milliseconds (exact).
pub const SEGMENT_MS: u64 = PART_MS * PARTS_PER_SEGMENT as u64;
/// Samples (per channel) in one segment.
pub const SEGMENT_SAMPLES: u32 = PART_SAMPLES * PARTS_PER_SEGMENT;

const _: () = assert!(PART_SAMPLES == 24_576);
const _: () = assert!(PART_MS * SAMPLE_RATE as u64 == PART_SAMPLES as u64 * 1000);
const _: () = assert!(SEGMENT_MS == 2048);

/// A duration or a position in samples per channel at [`SAMPLE_RATE`] (48 kHz).
///
/// Arithmetic is checked: `checked_*` return `None` on overflow instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Samples(pub u64);

impl Samples {
    /// Zero samples.
    pub const ZERO: Samples = Samples(0);

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Samples) -> Option<Samples> {
        self.0.checked_add(other.0).map(Samples)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Samples) -> Option<Samples> {
        self.0.checked_sub(other.0).map(Samples)
    }

    /// `self * n`, or `None` on overflow.
    pub fn checked_mul(self, n: u64) -> Option<Samples> {
        self.0.checked_mul(n).map(Samples)
    }

    /// AAC frames needed to hold this many samples (rounded up).
    pub fn frames_ceil(self) -> u64 {
        self.0.div_ceil(u64::from(FRAME_SAMPLES))
    }

    /// Parts needed to hold this many samples (rounded up).
    pub fn parts_ceil(self) -> u64 {
        self.0.div_ceil(u64::from(PART_SAMPLES))
    }

    /// Whole milliseconds, rounded down.
    pub fn as_millis(self) -> u64 {
        // u128: samples * 1000 does not fit u64 for epoch-sized positions.
        (u128::from(self.0) * 1000 / u128::from(SAMPLE_RATE)) as u64
    }

    /// Seconds as `f64`; for display and `#EXTINF` only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / f64::from(SAMPLE_RATE)
    }

    /// The start of part `index` on a part grid: `index * 24576`, or `None` on overflow.
    pub fn part_start(index: u64) -> Option<Samples> {
        index.checked_mul(u64::from(PART_SAMPLES)).map(Samples)
    }
}

impl fmt::Display for Samples {
    /// Seconds with five decimals, exact to the 10 µs (the form `#EXTINF` uses).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Integer math: 48 000 Hz divides 10^5 * samples exactly only sometimes, so round
        // half up on the integer numerator instead of going through f64.
        let rate = u128::from(SAMPLE_RATE);
        let scaled = (u128::from(self.0) * 100_000 + rate / 2) / rate;
        write!(f, "{}.{:05}", scaled / 100_000, scaled % 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_exact_in_milliseconds() {
        assert_eq!(Samples(u64::from(PART_SAMPLES)).as_millis(), PART_MS);
        assert_eq!(Samples(u64::from(SEGMENT_SAMPLES)).as_millis(), SEGMENT_MS);
    }

    #[test]
    fn display_has_five_decimals() {
        assert_eq!(Samples(u64::from(SEGMENT_SAMPLES)).to_string(), "2.04800");
        assert_eq!(Samples(u64::from(PART_SAMPLES)).to_string(), "0.51200");
        assert_eq!(Samples(1024).to_string(), "0.02133");
        assert_eq!(Samples(0).to_string(), "0.00000");
    }

    #[test]
    fn rounding_up_counts() {
        assert_eq!(Samples(0).frames_ceil(), 0);
        assert_eq!(Samples(1).frames_ceil(), 1);
        assert_eq!(Samples(1024).frames_ceil(), 1);
        assert_eq!(Samples(24_577).parts_ceil(), 2);
    }

    #[test]
    fn checked_arithmetic_does_not_wrap() {
        assert_eq!(Samples(u64::MAX).checked_add(Samples(1)), None);
        assert_eq!(Samples(1).checked_sub(Samples(2)), None);
        assert_eq!(Samples::part_start(u64::MAX), None);
        assert_eq!(Samples::part_start(2), Some(Samples(49_152)));
    }

    #[test]
    fn epoch_sized_positions_convert() {
        // Part number for 2026-11-25 is about 3.5e9; its sample position overflows u64 * 1000.
        let p = 3_500_000_000u64;
        let s = Samples::part_start(p).unwrap();
        assert_eq!(s.as_millis(), p * PART_MS);
    }
}
