//! CMAF fragmented MP4: the init segment, parts (`moof` + `mdat`) and re-stamping.
//!
//! Box layout is fixed and contains no times or names that vary, so the same encoder
//! configuration always gives byte-identical init segments.

use crate::error::{Error, Result};
use crate::units::{CHANNELS, FRAME_SAMPLES, PART_FRAMES, SAMPLE_RATE};

/// The single track's ID in every file we write.
const TRACK_ID: u32 = 1;
/// `tfhd` flags: default-sample-duration (0x08), default-sample-flags (0x20),
/// default-base-is-moof (0x020000).
const TFHD_FLAGS: u32 = 0x02_0028;
/// `trun` flags: data-offset-present (0x01), sample-size-present (0x200).
const TRUN_FLAGS: u32 = 0x00_0201;
/// Sample flags for a sync sample: sample_depends_on = 2 (depends on no other sample).
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// The identity matrix of `mvhd` and `tkhd` (16.16 and 2.30 fixed point).
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Writes boxes into a byte vector; sizes are patched when a box is closed.
struct BoxWriter {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl BoxWriter {
    fn new() -> Self {
        BoxWriter { buf: Vec::with_capacity(1024), open: Vec::new() }
    }

    fn start(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.u32(0);
        self.buf.extend_from_slice(kind);
    }

    fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.start(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00FF_FFFF));
    }

    /// Closes the innermost open box. Boxes we write are far below 4 GiB.
    fn end(&mut self) {
        if let Some(start) = self.open.pop() {
            let size = (self.buf.len() - start) as u32;
            self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
    }

    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// An MPEG-4 descriptor (ISO 14496-1) with a one-byte length; ours are all < 128 bytes.
    fn descriptor(&mut self, tag: u8, body: &[u8]) -> Result<()> {
        let len = u8::try_from(body.len())
            .ok()
            .filter(|&l| l < 0x80)
            .ok_or_else(|| Error::Encode(format!("descriptor {tag:#x} too long")))?;
        self.u8(tag);
        self.u8(len);
        self.bytes(body);
        Ok(())
    }

    fn finish(self) -> Vec<u8> {
        debug_assert!(self.open.is_empty());
        self.buf
    }
}

/// What the init segment says about the encoded stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    /// The AudioSpecificConfig bytes from the encoder (2 bytes for AAC-LC).
    pub audio_specific_config: Vec<u8>,
    /// Average (and maximum, for CBR) bitrate in bits per second, for `esds`.
    pub bitrate: u32,
}

/// Builds the init segment: `ftyp` + `moov` (with `mvex`), timescale 48 000, one AAC-LC
/// stereo track. No creation times: identical input gives identical bytes.
pub fn write_init(config: &TrackConfig) -> Result<Vec<u8>> {
    let mut w = BoxWriter::new();
    w.start(b"ftyp");
    w.bytes(b"iso6");
    w.u32(0);
    for brand in [b"iso6", b"cmfc", b"mp41"] {
        w.bytes(brand);
    }
    w.end();

    w.start(b"moov");
    w.start_full(b"mvhd", 0, 0);
    w.u32(0); // creation_time
    w.u32(0); // modification_time
    w.u32(SAMPLE_RATE); // timescale
    w.u32(0); // duration: unknown (fragmented)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    MATRIX.iter().for_each(|&m| w.u32(m));
    w.zeros(24); // pre_defined
    w.u32(TRACK_ID + 1); // next_track_ID
    w.end();

    w.start(b"trak");
    w.start_full(b"tkhd", 0, 0x03); // enabled, in movie
    w.u32(0);
    w.u32(0);
    w.u32(TRACK_ID);
    w.u32(0); // reserved
    w.u32(0); // duration
    w.zeros(8);
    w.u16(0); // layer
    w.u16(1); // alternate_group
    w.u16(0x0100); // volume 1.0
    w.u16(0);
    MATRIX.iter().for_each(|&m| w.u32(m));
    w.u32(0); // width
    w.u32(0); // height
    w.end();

    w.start(b"mdia");
    w.start_full(b"mdhd", 0, 0);
    w.u32(0);
    w.u32(0);
    w.u32(SAMPLE_RATE);
    w.u32(0);
    w.u16(0x55C4); // language "und", packed ISO 639-2/T
    w.u16(0);
    w.end();
    w.start_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(b"soun");
    w.zeros(12);
    w.bytes(b"SoundHandler\0");
    w.end();

    w.start(b"minf");
    w.start_full(b"smhd", 0, 0);
    w.u16(0); // balance
    w.u16(0);
    w.end();
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.u32(1);
    w.start_full(b"url ", 0, 1); // self-contained
    w.end();
    w.end();
    w.end();

    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.u32(1);
    write_mp4a(&mut w, config)?;
    w.end();
    for kind in [b"stts", b"stsc", b"stco"] {
        w.start_full(kind, 0, 0);
        w.u32(0);
        w.end();
    }
    w.start_full(b"stsz", 0, 0);
    w.u32(0); // sample_size
    w.u32(0); // sample_count
    w.end();
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak

    w.start(b"mvex");
    w.start_full(b"trex", 0, 0);
    w.u32(TRACK_ID);
    w.u32(1); // default_sample_description_index
    w.u32(FRAME_SAMPLES); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(SYNC_SAMPLE_FLAGS);
    w.end();
    w.end();
    w.end(); // moov
    Ok(w.finish())
}

