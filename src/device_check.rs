//! Device checks: what the `/check` page measured on one device in its one-minute run (does
//! playback start, how close to the table it plays, does it stall, can it correct, does it play
//! on with the screen locked), sent to the server so the GM sees it next to the listener and
//! the project learns which devices work. Checked here, kept in SQLite (the newest
//! [`KEPT_CHECKS`]), counted by engine and verdict in `/metrics`.

use serde::{Deserialize, Serialize};

/// How many checks the database keeps; an older one makes room for a new one.
pub const KEPT_CHECKS: u32 = 500;
/// The longest check the page runs, seconds.
const MAX_CHECK_SECONDS: f64 = 600.0;

/// How the page played the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// hls.js on Media Source Extensions (desktop browsers, Android).
    HlsjsMse,
    /// hls.js on ManagedMediaSource (iPhone, iPad, Safari 17.1+).
    HlsjsMms,
    /// The browser's own HLS with `getStartDate()` (Safari).
    Native,
    /// The browser's own HLS without a position to sync by.
    Unsynced,
    /// Nothing that plays HLS.
    None,
}

impl Engine {
    /// Every engine, in declaration order (so `engine as usize` indexes it).
    pub const ALL: [Engine; 5] = [Engine::HlsjsMse, Engine::HlsjsMms, Engine::Native, Engine::Unsynced, Engine::None];

    /// The name used in the API and as the metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Engine::HlsjsMse => "hlsjs-mse",
            Engine::HlsjsMms => "hlsjs-mms",
            Engine::Native => "native",
            Engine::Unsynced => "unsynced",
            Engine::None => "none",
        }
    }
}

/// The check's plain answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// In step with the table (p95 within 10 ms), no stalls.
    Good,
    /// Plays, but audibly off at times (p95 within 50 ms) or it stalled.
    Fair,
    /// Plays out of step, or cannot correct.
    Poor,
    /// Playback did not start, or no position could be read.
    Failed,
}

impl Verdict {
    /// Every verdict, in declaration order (so `verdict as usize` indexes it).
    pub const ALL: [Verdict; 4] = [Verdict::Good, Verdict::Fair, Verdict::Poor, Verdict::Failed];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Fair => "fair",
            Verdict::Poor => "poor",
            Verdict::Failed => "failed",
        }
    }
}

/// How the page's sync controller corrects an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    /// Small playback-rate changes (seeks only for large errors).
    Rate,
    /// Rate changes had no effect or were refused: seeks only.
    Seek,
    /// The position is unknown: nothing can be corrected.
    None,
}

/// One device's check, as the `/check` page sends it (`POST /api/reports`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckReport {
    /// The control socket's id for the page (from `welcome`), so the GM's listeners panel
    /// shows the result on that listener's row.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A short device name ("iPhone · Safari").
    pub device: String,
    pub user_agent: String,
    pub engine: Engine,
    pub verdict: Verdict,
    /// Whether playback started at all.
    pub started: bool,
    /// How long the check ran, s.
    pub seconds: f64,
    /// Sync error readings taken (one per 100 ms tick with a known position).
    pub samples: u32,
    /// Median |sync error| against the server clock, ms; null without readings.
    pub sync_p50_ms: Option<f64>,
    /// 95th percentile |sync error|, ms.
    pub sync_p95_ms: Option<f64>,
    /// Times the element ran out of data while playing.
    pub stalls: u32,
    pub seeks: u32,
    pub rate_changes: u32,
    /// Rate changes that did not move the error (or that the element refused).
    pub rate_ignored: u32,
    pub correction: Correction,
    /// The page was hidden (screen locked, another app) this long, s.
    pub hidden_seconds: f64,
    /// Whether audio kept advancing while the page was hidden; null if it never was.
    #[serde(default)]
    pub advanced_while_hidden: Option<bool>,
    /// `AudioContext.outputLatency` where the browser reports it, ms.
    #[serde(default)]
    pub output_latency_ms: Option<f64>,
    /// The speaker delay this device plays ahead by, ms.
    pub output_delay_ms: f64,
    /// What went wrong, in words, for the GM.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// A check as kept: the report with its id and when it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredCheck {
    pub id: i64,
    /// Unix ms when the server received it.
    pub received_at: u64,
    #[serde(flatten)]
    pub report: CheckReport,
}

/// The summary the GM's listeners panel shows on the row of the page that ran the check.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckSummary {
    pub verdict: Verdict,
    pub engine: Engine,
    pub sync_p95_ms: Option<f64>,
    pub received_at: u64,
}

