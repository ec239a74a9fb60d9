//! A person's last 14 days at a glance, for their page: a column a day with a dot for each round
//! (declared on time, late, missed, not yet due) and a line of the day's highest temperature against
//! the fever threshold. Server-drawn SVG (no script, no inline style: colours by class).

use std::fmt::Write;

use chrono::{Duration, NaiveDate};
use maud::{html, Markup, PreEscaped};
use outpost_sync::record::{Declaration, Person};

use super::kit::AppState;
use crate::base::i18n::{decimal, t, Lang};

/// Days shown, today last.
pub const DAYS: i64 = 14;
/// A day's column, the top margin and the whole height, in the drawing's units.
const COLUMN: f64 = 28.0;
const TOP: f64 = 8.0;
const HEIGHT: f64 = 150.0;
/// The temperature scale of the line, °C.
const LOW: f64 = 35.5;
const HIGH: f64 = 40.5;

/// What a round of a day was for the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    OnTime,
    Late,
    Missed,
    /// Not owed (before or after the quarantine, not yet due).
    None,
}

impl Round {
    fn class(self) -> &'static str {
        match self {
            Round::OnTime => "on-time",
            Round::Late => "late",
            Round::Missed => "missed",
            Round::None => "none",
        }
    }
}

/// Each of the last [`DAYS`] days: its date, its rounds, its highest temperature.
pub fn days(
    state: &AppState,
    person: &Person,
    decls: &[Declaration],
) -> Vec<(NaiveDate, Vec<Round>, Option<f64>)> {
    let (schedule, today, now) = (state.app.schedule(), state.app.today(), state.app.now());
    (0..DAYS)
        .rev()
        .map(|back| {
            let date = today - Duration::days(back);
            let rounds = schedule
                .times
                .iter()
                .map(|t| {
                    let slot = date.and_time(*t);
                    match decls.iter().find(|d| d.slot == slot) {
                        Some(d) if d.on_time => Round::OnTime,
                        Some(_) => Round::Late,
                        None if schedule.owes(person, slot) && schedule.round_end(slot) <= now => {
                            Round::Missed
                        }
                        None => Round::None,
                    }
                })
                .collect();
            let highest =
                decls.iter().filter(|d| d.slot.date() == date).map(|d| d.temperature).reduce(f64::max);
            (date, rounds, highest)
        })
        .collect()
}

/// The strip as a figure with its legend.
pub fn strip(state: &AppState, lang: Lang, person: &Person, decls: &[Declaration]) -> Markup {
    let days = days(state, person, decls);
    let fever = state.app.config().alerts.thresholds.fever_celsius;
    let y = |c: f64| TOP + 60.0 + (HIGH - c.clamp(LOW, HIGH)) / (HIGH - LOW) * (HEIGHT - 70.0);
    let width = COLUMN * DAYS as f64;
    let mut svg = format!(
        r#"<svg class="strip" viewBox="0 0 {width} {HEIGHT}" role="img"><line class="fever" x1="0" x2="{width}" y1="{0:.1}" y2="{0:.1}"/>"#,
        y(fever)
    );
    let mut line = Vec::new();
    for (i, (date, rounds, highest)) in days.iter().enumerate() {
        let x = COLUMN * i as f64 + COLUMN / 2.0;
        for (k, round) in rounds.iter().enumerate() {
            let cy = TOP + 6.0 + 13.0 * k as f64;
            let _ = write!(svg, r#"<circle class="round {}" cx="{x}" cy="{cy}" r="5"/>"#, round.class());
        }
        if let Some(c) = highest {
            line.push(format!("{x:.1},{:.1}", y(*c)));
            let _ = write!(
                svg,
                r#"<circle class="temp" cx="{x}" cy="{:.1}" r="2.5"><title>{} {} °C</title></circle>"#,
                y(*c),
                date.format("%d/%m"),
                decimal(lang, *c)
            );
        }
        if i % 2 == 1 || i == days.len() - 1 {
            let _ = write!(
                svg,
                r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
                HEIGHT - 2.0,
                date.format("%d/%m")
            );
        }
    }
    if line.len() > 1 {
        let _ = write!(svg, r#"<polyline class="temp" points="{}"/>"#, line.join(" "));
    }
    svg.push_str("</svg>");
    html! {
        figure #strip {
            (PreEscaped(svg))
            figcaption.legend {
                span.dot.on-time {} (t(lang, "strip.on_time")) " " span.dot.late {} (t(lang, "strip.late")) " "
                span.dot.missed {} (t(lang, "strip.missed")) " " span.dot.none {} (t(lang, "strip.none")) " · "
                (t(lang, "strip.temperature")) " (— " (decimal(lang, fever)) " °C)"
            }
        }
    }
}
