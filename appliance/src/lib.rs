//! `outpost` — the quarantine-site box.
//!
//! Layers, each split by domain, each depending only on those below it:
//! - [`cli`]: the command line; [`run`]: the composition root (open the store, build the
//!   operations and the services, start each, wait, stop); [`demo`]: the seeded demo site.
//! - [`web`]: the axum router, its one access table, one error path, and one file per domain with
//!   its pages and its JSON API; it calls the operations and reads the services' handles only.
//! - [`services`]: the long-running workers (scheduler, outbox and inbox, modem, presence, the
//!   box's own sightings, MQTT, the link with the province, the control socket) and [`services::Services`],
//!   the handles they give back.
//! - [`app`]: the operations — [`app::Outpost`], `impl Outpost` split by domain — each one atomic
//!   and acknowledged only once durable.
//! - [`platform`]: the box as a machine — backups, updates, its condition, its certificate, memory.
//! - [`base`]: the clock, the typed configuration, validation, the pure rules, the UI's words, the
//!   audit log's entries.
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
    /// Every module of every layer is named in the crate's documentation (here, or in its layer's
    /// own `mod.rs` listing), so a newcomer finds the room for a change from the docs alone.
    #[test]
    fn the_crate_doc_names_every_module() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(root.join("lib.rs")).expect("lib.rs");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(&root).expect("src") {
            let path = entry.expect("entry").path();
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            if name == "lib" || name == "main" {
                continue;
            }
            if !lib.contains(&format!("[`{name}`]")) {
                missing.push(name.clone());
            }
            if path.is_dir() {
                let layer = std::fs::read_to_string(path.join("mod.rs")).expect("mod.rs");
                for file in std::fs::read_dir(&path).expect("layer") {
                    let file = file.expect("entry").path();
                    let module = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                    if module != "mod" && module != "tests" && !layer.contains(&format!("[`{module}`]")) {
                        missing.push(format!("{name}::{module}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "modules not named in the crate's docs: {missing:?}");
    }
}
