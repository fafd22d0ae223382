//! A complete VOD HLS rendition on disk: `index.m3u8`, `init.mp4` and segments of four parts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::playlist::{MediaPlaylist, PlaylistType, Segment};
use crate::units::{Samples, FRAME_SAMPLES, PARTS_PER_SEGMENT};
use crate::{init_segment, segment_track, EncoderParams, Part, PartSink};

/// What [`write_vod`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VodSummary {
    /// Decoded audio length in samples at 48 kHz.
    pub duration: Samples,
    /// Segment files written (`segment-00000.m4s`, ...).
    pub segments: u64,
    /// Parts in those segments.
    pub parts: u64,
    /// Problems that did not stop decoding.
    pub warnings: Vec<String>,
}

/// Segments `input` into `out_dir` (created if missing): `init.mp4`, `segment-NNNNN.m4s`
/// (four parts each; the last may be shorter) and `index.m3u8` with exact `#EXTINF`s, written
/// last. Every file is written to a temporary name and renamed into place.
pub fn write_vod(input: &Path, out_dir: &Path, params: &EncoderParams) -> Result<VodSummary> {
    fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    write_atomic(&out_dir.join("init.mp4"), &init_segment(params)?)?;
    let mut sink = SegmentFiles { dir: out_dir.to_path_buf(), pending: Vec::new(), frames: 0, segments: Vec::new() };
    let summary = segment_track(input, std::slice::from_ref(params), &mut sink)?;
    sink.flush()?;
    let playlist = MediaPlaylist {
        version: 7,
        target_duration: 2,
        playlist_type: Some(PlaylistType::Vod),
        map_uri: Some("init.mp4".into()),
        segments: sink.segments.clone(),
        endlist: true,
        ..MediaPlaylist::default()
    };
    write_atomic(&out_dir.join("index.m3u8"), playlist.to_string().as_bytes())?;
    Ok(VodSummary {
        duration: summary.duration,
        segments: sink.segments.len() as u64,
        parts: summary.parts,
        warnings: summary.warnings,
    })
}

/// Collects parts into segment files as they arrive.
struct SegmentFiles {
    dir: PathBuf,
    pending: Vec<u8>,
    /// AAC frames in `pending`.
    frames: u64,
    segments: Vec<Segment>,
}

impl SegmentFiles {
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let uri = format!("segment-{:05}.m4s", self.segments.len());
        write_atomic(&self.dir.join(&uri), &self.pending)?;
        self.segments.push(Segment {
            discontinuity: false,
            program_date_time_ms: None,
            parts: Vec::new(),
            duration: Samples(self.frames * u64::from(FRAME_SAMPLES)),
            uri,
        });
        self.pending.clear();
        self.frames = 0;
        Ok(())
    }
}

impl PartSink for SegmentFiles {
    fn part(&mut self, _rendition: usize, part: Part) -> Result<()> {
        self.pending.extend_from_slice(&part.bytes);
        self.frames += u64::from(part.frames);
        if (part.index + 1).is_multiple_of(u64::from(PARTS_PER_SEGMENT)) {
            self.flush()?;
        }
        Ok(())
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`,
/// so readers never see a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
