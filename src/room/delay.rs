//! The room's playback delay D: one number for every listener, so they stay in step.
//!
//! Every listener plays the audio of `serverNow − D`. D has to cover the slowest
//! listener's part arrival: a listener whose buffered audio runs low before the next part
//! arrives is about to stall. Listeners report about once a second how far ahead they are
//! buffered and how far they are from their target; from those, the delay they actually
//! play at minus their buffer is how late parts reach them (their *lateness*, which does
//! not depend on D, so a listener still gliding to a new D is judged right). The highest
//! lateness over [`WINDOW_MS`] but one (a single spike is what the margin is for) plus
//! [`MARGIN_MS`] is what that listener needs; a stall for want of data asks for a step
//! more (a stall with audio buffered is a busy device's, which D cannot help). D rises when
//! one needs more than it has, by at most [`STEP_MS`] every [`STEP_EVERY_MS`], up to the
//! ceiling. A step is not a jump but a [`DelayRamp`]: announced [`RAMP_LEAD_MS`] ahead, D
//! moves linearly ([`RISE_MS_PER_S`] up, [`FALL_MS_PER_S`] down), so every listener follows the same target at the
//! same moment (each plays at `1 − slope` through it) and nobody hears or drifts through a
//! step. D falls by one step after [`LOWER_AFTER_MS`] in which every
//! listener had room to spare, down to the floor. A listener that would need more than the
//! ceiling is named as unable to keep up, and the room does not follow it further. The GM
//! can pin D. Pure: the time comes in as an argument.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

/// Buffered audio a listener should keep at its lowest point, ms.
pub const MARGIN_MS: u64 = 200;
/// Largest change of D at once, ms.
pub const STEP_MS: u64 = 100;
/// Least time between the decisions of two steps of D, ms (a step's ramp also has to end first).
pub const STEP_EVERY_MS: u64 = 4000;
/// How long before its ramp starts a step is announced, ms: time for the state to reach
/// every listener, also over a slow path.
pub const RAMP_LEAD_MS: u64 = 1000;
/// Speed of D through a rising ramp, ms per s: 2.5 %, so a player plays at 0.975 through a
/// 100 ms step of 4 s (its pitch 43 cents low): someone is about to starve.
pub const RISE_MS_PER_S: u64 = 25;
/// Speed of D through a falling ramp, ms per s: 1 %, so a player plays at 1.01 through a
/// 100 ms step of 10 s (17 cents high): nobody is in a hurry, and it is gentler to hear.
pub const FALL_MS_PER_S: u64 = 10;
/// Time every listener must have had room to spare before D falls a step, ms.
pub const LOWER_AFTER_MS: u64 = 30_000;
/// Room to spare above [`MARGIN_MS`] that allows D to fall, ms.
const SPARE_MS: u64 = 150;
/// Reports a listener's needs are judged over, ms.
pub const WINDOW_MS: u64 = 10_000;
/// Reports in a listener's first this many ms of playing do not count, ms: while it joins it
/// seeks and stalls on purpose, which says nothing about its path. A listener that says when
/// its sync locked counts sooner, [`LOCKED_GRACE_MS`] after that.
pub const JOIN_GRACE_MS: u64 = 10_000;
/// Reports count from this long after a listener's first report that it locked, ms: the
/// buffer its joining seeks emptied has refilled by then.
pub const LOCKED_GRACE_MS: u64 = 3_000;
/// D is a multiple of this, ms.
const GRAIN_MS: u64 = 50;
/// A stall with less than this much audio buffered is one for want of data, ms. With more,
/// the device could not play what it had (a busy CPU): a higher D would not help it.
const STARVED_BELOW_MS: f64 = 100.0;

/// Bounds of D, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DelayBounds {
    pub floor_ms: u64,
    pub ceiling_ms: u64,
}

/// One listener's recent reports, as the policy sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerNeed {
    pub client_id: String,
    /// Lateness of its parts over the window (the delay it played at minus the audio it had
    /// buffered), ms: the highest but one, since one spike is what [`MARGIN_MS`] is for; the
    /// highest when there is only one report.
    pub lateness_ms: f64,
    /// It reported a stall for want of data within the window.
    pub stalled: bool,
}

