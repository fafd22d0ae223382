//! Typed HLS playlists with a `Display` that writes the text (RFC 8216bis, LL-HLS included).
//!
//! One field per tag, in the order they are written; a pure function elsewhere decides what
//! goes in. Durations are [`Samples`] at 48 kHz and are written with five decimals, so a
//! part is always exactly `0.51200` and never longer than `PART-TARGET`.

use std::fmt;

use crate::units::Samples;

/// `#EXT-X-PLAYLIST-TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaylistType {
    /// The playlist never changes.
    Vod,
    /// Segments are only appended.
    Event,
}

/// `#EXT-X-SERVER-CONTROL`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerControl {
    /// `CAN-BLOCK-RELOAD=YES`: the server honours `_HLS_msn` / `_HLS_part`.
    pub can_block_reload: bool,
    /// `PART-HOLD-BACK`, in samples at 48 kHz.
    pub part_hold_back: Option<Samples>,
    /// `HOLD-BACK`, in samples at 48 kHz.
    pub hold_back: Option<Samples>,
}

/// One `#EXT-X-PART`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaylistPart {
    /// `DURATION`, in samples at 48 kHz.
    pub duration: Samples,
    /// `URI`.
    pub uri: String,
    /// `INDEPENDENT=YES` (always true for our audio parts).
    pub independent: bool,
}

/// One media segment: its tags, its parts and its URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// `#EXT-X-DISCONTINUITY` before this segment.
    pub discontinuity: bool,
    /// `#EXT-X-PROGRAM-DATE-TIME`, in Unix milliseconds (UTC).
    pub program_date_time_ms: Option<u64>,
    /// Parts of this segment (`#EXT-X-PART`), listed before its `#EXTINF`.
    pub parts: Vec<PlaylistPart>,
    /// `#EXTINF` duration, in samples at 48 kHz.
    pub duration: Samples,
    /// The segment's URI.
    pub uri: String,
}

/// A media playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// `#EXT-X-VERSION`.
    pub version: u8,
    /// `#EXT-X-TARGETDURATION`, in whole seconds.
    pub target_duration: u64,
    /// `#EXT-X-MEDIA-SEQUENCE`.
    pub media_sequence: u64,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`, written when `Some`.
    pub discontinuity_sequence: Option<u64>,
    /// `#EXT-X-PLAYLIST-TYPE`, written when `Some`.
    pub playlist_type: Option<PlaylistType>,
    /// `#EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// `#EXT-X-SERVER-CONTROL`, written when `Some`.
    pub server_control: Option<ServerControl>,
    /// `#EXT-X-PART-INF:PART-TARGET`, in samples at 48 kHz.
    pub part_target: Option<Samples>,
    /// `#EXT-X-MAP:URI`, the init segment.
    pub map_uri: Option<String>,
    /// Complete segments, oldest first.
    pub segments: Vec<Segment>,
    /// Parts of the segment still being produced (no `#EXTINF` yet).
    pub pending_parts: Vec<PlaylistPart>,
    /// `#EXT-X-PRELOAD-HINT:TYPE=PART,URI=…`: the next part's URI.
    pub preload_hint: Option<String>,
    /// `#EXT-X-ENDLIST`.
    pub endlist: bool,
}

impl Default for MediaPlaylist {
    fn default() -> Self {
        MediaPlaylist {
            version: 9,
            target_duration: 2,
            media_sequence: 0,
            discontinuity_sequence: None,
            playlist_type: None,
            independent_segments: true,
            server_control: None,
            part_target: None,
            map_uri: None,
            segments: Vec::new(),
            pending_parts: Vec::new(),
            preload_hint: None,
            endlist: false,
        }
    }
}

