//! The box as a machine: what it does to and reads of its own system, below the operations and
//! knowing nothing of them.
//!
//! - [`backup`]: the backup file, `outpost backup` and `outpost restore`.
//! - [`update`]: `outpost update` from a package file.
//! - [`stick`]: a backup onto, or an update from, a USB stick, asked for on the web UI.
//! - [`system`]: disk, memory, temperature, the problems staff must hear about, the store's write guard.
//! - [`tls`]: the box's certificate.
//! - [`memory`]: the allocator's settings and `statvfs` (the crate's two `unsafe` calls).
//! - [`wear`]: what the box writes to the SD card a day, and the card's projected life.

pub mod backup;
pub mod memory;
pub mod stick;
pub mod system;
pub mod tls;
pub mod update;
pub mod wear;