/// What the dashboard shows about D.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelayStatus {
    /// D now, ms.
    pub current_ms: u64,
    /// Where D is gliding to, ms.
    pub target_ms: u64,
    /// The GM pinned D.
    pub pinned: bool,
    /// The listener (client id) whose needs set D, if one did.
    pub set_by: Option<String>,
    /// Listeners that would need more than the ceiling.
    pub cannot_keep_up: Vec<String>,
    /// How D moves to `current_ms` in the latest step, if it stepped.
    pub ramp: Option<DelayRamp>,
}

impl DelayStatus {
    /// D at `now_ms` (Unix ms), inside a ramp too, ms.
    pub fn at(&self, now_ms: u64) -> f64 {
        self.ramp.map_or(self.current_ms as f64, |ramp| ramp.at(now_ms))
    }
}

/// A step of D as every listener follows it: `from_ms` until `starts_at_ms`, then linear to
/// `to_ms` at `ends_at_ms`, and `to_ms` after. Times are server time (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelayRamp {
    pub from_ms: u64,
    pub to_ms: u64,
    pub starts_at_ms: u64,
    pub ends_at_ms: u64,
}

impl DelayRamp {
    /// D at `now_ms` (Unix ms), ms.
    pub fn at(&self, now_ms: u64) -> f64 {
        if now_ms >= self.ends_at_ms {
            return self.to_ms as f64;
        }
        if now_ms <= self.starts_at_ms {
            return self.from_ms as f64;
        }
        let done = (now_ms - self.starts_at_ms) as f64 / (self.ends_at_ms - self.starts_at_ms) as f64;
        self.from_ms as f64 + (self.to_ms as f64 - self.from_ms as f64) * done
    }
}

/// The policy's state.
#[derive(Debug, Clone)]
pub struct Delay {
    bounds: DelayBounds,
    status: DelayStatus,
    /// When D last stepped, ms.
    stepped_at: Option<u64>,
    /// Since when every listener has had room to spare, ms.
    spare_since: Option<u64>,
}

impl Delay {
    /// Starts at the floor, or at `pinned` when the GM pinned D.
    pub fn new(bounds: DelayBounds, pinned: Option<u64>) -> Delay {
        let start = pinned.unwrap_or(bounds.floor_ms);
        Delay {
            bounds,
            status: DelayStatus {
                current_ms: start,
                target_ms: start,
                pinned: pinned.is_some(),
                set_by: None,
                cannot_keep_up: Vec::new(),
                ramp: None,
            },
            stepped_at: None,
            spare_since: None,
        }
    }

    pub fn status(&self) -> &DelayStatus {
        &self.status
    }

    /// D once the latest step's ramp has ended, ms.
    pub fn current_ms(&self) -> u64 {
        self.status.current_ms
    }

    /// Pins D at `ms` (gliding there), or lets it adapt again with `None`.
    pub fn pin(&mut self, ms: Option<u64>) {
        match ms {
            Some(ms) => {
                self.status.pinned = true;
                self.status.target_ms = ms;
                self.status.set_by = None;
            }
            None => self.status.pinned = false,
        }
        self.spare_since = None;
    }

    /// One step of the policy at `now_ms` with the listeners' needs; true when D changed.
    pub fn update(&mut self, now_ms: u64, listeners: &[ListenerNeed]) -> bool {
        if !self.status.pinned {
            self.choose_target(now_ms, listeners);
        }
        self.glide(now_ms)
    }

