//! `outpost-province` — the provincial server. What it shares with the sites' boxes (its CA, the
//! HTTPS with mutual TLS, the exchange's turns, the enrolment token) is the `outpost-link` crate.
//!
//! - [`registry`]: the site registry in the data folder (add, revoke, one-time enrolment tokens,
//!   sync logs).
//! - [`docs`]: a site's documents, in a sled store per site or in one PostgreSQL database.
//! - [`server`]: a store per site, and the exchange endpoint that runs the sync protocol
//!   (`outpost_sync::protocol`).
//! - [`relay`]: reach from home: phones' TLS for `<site>.<zone>`, spliced by server name onto the
//!   tunnel each box keeps open.
//! - [`acme`], [`dns`]: the sites' publicly trusted names: ACME DNS-01 orders, the challenge
//!   published by RFC 2136 updates signed with TSIG.
//! - [`bysms`]: the last link: the sites' signed SMS (a confirmed report, a severe alert) read from
//!   the province's own modem, kept to show until the sync brings the records.
//! - [`demo`]: `outpost-province demo`'s simulated sites.
//! - [`migrate`]: a province's sled stores moved into PostgreSQL.
//! - [`users`], [`web`]: the province's users (a district officer sees one district) and its web UI.

pub mod acme;
pub mod bysms;
pub mod demo;
pub mod dns;
pub mod docs;
pub mod migrate;
pub mod registry;
pub mod relay;
pub mod server;
pub mod users;
pub mod web;
