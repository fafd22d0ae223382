//! Any bytes through the whole pipeline (probe, decode, resample, encode, mux): an error is
//! fine, a panic or a hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use segmenter::{segment_bytes, EncoderParams, Part, PartSink, Result};

struct Discard;

impl PartSink for Discard {
    fn part(&mut self, _: usize, _: Part) -> Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = segment_bytes(data.to_vec(), &[EncoderParams { bitrate: 64_000 }], &mut Discard);
});