    fn choose_target(&mut self, now_ms: u64, listeners: &[ListenerNeed]) {
        let current = self.status.current_ms;
        let need = |l: &ListenerNeed| -> u64 {
            let needed = l.lateness_ms + MARGIN_MS as f64;
            // A stall says the lateness was underestimated: ask for a step more than now.
            let needed = if l.stalled { needed.max((current + STEP_MS) as f64) } else { needed };
            round_up(needed.clamp(0.0, 60_000.0) as u64)
        };
        let neediest = listeners.iter().map(|l| (need(l), l)).max_by_key(|(n, _)| *n);
        self.status.cannot_keep_up =
            listeners.iter().filter(|l| need(l) > self.bounds.ceiling_ms).map(|l| l.client_id.clone()).collect();
        match neediest {
            Some((needed, l)) if needed > current => {
                self.status.target_ms = needed.clamp(self.bounds.floor_ms, self.bounds.ceiling_ms);
                self.status.set_by = Some(l.client_id.clone());
                self.spare_since = None;
            }
            _ => {
                let spare = listeners
                    .iter()
                    .all(|l| !l.stalled && l.lateness_ms + ((MARGIN_MS + SPARE_MS) as f64) <= current as f64);
                if !spare {
                    self.spare_since = None;
                    self.status.target_ms = current;
                    return;
                }
                let since = *self.spare_since.get_or_insert(now_ms);
                if current > self.bounds.floor_ms && now_ms.saturating_sub(since) >= LOWER_AFTER_MS {
                    let floor = neediest.map_or(self.bounds.floor_ms, |(n, _)| n).max(self.bounds.floor_ms);
                    self.status.target_ms = current.saturating_sub(STEP_MS).max(floor);
                    self.spare_since = Some(now_ms);
                    if self.status.target_ms <= self.bounds.floor_ms {
                        self.status.set_by = None;
                    }
                } else {
                    self.status.target_ms = current.max(self.bounds.floor_ms);
                }
            }
        }
    }

    /// Starts the ramp of one step toward the target when a step is due (the last one's ramp
    /// ended); true when D moved.
    fn glide(&mut self, now_ms: u64) -> bool {
        let (current, target) = (self.status.current_ms, self.status.target_ms);
        let due = self.stepped_at.is_none_or(|at| now_ms.saturating_sub(at) >= STEP_EVERY_MS)
            && self.status.ramp.is_none_or(|ramp| now_ms >= ramp.ends_at_ms);
        if current == target || !due {
            return false;
        }
        let (next, ms_per_s) = if target > current {
            ((current + STEP_MS).min(target), RISE_MS_PER_S)
        } else {
            (current.saturating_sub(STEP_MS).max(target), FALL_MS_PER_S)
        };
        let starts_at_ms = now_ms + RAMP_LEAD_MS;
        self.status.ramp = Some(DelayRamp {
            from_ms: current,
            to_ms: next,
            starts_at_ms,
            ends_at_ms: starts_at_ms + current.abs_diff(next) * 1000 / ms_per_s,
        });
        self.status.current_ms = next;
        self.stepped_at = Some(now_ms);
        true
    }
}

/// `ms` rounded up to the grain of D.
fn round_up(ms: u64) -> u64 {
    ms.div_ceil(GRAIN_MS) * GRAIN_MS
}

/// What a listener reports that matters to D.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListenerReport<'a> {
    /// Audio buffered ahead of the play head, s.
    pub buffer_s: Option<f64>,
    /// Playing position minus target, ms (positive = ahead).
    pub sync_error_ms: Option<f64>,
    /// The D its target was computed with, ms: the state it last received may be older than
    /// the room's D.
    pub delay_ms: Option<f64>,
    /// `playing`, `stalled`, `paused` or `idle`.
    pub state: Option<&'a str>,
    /// Its sync controller is locked (done with its joining seeks); None when it does not say.
    pub locked: Option<bool>,
    /// The most its newest buffered audio lagged the server's clock since its last report,
    /// measured many times a second, ms: its lateness, sawtooth peaks included. Without it,
    /// the lateness comes from this one report's delay, sync error and buffer.
    pub late_ms: Option<f64>,
    /// It stalled for want of data since its last report, however briefly: `state` says only
    /// how it is at the report's moment, and a stall between two reports is the spike that the
    /// margin did not cover.
    pub starved: Option<bool>,
}

/// The reports of every listener over the last [`WINDOW_MS`]: what [`Delay::update`] needs.
#[derive(Debug, Default)]
pub struct Reports {
    by_client: HashMap<String, VecDeque<Report>>,
    /// When each playing listener's first report came, ms.
    joined: HashMap<String, u64>,
    /// When each playing listener first reported that it locked, ms.
    locked: HashMap<String, u64>,
}

