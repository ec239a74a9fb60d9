//! `outpost-province` — the provincial server, and the sync link both ends share.
//!
//! - [`ca`]: the province's certificate authority (its certificate, the server's, each site's).
//! - [`net`]: HTTPS over rustls with mutual authentication: a server that knows each request's site
//!   certificate, a client that trusts only the province's CA (pinned by fingerprint at enrolment).
//! - [`server`]: the site registry (add, revoke, one-time enrolment tokens), a store per site, and
//!   the exchange endpoint that runs the sync protocol (`outpost_sync::protocol`).
//! - [`link`]: both ends' turns of an exchange, enrolment, and a site's end (pushes, and answering the
//!   province's pulls).
//! - [`demo`]: `outpost-province demo`'s simulated sites.
//! - [`users`], [`web`]: the province's users (a district officer sees one district) and its web UI.

pub mod ca;
pub mod demo;
pub mod link;
pub mod net;
pub mod server;
pub mod users;
pub mod web;