/// `mp4a` sample entry with its `esds` (ISO 14496-14 and 14496-1).
fn write_mp4a(w: &mut BoxWriter, config: &TrackConfig) -> Result<()> {
    w.start(b"mp4a");
    w.zeros(6);
    w.u16(1); // data_reference_index
    w.zeros(8);
    w.u16(CHANNELS);
    w.u16(16); // samplesize
    w.u16(0);
    w.u16(0);
    w.u32(SAMPLE_RATE << 16);

    w.start_full(b"esds", 0, 0);
    let mut dsi = BoxWriter::new();
    dsi.descriptor(0x05, &config.audio_specific_config)?;
    let mut dcd = BoxWriter::new();
    dcd.u8(0x40); // objectTypeIndication: MPEG-4 Audio
    dcd.u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
    let buffer_size = 6144 / 8 * u32::from(CHANNELS); // bytes, the AAC decoder input buffer
    dcd.bytes(&buffer_size.to_be_bytes()[1..]);
    dcd.u32(config.bitrate); // maxBitrate
    dcd.u32(config.bitrate); // avgBitrate
    dcd.bytes(&dsi.finish());
    let mut es = BoxWriter::new();
    es.u16(0); // ES_ID
    es.u8(0); // no dependency, URL or OCR stream
    es.descriptor(0x04, &dcd.finish())?;
    es.descriptor(0x06, &[0x02])?; // SLConfigDescriptor: predefined MP4
    w.descriptor(0x03, &es.finish())?;
    w.end(); // esds
    w.end(); // mp4a
    Ok(())
}

/// Builds one part: a `moof` with `tfdt = base_media_decode_time` (in 1/48000 s) and
/// `mfhd` sequence `sequence`, followed by an `mdat` holding `frames` (raw AAC frames of 1024
/// samples each, every one a sync sample).
pub fn write_part<F: AsRef<[u8]>>(sequence: u32, base_media_decode_time: u64, frames: &[F]) -> Result<Vec<u8>> {
    let count = u32::try_from(frames.len()).map_err(|_| Error::InvalidPart("too many frames".into()))?;
    let mdat_len: usize = frames.iter().map(|f| f.as_ref().len()).sum();
    let mut w = BoxWriter::new();
    w.buf.reserve(mdat_len + 8 + 200);
    w.start(b"moof");
    w.start_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.end();
    w.start(b"traf");
    w.start_full(b"tfhd", 0, TFHD_FLAGS);
    w.u32(TRACK_ID);
    w.u32(FRAME_SAMPLES); // default_sample_duration
    w.u32(SYNC_SAMPLE_FLAGS); // default_sample_flags
    w.end();
    w.start_full(b"tfdt", 1, 0);
    w.u64(base_media_decode_time);
    w.end();
    w.start_full(b"trun", 0, TRUN_FLAGS);
    w.u32(count);
    let data_offset_at = w.buf.len();
    w.u32(0); // data_offset, patched below
    for f in frames {
        let size = u32::try_from(f.as_ref().len()).map_err(|_| Error::InvalidPart("frame too large".into()))?;
        w.u32(size);
    }
    w.end(); // trun
    w.end(); // traf
    w.end(); // moof
             // Relative to the moof start (default-base-is-moof): the first byte after the mdat header.
    let data_offset = u32::try_from(w.buf.len() + 8).map_err(|_| Error::InvalidPart("moof too large".into()))?;
    w.buf[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    let mdat_size = u32::try_from(mdat_len + 8).map_err(|_| Error::InvalidPart("mdat too large".into()))?;
    w.u32(mdat_size);
    w.bytes(b"mdat");
    for f in frames {
        w.bytes(f.as_ref());
    }
    Ok(w.finish())
}

/// A part as read back by [`parse_part`]: its stamps and its AAC frames.
#[derive(Debug)]
pub struct ParsedPart<'a> {
    /// `mfhd` sequence number.
    pub sequence: u32,
    /// `tfdt` in 1/48000 s.
    pub base_media_decode_time: u64,
    /// The raw AAC frames, in order.
    pub frames: Vec<&'a [u8]>,
}