/// One report: when, how late its parts were (ms), and whether it was stalled.
#[derive(Debug, Clone, Copy)]
struct Report {
    at_ms: u64,
    lateness_ms: f64,
    stalled: bool,
}

impl Reports {
    /// Records what `client` reported at `at_ms`: its buffered audio (s), its sync error (ms,
    /// positive = ahead of its target), the D it aimed at (`delay_ms`, the room's D at
    /// `at_ms`, when it did not say) and its state. Only playing or stalled listeners count.
    pub fn record(&mut self, client: &str, at_ms: u64, delay_ms: f64, report: ListenerReport<'_>) {
        if !matches!(report.state, Some("stalled" | "playing")) {
            self.forget(client);
            return;
        }
        let joined = *self.joined.entry(client.to_owned()).or_insert(at_ms);
        let locked = match report.locked {
            Some(true) => Some(*self.locked.entry(client.to_owned()).or_insert(at_ms)),
            _ => self.locked.get(client).copied(),
        };
        if at_ms < joined + JOIN_GRACE_MS && locked.is_none_or(|l| at_ms < l + LOCKED_GRACE_MS) {
            return;
        }
        let Some(buffer_ms) = report.buffer_s.filter(|b| b.is_finite()).map(|b| (b * 1000.0).clamp(0.0, 60_000.0))
        else {
            return;
        };
        let stalled = (report.state == Some("stalled") && buffer_ms < STARVED_BELOW_MS) || report.starved == Some(true);
        // Ahead of its target by e, it plays at D − e.
        let error_ms = report.sync_error_ms.filter(|e| e.is_finite()).unwrap_or(0.0).clamp(-60_000.0, 60_000.0);
        let aimed_ms = report.delay_ms.filter(|d| d.is_finite() && *d >= 0.0).map_or(delay_ms, |d| d.min(60_000.0));
        let lateness_ms = report
            .late_ms
            .filter(|l| l.is_finite())
            .map_or(aimed_ms - error_ms - buffer_ms, |l| l.clamp(-60_000.0, 60_000.0));
        let reports = self.by_client.entry(client.to_owned()).or_default();
        reports.push_back(Report { at_ms, lateness_ms, stalled });
        while reports.len() > 64 {
            reports.pop_front();
        }
    }

    /// Forgets a listener that left.
    pub fn forget(&mut self, client: &str) {
        self.by_client.remove(client);
        self.joined.remove(client);
        self.locked.remove(client);
    }