impl fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#EXTM3U")?;
        writeln!(f, "#EXT-X-VERSION:{}", self.version)?;
        writeln!(f, "#EXT-X-TARGETDURATION:{}", self.target_duration)?;
        writeln!(f, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence)?;
        if let Some(d) = self.discontinuity_sequence {
            writeln!(f, "#EXT-X-DISCONTINUITY-SEQUENCE:{d}")?;
        }
        match self.playlist_type {
            Some(PlaylistType::Vod) => writeln!(f, "#EXT-X-PLAYLIST-TYPE:VOD")?,
            Some(PlaylistType::Event) => writeln!(f, "#EXT-X-PLAYLIST-TYPE:EVENT")?,
            None => {}
        }
        if self.independent_segments {
            writeln!(f, "#EXT-X-INDEPENDENT-SEGMENTS")?;
        }
        if let Some(sc) = &self.server_control {
            write!(f, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD={}", if sc.can_block_reload { "YES" } else { "NO" })?;
            if let Some(p) = sc.part_hold_back {
                write!(f, ",PART-HOLD-BACK={p}")?;
            }
            if let Some(h) = sc.hold_back {
                write!(f, ",HOLD-BACK={h}")?;
            }
            writeln!(f)?;
        }
        if let Some(t) = self.part_target {
            writeln!(f, "#EXT-X-PART-INF:PART-TARGET={t}")?;
        }
        if let Some(uri) = &self.map_uri {
            writeln!(f, "#EXT-X-MAP:URI=\"{uri}\"")?;
        }
        for s in &self.segments {
            if s.discontinuity {
                writeln!(f, "#EXT-X-DISCONTINUITY")?;
            }
            if let Some(ms) = s.program_date_time_ms {
                writeln!(f, "#EXT-X-PROGRAM-DATE-TIME:{}", Iso8601(ms))?;
            }
            for p in &s.parts {
                writeln!(f, "{p}")?;
            }
            writeln!(f, "#EXTINF:{},", s.duration)?;
            writeln!(f, "{}", s.uri)?;
        }
        for p in &self.pending_parts {
            writeln!(f, "{p}")?;
        }
        if let Some(uri) = &self.preload_hint {
            writeln!(f, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"")?;
        }
        if self.endlist {
            writeln!(f, "#EXT-X-ENDLIST")?;
        }
        Ok(())
    }
}

impl fmt::Display for PlaylistPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#EXT-X-PART:DURATION={},URI=\"{}\"", self.duration, self.uri)?;
        if self.independent {
            write!(f, ",INDEPENDENT=YES")?;
        }
        Ok(())
    }
}

/// One `#EXT-X-STREAM-INF` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `BANDWIDTH`, peak bits per second.
    pub bandwidth: u32,
    /// `CODECS`, e.g. `mp4a.40.2` for AAC-LC.
    pub codecs: String,
    /// The media playlist's URI.
    pub uri: String,
}

/// A multivariant (master) playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultivariantPlaylist {
    /// `#EXT-X-VERSION`.
    pub version: u8,
    /// `#EXT-X-INDEPENDENT-SEGMENTS`.
    pub independent_segments: bool,
    /// The variants, in the order written.
    pub variants: Vec<Variant>,
}

impl fmt::Display for MultivariantPlaylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "#EXTM3U")?;
        writeln!(f, "#EXT-X-VERSION:{}", self.version)?;
        if self.independent_segments {
            writeln!(f, "#EXT-X-INDEPENDENT-SEGMENTS")?;
        }
        for v in &self.variants {
            writeln!(f, "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"", v.bandwidth, v.codecs)?;
            writeln!(f, "{}", v.uri)?;
        }
        Ok(())
    }
}

/// Unix milliseconds written as `2026-11-25T01:02:03.456Z`.
struct Iso8601(u64);

