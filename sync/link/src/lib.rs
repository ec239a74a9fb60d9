//! `outpost-link` — what a site's box and the provincial server share to talk to each other.
//!
//! - [`ca`]: the province's certificate authority (its certificate, the server's, each site's) and
//!   the bundle a site receives.
//! - [`net`]: HTTPS over rustls with mutual authentication: a server that knows each request's site
//!   certificate, a client that trusts only the province's CA (pinned by fingerprint at enrolment).
//! - [`gate`]: connection hygiene for every listener (caps in all and per address, idle timeout).
//! - [`headers`]: the security headers of every page, the box's and the province's.
//! - [`token`]: the one-time enrolment token.
//! - [`exchange`]: one exchange of the sync protocol (`outpost_sync::protocol`) over HTTPS, both
//!   ends' turns, and a link's progress.
//! - [`site`]: a site's end: enrolment, pushes, and answering the province's pulls.
//! - [`tunnel`]: the connection a box keeps open to the province, which carries phones from home.
//! - [`bysms`]: the last link — a site's report and severe alerts by signed SMS to the province.
//!
//! The box depends on this crate, not on the provincial server's.

pub mod bysms;
pub mod ca;
pub mod exchange;
pub mod gate;
pub mod headers;
pub mod net;
pub mod site;
pub mod token;
pub mod tunnel;