/// Reads a part written by [`write_part`]. Anything else is [`Error::InvalidPart`].
pub fn parse_part(part: &[u8]) -> Result<ParsedPart<'_>> {
    let bad = |why: &str| Error::InvalidPart(why.to_string());
    let boxes = children(part)?;
    let [(b"moof", moof), (b"mdat", mdat)] = boxes.as_slice() else {
        return Err(bad("expected exactly moof + mdat"));
    };
    let moof_len = part.len() - mdat.len() - 8;
    let mut sequence = None;
    let mut bmdt = None;
    let mut sizes = None;
    let mut data_offset = None;
    for (kind, body) in children(moof)? {
        match kind {
            b"mfhd" => sequence = Some(be_u32(body, 4)?),
            b"traf" => {
                for (kind, body) in children(body)? {
                    match kind {
                        b"tfhd" => {
                            if be_u32(body, 0)? & 0x00FF_FFFF != TFHD_FLAGS || be_u32(body, 8)? != FRAME_SAMPLES {
                                return Err(bad("unexpected tfhd"));
                            }
                        }
                        b"tfdt" => {
                            if body.first() != Some(&1) {
                                return Err(bad("tfdt is not version 1"));
                            }
                            bmdt = Some(be_u64(body, 4)?);
                        }
                        b"trun" => {
                            if be_u32(body, 0)? & 0x00FF_FFFF != TRUN_FLAGS {
                                return Err(bad("unexpected trun flags"));
                            }
                            let count = be_u32(body, 4)? as usize;
                            data_offset = Some(be_u32(body, 8)? as usize);
                            let list = (0..count).map(|i| be_u32(body, 12 + 4 * i)).collect::<Result<Vec<_>>>()?;
                            sizes = Some(list);
                        }
                        _ => return Err(bad("unexpected box in traf")),
                    }
                }
            }
            _ => return Err(bad("unexpected box in moof")),
        }
    }
    let (Some(sequence), Some(base_media_decode_time), Some(sizes), Some(data_offset)) =
        (sequence, bmdt, sizes, data_offset)
    else {
        return Err(bad("missing mfhd, tfdt or trun"));
    };
    if data_offset != moof_len + 8 {
        return Err(bad("data offset does not point at the mdat payload"));
    }
    let mut frames = Vec::with_capacity(sizes.len());
    let mut at = 0usize;
    for size in sizes {
        let end = at
            .checked_add(size as usize)
            .filter(|&e| e <= mdat.len())
            .ok_or_else(|| bad("sample sizes exceed mdat"))?;
        frames.push(&mdat[at..end]);
        at = end;
    }
    if at != mdat.len() {
        return Err(bad("mdat longer than its samples"));
    }
    Ok(ParsedPart { sequence, base_media_decode_time, frames })
}