impl fmt::Display for Iso8601 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{PART_SAMPLES, SEGMENT_SAMPLES};

    fn part(uri: &str) -> PlaylistPart {
        PlaylistPart { duration: Samples(u64::from(PART_SAMPLES)), uri: uri.into(), independent: true }
    }

    #[test]
    fn program_date_time_is_utc_with_milliseconds() {
        assert_eq!(Iso8601(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Iso8601(1_795_568_523_456).to_string(), "2026-11-25T01:02:03.456Z");
        assert_eq!(Iso8601(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn vod_playlist() {
        let seg = |i: u32, n: u64| Segment {
            discontinuity: false,
            program_date_time_ms: None,
            parts: vec![],
            duration: Samples(n),
            uri: format!("seg{i}.m4s"),
        };
        let p = MediaPlaylist {
            version: 7,
            playlist_type: Some(PlaylistType::Vod),
            map_uri: Some("init.mp4".into()),
            segments: vec![seg(0, u64::from(SEGMENT_SAMPLES)), seg(1, 5 * 1024)],
            endlist: true,
            ..MediaPlaylist::default()
        };
        let want = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:2.04800,
seg0.m4s
#EXTINF:0.10667,
seg1.m4s
#EXT-X-ENDLIST
";
        assert_eq!(p.to_string(), want);
    }

    #[test]
    fn low_latency_live_playlist() {
        let p = MediaPlaylist {
            media_sequence: 876_742_423,
            discontinuity_sequence: Some(0),
            server_control: Some(ServerControl {
                can_block_reload: true,
                part_hold_back: Some(Samples(3 * u64::from(PART_SAMPLES))),
                hold_back: Some(Samples(3 * u64::from(SEGMENT_SAMPLES))),
            }),
            part_target: Some(Samples(u64::from(PART_SAMPLES))),
            map_uri: Some("init.mp4".into()),
            segments: vec![Segment {
                discontinuity: false,
                program_date_time_ms: Some(876_742_423 * 2048),
                parts: (0..4).map(|i| part(&format!("p{}.m4s", 3_506_969_692u64 + i))).collect(),
                duration: Samples(u64::from(SEGMENT_SAMPLES)),
                uri: "s876742423.m4s".into(),
            }],
            pending_parts: vec![part("p3506969696.m4s")],
            preload_hint: Some("p3506969697.m4s".into()),
            ..MediaPlaylist::default()
        };
        let want = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:876742423
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.53600,HOLD-BACK=6.14400
#EXT-X-PART-INF:PART-TARGET=0.51200
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T01:01:22.304Z
#EXT-X-PART:DURATION=0.51200,URI=\"p3506969692.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.51200,URI=\"p3506969693.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.51200,URI=\"p3506969694.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.51200,URI=\"p3506969695.m4s\",INDEPENDENT=YES
#EXTINF:2.04800,
s876742423.m4s
#EXT-X-PART:DURATION=0.51200,URI=\"p3506969696.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p3506969697.m4s\"
";
        assert_eq!(p.to_string(), want);
    }

    #[test]
    fn discontinuity_precedes_program_date_time() {
        let p = MediaPlaylist {
            segments: vec![Segment {
                discontinuity: true,
                program_date_time_ms: Some(2048),
                parts: vec![],
                duration: Samples(u64::from(SEGMENT_SAMPLES)),
                uri: "a.m4s".into(),
            }],
            ..MediaPlaylist::default()
        };
        assert!(p.to_string().ends_with(
            "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:02.048Z\n#EXTINF:2.04800,\na.m4s\n"
        ));
    }

    #[test]
    fn multivariant_playlist() {
        let p = MultivariantPlaylist {
            version: 9,
            independent_segments: true,
            variants: vec![
                Variant { bandwidth: 270_000, codecs: "mp4a.40.2".into(), uri: "256k.m3u8".into() },
                Variant { bandwidth: 104_000, codecs: "mp4a.40.2".into(), uri: "96k.m3u8".into() },
            ],
        };
        let want = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=270000,CODECS=\"mp4a.40.2\"
256k.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=104000,CODECS=\"mp4a.40.2\"
96k.m3u8
";
        assert_eq!(p.to_string(), want);
    }
}
