//! Any bytes as a part to re-stamp: an error is fine, a panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let silence = segmenter::fmp4::write_part(1, 0, &[[0u8; 6]; 24]).unwrap_or_default();
    let _ = segmenter::restamp(data, 1, u64::MAX, &silence);
});