/// Copies `part` with a new `mfhd` sequence and `tfdt`; a part with fewer than 24 frames is
/// padded to 24 with frames from `silence` (a part from [`crate::silence_part`]).
pub fn restamp(part: &[u8], sequence: u32, base_media_decode_time: u64, silence: &[u8]) -> Result<Vec<u8>> {
    let mut parsed = parse_part(part)?;
    let full = PART_FRAMES as usize;
    if parsed.frames.is_empty() || parsed.frames.len() > full {
        return Err(Error::InvalidPart(format!("{} frames; expected 1..={full}", parsed.frames.len())));
    }
    if parsed.frames.len() < full {
        let pad = parse_part(silence)?;
        if pad.frames.len() != full {
            return Err(Error::InvalidPart("silence part is not 24 frames".into()));
        }
        let have = parsed.frames.len();
        parsed.frames.extend_from_slice(&pad.frames[have..]);
    }
    write_part(sequence, base_media_decode_time, &parsed.frames)
}

/// Splits `buf` into its top-level boxes as `(type, body)`. Rejects sizes 0 and 1 (to end /
/// 64-bit), which we never write.
fn children(mut buf: &[u8]) -> Result<Vec<(&[u8; 4], &[u8])>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let size = be_u32(buf, 0)? as usize;
        let kind: &[u8; 4] = buf
            .get(4..8)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| Error::InvalidPart("truncated box header".into()))?;
        if size < 8 || size > buf.len() {
            return Err(Error::InvalidPart(format!("bad size {size} for box {}", String::from_utf8_lossy(kind))));
        }
        out.push((kind, &buf[8..size]));
        buf = &buf[size..];
    }
    Ok(out)
}

fn be_u32(buf: &[u8], at: usize) -> Result<u32> {
    buf.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| Error::InvalidPart("truncated box".into()))
}

fn be_u64(buf: &[u8], at: usize) -> Result<u64> {
    buf.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::InvalidPart("truncated box".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, fill: u8) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![fill; 10 + i]).collect()
    }

    #[test]
    fn part_round_trips() {
        let f = frames(24, 7);
        let bytes = write_part(3, 2 * 24_576, &f).unwrap();
        let p = parse_part(&bytes).unwrap();
        assert_eq!(p.sequence, 3);
        assert_eq!(p.base_media_decode_time, 49_152);
        assert_eq!(p.frames.len(), 24);
        assert_eq!(p.frames[5], f[5].as_slice());
    }

    #[test]
    fn restamp_rewrites_sequence_and_tfdt() {
        let bytes = write_part(1, 0, &frames(24, 1)).unwrap();
        let silence = write_part(1, 0, &frames(24, 0)).unwrap();
        let epoch = 3_500_000_000u64 * 24_576;
        let out = restamp(&bytes, 42, epoch, &silence).unwrap();
        let p = parse_part(&out).unwrap();
        assert_eq!((p.sequence, p.base_media_decode_time), (42, epoch));
        assert_eq!(out.len(), bytes.len());
        assert_eq!(p.frames, parse_part(&bytes).unwrap().frames);
    }

    #[test]
    fn restamp_pads_a_short_part_with_silence() {
        let bytes = write_part(9, 24_576 * 9, &frames(5, 1)).unwrap();
        let silence = write_part(1, 0, &frames(24, 0)).unwrap();
        let p_out = restamp(&bytes, 10, 24_576, &silence).unwrap();
        let p = parse_part(&p_out).unwrap();
        assert_eq!(p.frames.len(), 24);
        assert!(p.frames[..5].iter().all(|f| f[0] == 1));
        assert!(p.frames[5..].iter().all(|f| f[0] == 0));
        assert_eq!(p.frames[5].len(), 15, "frame 5 of the silence part");
    }

    #[test]
    fn restamp_rejects_garbage() {
        let silence = write_part(1, 0, &frames(24, 0)).unwrap();
        for junk in [&b""[..], b"\0\0\0\x08moov", b"\xff\xff\xff\xffmoof", &silence[..silence.len() - 1]] {
            assert!(matches!(restamp(junk, 1, 0, &silence), Err(Error::InvalidPart(_))));
        }
        let init = write_init(&TrackConfig { audio_specific_config: vec![0x11, 0x90], bitrate: 1 }).unwrap();
        assert!(restamp(&init, 1, 0, &silence).is_err());
    }

    #[test]
    fn init_is_deterministic() {
        let c = TrackConfig { audio_specific_config: vec![0x11, 0x90], bitrate: 256_000 };
        assert_eq!(write_init(&c).unwrap(), write_init(&c).unwrap());
    }
}
