//! `outpost` — the quarantine-site box.
//!
//! Layers, each split by domain, each depending only on those below it (`docs/architecture.md`
//! draws them). One domain keeps one file name across the layers: `app/people.rs` holds the
//! operations on people, `web/people.rs` their pages and API.
//!
//! - Entry points: [`cli`] (the command line), [`run`] (the composition root: open the store, build
//!   the operations and the services, start each, wait, stop), [`demo`] (the seeded demo site).
//! - [`web`]: the axum router with its guard ([`web::routes`](mod@web::routes), the one access table;
//!   [`web::kit`], state, the caller, forms, cookies and CSRF; [`web::error`], the one error path;
//!   [`web::layout`], the page frame; `web/tests.rs`, the router in process) and one file per
//!   domain: [`web::people`], [`web::declarations`], [`web::alerts`], [`web::dashboard`],
//!   [`web::followup`], [`web::outbox`], [`web::inbox`], [`web::messages`], [`web::bands`],
//!   [`web::presence`], [`web::location`], [`web::spotcheck`], [`web::sampling`], [`web::scanners`], [`web::exposure`],
//!   [`web::strip`] (a person's 14 days as a picture),
//!   [`web::checkin`], [`web::reports`], [`web::accounts`], [`web::mqtt`], [`web::system`]. It
//!   calls operations and reads the services' handles; it never touches the store.
//! - [`services`]: the long-running workers, each given its resources and a cancellation token:
//!   [`services::scheduler`], [`services::outbox`], [`services::inbox`], [`services::modem`],
//!   [`services::presence`], [`services::bands`] (the box's adapter, the demo's simulated site),
//!   [`services::mqtt`] (the broker, with [`services::mqtt::front`] on the public ports enforcing each
//!   device's rights, reading MQTT with [`services::mqtt::packet`], holding what the broker sends to
//!   what an MQTT 5 client asked for with [`services::mqtt::flow`]),
//!   [`services::link`] (the province), [`services::names`] (the site's trusted name), [`services::control`] (the control socket);
//!   [`services::Services`] holds the read-only handles they give back.
//! - [`app`]: the operations — [`app::Outpost`], `impl Outpost` split by domain, each operation
//!   one atomic write acknowledged once durable: [`app::people`] with [`app::csv`],
//!   [`app::declarations`], [`app::alerts`], [`app::schedule`] (the scheduler's pass),
//!   [`app::followup`], [`app::dashboard`], [`app::outbox`], [`app::lastlink`], [`app::inbox`], [`app::templates`],
//!   [`app::messages`], [`app::bands`], [`app::presence`], [`app::location`], [`app::spotcheck`],
//!   [`app::sampling`], [`app::scanners`], [`app::exposure`], [`app::checkin`], [`app::reports`] with [`app::xlsx`], [`app::accounts`],
//!   [`app::mqtt`] (device credentials), [`app::privacy`] (erasure), [`app::system`] (the site
//!   record, storage, backups).
//! - [`platform`]: the box as a machine — [`platform::backup`], [`platform::update`],
//!   [`platform::stick`] (a backup onto, or an update from, a USB stick, asked for on the web UI),
//!   [`platform::system`] (its condition and problems), [`platform::tls`], [`platform::memory`],
//!   [`platform::wear`] (what is written to the card a day, its projected life).
//! - [`base`]: [`base::clock`], [`base::config`] (typed once, over [`base::config::raw`], the
//!   file as written), [`base::validate`], [`base::rules`] (pure), [`base::smsdecl`],
//!   [`base::i18n`], [`base::audit`].
//!
//! Hardware is not touched here: the modem and BLE drivers are their own crates under `drivers/`;
//! the records, the store and the sync protocol are `outpost-sync`; what the box shares with the
//! provincial server to talk to it is `outpost-link`.

pub mod app;
pub mod base;
pub mod cli;
pub mod demo;
pub mod platform;
pub mod run;
pub mod services;
pub mod web;

#[cfg(test)]
mod tests {
    /// Every module of the crate is named in the crate's documentation, so a newcomer finds the
    /// room for a change from it.
    #[test]
    fn the_crate_doc_names_every_module() {
        fn modules(dir: &std::path::Path, path: &str, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("folder").flatten() {
                let file = entry.path();
                let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                if ["lib", "main", "mod", "tests"].contains(&name.as_str()) {
                    continue;
                }
                let module = if path.is_empty() { name } else { format!("{path}::{name}") };
                if file.is_dir() {
                    modules(&file, &module, out);
                }
                out.push(module);
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let doc = std::fs::read_to_string(root.join("lib.rs")).expect("lib.rs");
        let mut all = Vec::new();
        modules(&root, "", &mut all);
        assert!(all.len() > 60, "the modules were not found: {all:?}");
        let missing: Vec<_> = all.iter().filter(|m| !doc.contains(&format!("[`{m}`]"))).collect();
        assert!(missing.is_empty(), "modules the crate's documentation does not name: {missing:?}");
    }
}