    /// Each listener's needs over the window ending at `now_ms`.
    pub fn needs(&mut self, now_ms: u64) -> Vec<ListenerNeed> {
        self.by_client.retain(|_, reports| {
            reports.retain(|r| r.at_ms + WINDOW_MS >= now_ms);
            !reports.is_empty()
        });
        let mut needs: Vec<ListenerNeed> = self
            .by_client
            .iter()
            .map(|(client, reports)| {
                let mut lateness: Vec<f64> = reports.iter().map(|r| r.lateness_ms).collect();
                lateness.sort_by(|a, b| b.total_cmp(a));
                ListenerNeed {
                    client_id: client.clone(),
                    lateness_ms: lateness.get(1).or(lateness.first()).copied().unwrap_or(f64::NEG_INFINITY),
                    stalled: reports.iter().any(|r| r.stalled),
                }
            })
            .collect();
        needs.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        needs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: DelayBounds = DelayBounds { floor_ms: 400, ceiling_ms: 3000 };

    fn listener(id: &str, lateness_ms: f64) -> ListenerNeed {
        ListenerNeed { client_id: id.into(), lateness_ms, stalled: false }
    }

    /// Runs the policy once a second for `seconds` with the same needs; D after each second.
    fn run(d: &mut Delay, from_s: u64, seconds: u64, needs: &[ListenerNeed]) -> Vec<u64> {
        (from_s..from_s + seconds)
            .map(|s| {
                d.update(s * 1000, needs);
                d.current_ms()
            })
            .collect()
    }

    #[test]
    fn a_listener_whose_parts_arrive_late_raises_d_in_gliding_steps() {
        let mut d = Delay::new(BOUNDS, None);
        let trace = run(&mut d, 0, 40, &[listener("c1", 50.0), listener("c2", 450.0)]);
        assert!(trace.windows(2).all(|w| w[1] >= w[0] && w[1] - w[0] <= STEP_MS), "{trace:?}");
        // A step waits for the last one's ramp: announced 1 s ahead, 4 s long.
        assert_eq!(trace[..11], [500, 500, 500, 500, 500, 600, 600, 600, 600, 600, 650], "450 ms late + 200 ms margin");
        assert_eq!(*trace.last().unwrap(), 650);
        assert_eq!(d.status().set_by.as_deref(), Some("c2"));
    }

    #[test]
    fn a_step_is_a_ramp_announced_ahead_that_every_listener_can_follow() {
        let mut d = Delay::new(BOUNDS, None);
        assert!(d.update(10_000, &[listener("c1", 250.0)]));
        let ramp = d.status().ramp.expect("a step has a ramp");
        assert_eq!(ramp, DelayRamp { from_ms: 400, to_ms: 450, starts_at_ms: 11_000, ends_at_ms: 13_000 });
        assert_eq!(d.current_ms(), 450, "the destination");
        // D itself moves only from the ramp's start, at RISE_MS_PER_S.
        assert_eq!(d.status().at(10_500), 400.0);
        assert_eq!(d.status().at(11_000), 400.0);
        assert_eq!(d.status().at(12_000), 425.0);
        assert_eq!(d.status().at(13_000), 450.0);
        assert_eq!(d.status().at(99_000), 450.0);
        // Falling works the same way, more gently, and no new step starts inside a ramp.
        let mut d = Delay::new(BOUNDS, Some(1000));
        d.pin(Some(800));
        assert!(d.update(0, &[]));
        assert_eq!(d.status().ramp.unwrap().ends_at_ms, 11_000, "1 s ahead, then 100 ms at FALL_MS_PER_S");
        assert!(!d.update(10_500, &[]), "the first ramp ends at 11 s");
        assert!(d.update(11_000, &[]));
        let ramp = d.status().ramp.unwrap();
        assert_eq!((ramp.from_ms, ramp.to_ms), (900, 800));
        assert_eq!(d.status().at(14_000), 880.0);
    }

    #[test]
    fn a_stall_asks_for_a_step_more_even_when_the_lateness_looks_fine() {
        let mut d = Delay::new(BOUNDS, None);
        assert!(d.update(0, &[ListenerNeed { client_id: "c1".into(), lateness_ms: 10.0, stalled: true }]));
        assert_eq!(d.current_ms(), 500);
    }

    #[test]
    fn d_falls_slowly_once_everyone_has_room_and_never_below_the_floor() {
        let mut d = Delay::new(BOUNDS, None);
        run(&mut d, 0, 60, &[listener("slow", 1000.0), listener("fast", 20.0)]);
        assert_eq!(d.current_ms(), 1200);
        // The slow listener leaves.
        let trace = run(&mut d, 60, 600, &[listener("fast", 20.0)]);
        let wait = LOWER_AFTER_MS as usize / 1000;
        assert_eq!(trace[..wait - 1], vec![1200; wait - 1][..]);
        assert_eq!(*trace.last().unwrap(), BOUNDS.floor_ms);
        let fell_at = trace.iter().position(|&ms| ms == BOUNDS.floor_ms).unwrap();
        assert!(fell_at >= 8 * wait, "eight steps of 100 ms, one per {LOWER_AFTER_MS} ms");
        assert_eq!(d.status().set_by, None);
    }

    #[test]
    fn a_listener_beyond_the_ceiling_is_named_and_not_followed() {
        let mut d = Delay::new(BOUNDS, None);
        let trace = run(&mut d, 0, 200, &[listener("near", 50.0), listener("far", 5000.0)]);
        assert_eq!(*trace.last().unwrap(), BOUNDS.ceiling_ms);
        assert_eq!(d.status().cannot_keep_up, ["far"]);
    }

    #[test]
    fn a_pinned_d_ignores_the_listeners_until_released() {
        let mut d = Delay::new(BOUNDS, None);
        d.pin(Some(800));
        let late = [listener("c1", 2000.0)];
        assert_eq!(*run(&mut d, 0, 30, &late).last().unwrap(), 800);
        assert!(d.status().pinned);
        d.pin(None);
        assert_eq!(*run(&mut d, 30, 90, &late).last().unwrap(), 2200);
    }

    #[test]
    fn lateness_is_the_delay_played_at_minus_the_buffer() {
        let mut r = Reports::default();
        // Each listener joined at 0; its first JOIN_GRACE_MS of reports do not count.
        for c in ["a", "b", "c", "d", "e", "f"] {
            r.record(
                c,
                0,
                400.0,
                ListenerReport {
                    buffer_s: Some(0.0),
                    sync_error_ms: Some(-900.0),
                    delay_ms: None,
                    state: Some("stalled"),
                    locked: None,
                    late_ms: None,
                    starved: None,
                },
            );
        }
        let g = JOIN_GRACE_MS;
        let playing = |buffer_s, sync_error_ms| ListenerReport {
            buffer_s: Some(buffer_s),
            sync_error_ms,
            delay_ms: None,
            state: Some("playing"),
            locked: None,
            late_ms: None,
            starved: None,
        };
        r.record("a", g + 1_000, 400.0, playing(0.3, Some(0.0)));
        // D went up to 500 but "a" still plays at 400 (100 ms ahead of its new target).
        r.record("a", g + 2_000, 500.0, playing(0.3, Some(100.0)));
        r.record("b", g + 2_000, 400.0, ListenerReport { state: Some("paused"), ..playing(0.1, None) });
        r.record("c", g + 2_000, 400.0, playing(f64::NAN, None));
        r.record("d", g + 2_500, 400.0, ListenerReport { state: Some("stalled"), ..playing(0.0, None) });
        // A report that names the D it aimed at is judged by that, not by the room's D now.
        r.record("e", g + 2_600, 900.0, ListenerReport { delay_ms: Some(400.0), ..playing(0.25, Some(0.0)) });
        // One that measured its lateness between reports says so, and that is what counts.
        r.record("f", g + 2_700, 400.0, ListenerReport { late_ms: Some(320.0), ..playing(0.3, Some(0.0)) });
        let needs = r.needs(g + 5_000);
        assert_eq!(
            needs,
            [
                listener("a", 100.0),
                ListenerNeed { client_id: "d".into(), lateness_ms: 400.0, stalled: true },
                listener("e", 150.0),
                listener("f", 320.0)
            ]
        );
        r.forget("d");
        r.forget("e");
        r.forget("f");
        assert_eq!(r.needs(g + 11_500), [listener("a", 100.0)]);
        assert!(r.needs(g + 13_000).is_empty());
    }

    #[test]
    fn one_spike_of_lateness_is_left_to_the_margin_and_a_second_counts() {
        let mut r = Reports::default();
        let late = |late_ms| ListenerReport {
            buffer_s: Some(0.3),
            state: Some("playing"),
            locked: Some(true),
            late_ms: Some(late_ms),
            ..ListenerReport::default()
        };
        r.record("a", 0, 400.0, late(0.0));
        let after_grace = LOCKED_GRACE_MS;
        r.record("a", after_grace, 400.0, late(150.0));
        assert_eq!(r.needs(after_grace), [listener("a", 150.0)], "one report is all there is");
        r.record("a", after_grace + 1_000, 400.0, late(420.0));
        r.record("a", after_grace + 2_000, 400.0, late(120.0));
        assert_eq!(r.needs(after_grace + 2_000), [listener("a", 150.0)]);
        r.record("a", after_grace + 3_000, 400.0, late(380.0));
        assert_eq!(r.needs(after_grace + 3_000), [listener("a", 380.0)]);
    }

    #[test]
    fn a_stall_between_two_reports_counts_though_both_say_playing() {
        // A busy page's audio ran dry for 200 ms between two reports: the spike the margin was
        // for came, once, and was not covered. Both reports say "playing" with audio buffered.
        let mut r = Reports::default();
        let playing = |starved| ListenerReport {
            buffer_s: Some(0.3),
            state: Some("playing"),
            locked: Some(true),
            late_ms: Some(120.0),
            starved,
            ..ListenerReport::default()
        };
        r.record("a", 0, 400.0, playing(None));
        r.record("a", LOCKED_GRACE_MS, 400.0, playing(Some(false)));
        assert_eq!(r.needs(LOCKED_GRACE_MS), [listener("a", 120.0)]);
        r.record("a", LOCKED_GRACE_MS + 1_000, 400.0, playing(Some(true)));
        let needs = r.needs(LOCKED_GRACE_MS + 1_000);
        assert!(needs[0].stalled, "{needs:?}");
        let mut d = Delay::new(BOUNDS, None);
        d.update(LOCKED_GRACE_MS + 1_000, &needs);
        assert_eq!(d.current_ms(), BOUNDS.floor_ms + STEP_MS, "a step more than it had");
    }

    #[test]
    fn a_stall_with_audio_buffered_is_the_devices_and_asks_for_no_more_d() {
        let mut r = Reports::default();
        let stalled = |buffer_s| ListenerReport {
            buffer_s: Some(buffer_s),
            state: Some("stalled"),
            locked: Some(true),
            late_ms: Some(100.0),
            ..ListenerReport::default()
        };
        r.record("busy", 0, 400.0, stalled(0.5));
        r.record("starved", 0, 400.0, stalled(0.02));
        r.record("busy", LOCKED_GRACE_MS, 400.0, stalled(0.5));
        r.record("starved", LOCKED_GRACE_MS, 400.0, stalled(0.02));
        let needs = r.needs(LOCKED_GRACE_MS);
        assert_eq!(
            needs,
            [listener("busy", 100.0), ListenerNeed { client_id: "starved".into(), lateness_ms: 100.0, stalled: true }]
        );
        let mut d = Delay::new(BOUNDS, None);
        d.update(LOCKED_GRACE_MS, &needs[..1]);
        assert_eq!(d.current_ms(), BOUNDS.floor_ms);
        d.update(LOCKED_GRACE_MS, &needs);
        assert_eq!(d.current_ms(), BOUNDS.floor_ms + STEP_MS);
    }

    #[test]
    fn a_listener_that_says_it_locked_counts_from_shortly_after() {
        let mut r = Reports::default();
        let report = |locked, state| ListenerReport {
            buffer_s: Some(0.05),
            sync_error_ms: Some(-300.0),
            delay_ms: Some(400.0),
            state: Some(state),
            locked,
            late_ms: None,
            starved: None,
        };
        // Joining: seeks and stalls that say nothing about its path.
        r.record("a", 0, 400.0, report(Some(false), "stalled"));
        r.record("a", 1_000, 400.0, report(Some(false), "playing"));
        r.record("a", 2_000, 400.0, report(Some(true), "playing"));
        r.record("a", 4_000, 400.0, report(Some(true), "playing"));
        assert!(r.needs(4_000).is_empty(), "within {LOCKED_GRACE_MS} ms of its lock");
        // Once past it, everything counts again, a stall (which unlocks it) too.
        r.record("a", 5_000, 400.0, report(Some(false), "stalled"));
        assert_eq!(r.needs(5_000), [ListenerNeed { client_id: "a".into(), lateness_ms: 650.0, stalled: true }]);
        // One that does not say counts after JOIN_GRACE_MS.
        r.record("b", 0, 400.0, report(None, "playing"));
        r.record("b", 5_000, 400.0, report(None, "playing"));
        assert_eq!(r.needs(5_000).len(), 1);
        r.record("b", JOIN_GRACE_MS, 400.0, report(None, "playing"));
        assert_eq!(r.needs(JOIN_GRACE_MS).len(), 2);
    }
}
