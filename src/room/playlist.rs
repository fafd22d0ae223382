//! The live playlists: pure functions of the wall clock.
//!
//! Segment and part URIs name grid numbers, and what plays behind them is decided by the
//! timeline, so the playlist text depends only on `now`: every replica and every restart
//! writes the same playlist for the same millisecond.

use segmenter::playlist::{MediaPlaylist, MultivariantPlaylist, PlaylistPart, Segment, ServerControl, Variant};
use segmenter::{EncoderParams, Samples, PART_SAMPLES, SEGMENT_SAMPLES};

use super::timeline::{part_at, PARTS_PER_SEGMENT, PART_MS};

/// Complete segments listed in a media playlist (≈ 24.6 s).
pub const WINDOW_SEGMENTS: u64 = 12;
/// Complete segments at the end of the window whose parts are listed too.
pub const SEGMENTS_WITH_PARTS: u64 = 3;
/// Blocking requests are answered 503 when the part they wait for is further away than
/// three target durations, in ms.
pub const MAX_BLOCK_MS: u64 = 3 * 2000;

/// Where a rendition's files live, e.g. `256k` for `/hls/256k/live.m3u8`.
pub fn rendition_name(params: &EncoderParams) -> String {
    format!("{}k", params.bitrate / 1000)
}

/// The multivariant playlist: one variant per rendition of the ladder.
pub fn multivariant(ladder: &[EncoderParams]) -> MultivariantPlaylist {
    MultivariantPlaylist {
        version: 9,
        independent_segments: true,
        variants: ladder
            .iter()
            .map(|p| Variant {
                // Peak: the bitrate plus the fMP4 boxes around each part (~3 %).
                bandwidth: p.bitrate + p.bitrate / 32,
                codecs: "mp4a.40.2".into(),
                uri: format!("{}/live.m3u8", rendition_name(p)),
            })
            .collect(),
    }
}

/// The latest published part at `now_ms`: a part is published at its start time.
pub fn latest_part(now_ms: u64) -> u64 {
    part_at(now_ms)
}

fn part_entry(part: u64) -> PlaylistPart {
    PlaylistPart { duration: Samples(u64::from(PART_SAMPLES)), uri: format!("part/{part}.m4s"), independent: true }
}

/// The media playlist of one rendition at `now_ms` (URIs relative to the playlist).
pub fn live_playlist(now_ms: u64) -> MediaPlaylist {
    let latest = latest_part(now_ms);
    let current_msn = latest / PARTS_PER_SEGMENT;
    let current_complete = latest % PARTS_PER_SEGMENT == PARTS_PER_SEGMENT - 1;
    // The newest complete segment (`current_msn` itself once its last part is out).
    let last_complete = if current_complete { current_msn } else { current_msn.saturating_sub(1) };
    let first = (last_complete + 1).saturating_sub(WINDOW_SEGMENTS);
    let segments = (first..=last_complete)
        .map(|msn| Segment {
            discontinuity: false,
            program_date_time_ms: Some(msn * PARTS_PER_SEGMENT * PART_MS),
            parts: if msn + SEGMENTS_WITH_PARTS > last_complete {
                (msn * PARTS_PER_SEGMENT..(msn + 1) * PARTS_PER_SEGMENT).map(part_entry).collect()
            } else {
                Vec::new()
            },
            duration: Samples(u64::from(SEGMENT_SAMPLES)),
            uri: format!("seg/{msn}.m4s"),
        })
        .collect();
    let pending_parts = if current_complete {
        Vec::new()
    } else {
        (current_msn * PARTS_PER_SEGMENT..=latest).map(part_entry).collect()
    };
    MediaPlaylist {
        media_sequence: first,
        server_control: Some(ServerControl {
            can_block_reload: true,
            part_hold_back: Some(Samples(3 * u64::from(PART_SAMPLES))),
            hold_back: Some(Samples(3 * u64::from(SEGMENT_SAMPLES))),
        }),
        part_target: Some(Samples(u64::from(PART_SAMPLES))),
        map_uri: Some("init.mp4".into()),
        segments,
        pending_parts,
        preload_hint: Some(format!("part/{}.m4s", latest + 1)),
        ..MediaPlaylist::default()
    }
}

