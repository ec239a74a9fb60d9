//! End-to-end tests: each drives the real `outpost` binary from outside (see `outpost_tests`).
//!
//! - [`demo`]: the README's first command.
//! - [`day`]: one quarantine day on the manual clock, 50 people, reminders and alerts exactly once;
//!   and the site operations of a day (spot checks, a geofence, testing, the zone report).
//! - [`crash`]: SIGKILL during bursts of acknowledged writes; nothing acknowledged is lost.
//! - [`backup`]: `outpost backup` under write load, `outpost restore`, and every restore refused.
//! - [`failures`]: a full or read-only SD card, a missing modem or adapter, a broken configuration.
//! - [`cli`]: `print-config` and bad configuration files.
//! - [`access`]: every route refuses anonymous callers but the public ones; a manager cannot write.
//! - [`bad_input`]: every kind of bad input gets a clear 4xx and changes nothing.
//! - [`ble`]: `outpost ble scan` against a mock BlueZ on a private D-Bus.
//! - [`bands`]: the wristband part of a quarantine day: hand-over, away, strap, battery, return.
//! - [`gateways`]: a room gateway with 300 bands dies (last will, silence): one alert, no band alerts.
//! - [`storm`]: 60 missed declarations at once: one group on the dashboard, one digest SMS.
//! - [`mqtt`]: real MQTT clients against the embedded broker, into the presence engine.
//! - [`mqtt5`]: what an MQTT 5 client asks for (session expiry, Receive Maximum, packet size) holds.
//! - [`hostile`]: a compromised gateway's rights, floods of wrong logins and of half-open connections.
//! - [`sync`]: a box enrols with the provincial server and pushes its records (real processes).
//! - [`checkin`]: the gate poster, its public form, staff scans, the log's search and CSV.
//! - [`location`]: positions judged against the site's and a home geofence, the alert at once.
//! - [`reach`]: the web over HTTPS by name with the box's certificate; the plain port redirects.
//! - [`reports`]: the zone daily report, its confirmation, CSV and .xlsx (read by openpyxl).
//! - [`spotcheck`]: random and asked-for spot checks, a photo answer reviewed, a missed one, one outside.
//! - [`testing`]: samplings at the desk, a laboratory's list, results by SMS, the F0 workflow.
//! - [`sms`]: custom messages, the inbox, failures, and SIGKILL while sending 200 messages.
//! - [`browser`]: headless Chromium logs in, imports a list, declares through a personal link and sees
//!   the dashboard update live.
//! - [`walk`]: every staff page at a phone's size and a desk's: no sideways scroll, 44 px targets.

mod access;
mod backup;
mod bad_input;
mod bands;
mod ble;
mod browser;
mod checkin;
mod cli;
mod crash;
mod day;
mod demo;
mod failures;
mod gateways;
mod hostile;
mod lanes;
mod lastlink;
mod location;
mod mqtt;
mod mqtt5;
mod names;
mod paho;
mod postgres;
mod province;
mod reach;
mod reports;
mod sms;
mod spotcheck;
mod storm;
mod sync;
mod testing;
mod walk;

/// A password for test accounts (tests make their own; the box has none).
pub const PASSWORD: &str = "thu-nghiem-mat-khau-2026";