impl StoredCheck {
    pub fn summary(&self) -> CheckSummary {
        CheckSummary {
            verdict: self.report.verdict,
            engine: self.report.engine,
            sync_p95_ms: self.report.sync_p95_ms,
            received_at: self.received_at,
        }
    }
}

impl CheckReport {
    /// Checks every field's range and trims the text; the error names the field.
    pub fn normalize(&mut self) -> Result<(), String> {
        fn text(name: &str, value: &mut String, max_chars: usize) -> Result<(), String> {
            let trimmed: String = value.trim().chars().filter(|c| !c.is_control()).take(max_chars).collect();
            if trimmed.is_empty() {
                return Err(format!("{name} must not be empty"));
            }
            *value = trimmed;
            Ok(())
        }
        fn ms(name: &str, value: Option<f64>, max: f64) -> Result<(), String> {
            match value {
                Some(v) if !(v.is_finite() && (0.0..=max).contains(&v)) => Err(format!("{name} must be 0–{max}")),
                _ => Ok(()),
            }
        }
        text("device", &mut self.device, 120)?;
        text("userAgent", &mut self.user_agent, 400)?;
        if let Some(id) = &mut self.client_id {
            text("clientId", id, 40)?;
        }
        if !(self.seconds.is_finite() && (0.0..=MAX_CHECK_SECONDS).contains(&self.seconds)) {
            return Err(format!("seconds must be 0–{MAX_CHECK_SECONDS}"));
        }
        if !(self.hidden_seconds.is_finite() && (0.0..=self.seconds).contains(&self.hidden_seconds)) {
            return Err("hiddenSeconds must be 0–seconds".into());
        }
        ms("syncP50Ms", self.sync_p50_ms, 3_600_000.0)?;
        ms("syncP95Ms", self.sync_p95_ms, 3_600_000.0)?;
        ms("outputLatencyMs", self.output_latency_ms, 10_000.0)?;
        ms("outputDelayMs", Some(self.output_delay_ms), 2_000.0)?;
        if self.samples > 100_000 {
            return Err("samples must be at most 100000".into());
        }
        if self.problems.len() > 10 {
            return Err("problems: at most 10".into());
        }
        for (i, p) in self.problems.iter_mut().enumerate() {
            text(&format!("problems[{i}]"), p, 200)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> CheckReport {
        serde_json::from_value(serde_json::json!({
            "device": "iPhone · Safari", "userAgent": "Mozilla/5.0 (iPhone)", "engine": "hlsjs-mms",
            "verdict": "good", "started": true, "seconds": 60, "samples": 580,
            "syncP50Ms": 1.2, "syncP95Ms": 4.8, "stalls": 0, "seeks": 1, "rateChanges": 6, "rateIgnored": 0,
            "correction": "rate", "hiddenSeconds": 12.5, "advancedWhileHidden": true, "outputDelayMs": 0
        }))
        .unwrap()
    }

    #[test]
    fn a_sound_report_passes_and_keeps_its_figures() {
        let mut r = report();
        r.normalize().unwrap();
        assert_eq!(r, report());
    }

    #[test]
    fn out_of_range_fields_are_named() {
        type Spoil = fn(&mut CheckReport);
        let cases: [(&str, Spoil); 6] = [
            ("seconds", |r| r.seconds = f64::NAN),
            ("hiddenSeconds", |r| r.hidden_seconds = 61.0),
            ("syncP95Ms", |r| r.sync_p95_ms = Some(-1.0)),
            ("outputDelayMs", |r| r.output_delay_ms = 5000.0),
            ("device", |r| r.device = " \u{7} ".into()),
            ("problems[0]", |r| r.problems = vec![String::new()]),
        ];
        for (field, spoil) in cases {
            let mut r = report();
            spoil(&mut r);
            let err = r.normalize().unwrap_err();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }

    #[test]
    fn unknown_engines_and_fields_are_refused() {
        let mut v = serde_json::to_value(report()).unwrap();
        v["engine"] = "flash".into();
        assert!(serde_json::from_value::<CheckReport>(v).is_err());
        let mut v = serde_json::to_value(report()).unwrap();
        v["surprise"] = 1.into();
        assert!(serde_json::from_value::<CheckReport>(v).is_err());
    }

    #[test]
    fn long_text_is_cut_and_control_characters_dropped() {
        let mut r = report();
        r.device = format!("ph\u{0}one{}", "x".repeat(500));
        r.normalize().unwrap();
        assert!(r.device.starts_with("phone"));
        assert_eq!(r.device.chars().count(), 120);
    }
}