/// Why a blocking reload request cannot be answered.
#[derive(Debug, PartialEq, Eq)]
pub enum BlockError {
    /// `_HLS_part` without `_HLS_msn`, or an msn more than two beyond the last one.
    BadRequest(&'static str),
    /// The awaited part is further away than [`MAX_BLOCK_MS`].
    TooFar,
}

/// For `_HLS_msn` / `_HLS_part`: the grid part that must be published before answering.
pub fn blocking_target(now_ms: u64, msn: Option<u64>, part: Option<u64>) -> Result<Option<u64>, BlockError> {
    let Some(msn) = msn else {
        return match part {
            Some(_) => Err(BlockError::BadRequest("_HLS_part needs _HLS_msn")),
            None => Ok(None),
        };
    };
    let last_msn = latest_part(now_ms) / PARTS_PER_SEGMENT;
    if msn > last_msn + 2 {
        return Err(BlockError::BadRequest("_HLS_msn is more than two segments beyond the last"));
    }
    // A part index past the segment's last part means the next segment's first part(s).
    let target = msn * PARTS_PER_SEGMENT + part.unwrap_or(PARTS_PER_SEGMENT - 1);
    if target * PART_MS > now_ms + MAX_BLOCK_MS {
        return Err(BlockError::TooFar);
    }
    Ok(Some(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25T00:00:00.000Z, a segment boundary (divisible by 2048 ms).
    const T0: u64 = 1_764_028_800_000 - 1_764_028_800_000 % 2048;

    #[test]
    fn playlist_at_a_segment_start() {
        let p = live_playlist(T0 + 10);
        let text = p.to_string();
        let msn = T0 / 2048;
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"), "{text}");
        assert_eq!(p.media_sequence, msn - WINDOW_SEGMENTS);
        assert_eq!(p.segments.len() as u64, WINDOW_SEGMENTS);
        assert_eq!(p.segments.last().unwrap().uri, format!("seg/{}.m4s", msn - 1));
        assert_eq!(p.pending_parts.len(), 1);
        assert_eq!(p.pending_parts[0].uri, format!("part/{}.m4s", msn * 4));
        assert_eq!(p.preload_hint.as_deref(), Some(format!("part/{}.m4s", msn * 4 + 1).as_str()));
        for s in &p.segments {
            let n: u64 = s.uri[4..s.uri.len() - 4].parse().unwrap();
            assert_eq!(s.program_date_time_ms, Some(n * 2048), "PDT = MSN × 2.048 s");
        }
        assert!(
            text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.53600,HOLD-BACK=6.14400"),
            "{text}"
        );
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.51200"), "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\""), "{text}");
    }

    #[test]
    fn the_last_part_of_a_segment_completes_it() {
        let msn = T0 / 2048;
        let p = live_playlist(T0 + 3 * 512);
        assert_eq!(p.segments.last().unwrap().uri, format!("seg/{msn}.m4s"));
        assert!(p.pending_parts.is_empty());
        assert_eq!(p.preload_hint.as_deref(), Some(format!("part/{}.m4s", msn * 4 + 4).as_str()));
        assert_eq!(p.segments.last().unwrap().parts.len(), 4);
        assert!(p.segments[0].parts.is_empty());
    }

    #[test]
    fn window_slides_one_segment_per_2048_ms() {
        let a = live_playlist(T0 + 700);
        let b = live_playlist(T0 + 700 + 2048);
        assert_eq!(b.media_sequence, a.media_sequence + 1);
    }

    #[test]
    fn blocking_targets_follow_the_spec() {
        let now = T0 + 100; // part 0 of msn M published
        let m = T0 / 2048;
        assert_eq!(blocking_target(now, None, None), Ok(None));
        assert!(matches!(blocking_target(now, None, Some(1)), Err(BlockError::BadRequest(_))));
        assert_eq!(blocking_target(now, Some(m), Some(2)), Ok(Some(m * 4 + 2)));
        assert_eq!(blocking_target(now, Some(m), None), Ok(Some(m * 4 + 3)));
        assert_eq!(blocking_target(now, Some(m), Some(5)), Ok(Some(m * 4 + 5)));
        assert_eq!(blocking_target(now, Some(m + 2), Some(0)), Ok(Some((m + 2) * 4)));
        assert!(matches!(blocking_target(now, Some(m + 3), Some(0)), Err(BlockError::BadRequest(_))));
        assert_eq!(blocking_target(now, Some(m + 2), Some(3)), Ok(Some((m + 2) * 4 + 3)));
    }
}
