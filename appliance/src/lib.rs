//! `outpost` — the quarantine-site box.
//!
//! Layout:
//! - [`cli`] and [`server`]: the command line and the wiring of services (web, scheduler, outbox).
//! - [`config`]: the typed TOML configuration with embedded defaults.
//! - [`clock`]: the injected clock (system or manual).
//! - [`app`]: the operations on the store (people, declarations, alerts, the scheduler pass), each one
//!   atomic and acknowledged only once durable; [`rules`] holds their pure decisions.
//! - [`validate`], [`csvio`]: input checking and the district CSV lists.
//! - [`auth`], [`audit`]: accounts, sessions, tokens, throttling and the audit log.
//! - [`outbox`], [`inbox`], [`smsdecl`]: the persistent SMS outbox and its senders (log or modem),
//!   incoming messages (reassembly, de-duplication, SMS declarations, the staff inbox).
//! - [`mqtt`]: the embedded broker (rumqttd) and the box's subscriber feeding the presence engine.
//! - [`presence`], [`bands`]: the presence thread (sightings → presence intervals and band alerts) and
//!   the band pool (registration, states, hand-over, return).
//! - [`dashboard`], [`followup`]: read models for the nurse's dashboard and the daily sheet.
//! - [`web`]: the axum router, its access table, the pages and the JSON API.
//! - [`demo`]: the seeded demo site.
//! - [`tls`]: the box's certificate; [`memory`]: the allocator's settings for a small box.
//!
//! Hardware is not touched here: the modem and BLE drivers are their own crates under `drivers/`.

pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bands;
pub mod checkin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod csvio;
pub mod dashboard;
pub mod demo;
pub mod followup;
pub mod i18n;
pub mod inbox;
pub mod location;
pub mod memory;
pub mod mqtt;
pub mod outbox;
pub mod presence;
pub mod reports;
pub mod rules;
pub mod server;
pub mod smsdecl;
pub mod spotcheck;
pub mod sync;
pub mod system;
pub mod templates;
pub mod testing;
pub mod tls;
pub mod update;
pub mod validate;
pub mod web;
pub mod xlsx;
