//! The calibration tick: a short click on every whole second of the grid (a whole second of
//! PDT), mixed on top of everything, so that a listener hears whether their device's click
//! lands with the others' and slides its output delay until it does.

use crate::room::ambience::TickStep;

use super::change_at;

/// Grid samples per second.
pub const SECOND_SAMPLES: u64 = 48_000;
/// The click's length, samples (5 ms).
pub const CLICK_SAMPLES: u64 = 240;
/// The click's tone, Hz: ten whole cycles in [`CLICK_SAMPLES`].
pub const CLICK_HZ: f32 = 2_000.0;
/// The click's peak, linear (−6 dBFS): above any GM volume or ducking.
pub const CLICK_LEVEL: f32 = 0.5;

/// Whether the tick is on at grid sample `s`: each step is heard from its part's change point.
pub fn ticking_at(steps: &[TickStep], s: u64) -> bool {
    steps.iter().rev().find(|t| change_at(t.at_part) <= s).is_some_and(|t| t.on)
}

/// Whether any click sounds in grid samples `[start, end)`.
pub fn ticks_in(steps: &[TickStep], start: u64, end: u64) -> bool {
    clicks(start, end).any(|c| ticking_at(steps, c))
}

/// The first samples of the clicks that overlap `[start, end)`.
fn clicks(start: u64, end: u64) -> impl Iterator<Item = u64> {
    let first = start.saturating_sub(CLICK_SAMPLES - 1).div_ceil(SECOND_SAMPLES);
    (first..).map(|k| k * SECOND_SAMPLES).take_while(move |&c| c < end)
}

/// Adds the clicks to interleaved stereo `out`, whose first pair is grid sample `start`: a
/// Hann-windowed sine, each whole click on or off as the tick was where it begins.
pub fn add_clicks(steps: &[TickStep], start: u64, out: &mut [f32]) {
    let end = start + (out.len() / 2) as u64;
    for click in clicks(start, end).filter(|&c| ticking_at(steps, c)) {
        for s in click.max(start)..(click + CLICK_SAMPLES).min(end) {
            let x = (s - click) as f32 / CLICK_SAMPLES as f32;
            let window = 0.5 - 0.5 * (std::f32::consts::TAU * x).cos();
            let value = CLICK_LEVEL * window * (std::f32::consts::TAU * CLICK_HZ * (s - click) as f32 / 48_000.0).sin();
            let i = 2 * (s - start) as usize;
            out[i] += value;
            out[i + 1] += value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use segmenter::PART_SAMPLES;

    const PS: u64 = PART_SAMPLES as u64;

    #[test]
    fn clicks_sound_on_whole_seconds_while_the_tick_is_on() {
        // On from part 100 (51.2 s), off from part 110 (56.32 s).
        let steps = [TickStep { at_part: 100, on: true }, TickStep { at_part: 110, on: false }];
        let start = 50 * SECOND_SAMPLES;
        let mut out = vec![0.0; 2 * 8 * SECOND_SAMPLES as usize];
        add_clicks(&steps, start, &mut out);
        let loud = |second: u64| {
            let at = 2 * ((second * SECOND_SAMPLES - start) as usize);
            out[at..at + 2 * CLICK_SAMPLES as usize].iter().fold(0.0f32, |m, x| m.max(x.abs()))
        };
        assert_eq!(loud(51), 0.0, "before the tick is heard");
        for second in 52..=56 {
            assert!(loud(second) > 0.45, "the click of second {second}");
        }
        assert_eq!(loud(57), 0.0, "after it is off");
        // Nothing between clicks, and both channels alike.
        let gap = 2 * ((52 * SECOND_SAMPLES + CLICK_SAMPLES - start) as usize);
        assert!(out[gap..gap + 2 * 40_000].iter().all(|&x| x == 0.0));
        assert!(out.chunks_exact(2).all(|lr| lr[0] == lr[1]));
        assert!(ticks_in(&steps, 52 * SECOND_SAMPLES - 10, 52 * SECOND_SAMPLES + 1));
        assert!(!ticks_in(&steps, 52 * SECOND_SAMPLES + CLICK_SAMPLES, 53 * SECOND_SAMPLES));
        assert!(!ticks_in(&steps, 100 * PS - 24_000, 100 * PS), "not before its change point");
    }

    #[test]
    fn a_click_split_between_two_buffers_adds_up_to_the_whole() {
        let steps = [TickStep { at_part: 0, on: true }];
        let mut whole = vec![0.0; 2 * 1_000];
        add_clicks(&steps, 2 * SECOND_SAMPLES - 500, &mut whole);
        let (mut a, mut b) = (vec![0.0; 2 * 600], vec![0.0; 2 * 400]);
        add_clicks(&steps, 2 * SECOND_SAMPLES - 500, &mut a);
        add_clicks(&steps, 2 * SECOND_SAMPLES + 100, &mut b);
        a.extend(b);
        assert_eq!(a, whole);
        assert!(whole.iter().any(|&x| x != 0.0));
    }
}
