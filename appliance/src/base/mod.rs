//! The bottom layer: what every other layer uses and nothing here depends on them. Pure code and
//! plain data, no IO of its own (the audit log writes only into the caller's `WriteSet`).
//!
//! - [`clock`]: the injected clock (system, manual, corrected by the province's time).
//! - [`config`]: the TOML configuration, parsed once into typed sections.
//! - [`validate`]: input checking shared by forms, the API and the CSV import; bilingual `Problem`s.
//! - [`rules`]: the schedule and alert rules, pure.
//! - [`smsdecl`]: the SMS declaration syntax, pure.
//! - [`i18n`]: the UI's words in Vietnamese and English, and the SMS texts.
//! - [`audit`]: the audit log's entries.

pub mod audit;
pub mod clock;
pub mod config;
pub mod i18n;
pub mod rules;
pub mod smsdecl;
pub mod validate;
