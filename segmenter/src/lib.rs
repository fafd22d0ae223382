//! Decode a track, encode AAC-LC and cut it into CMAF parts on bardcast's time grid.
//!
//! Filled by the segmenter issue; for now it holds the grid constants the server shares.

/// Output sample rate in Hz.
pub const SAMPLE_RATE: u32 = 48_000;
