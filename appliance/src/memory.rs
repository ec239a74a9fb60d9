//! The allocator's settings for a box with 1–4 GB and an SD card.
//!
//! glibc gives each thread that allocates concurrently an arena of its own, up to 8 per core, and
//! returns little of a freed arena to the system. The box runs a dozen threads (web, broker, front,
//! subscriber, presence, sample writer, modem, scheduler), so its resident memory kept growing under
//! gateway traffic though nothing was kept: the broker benchmark measured +84 MB after a simulated
//! hour, still rising, against +44 MB and flat after ten minutes with two arenas
//! (`cargo bench -p outpost --bench sightings memory`). Two arenas cost nothing measurable in
//! throughput there.

/// Limits glibc's malloc to two arenas; call first thing in `main`, before threads start. A
/// `MALLOC_ARENA_MAX` set in the environment wins. Elsewhere than glibc, nothing to do.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
        // exists, and M_ARENA_MAX with a positive value is a documented, always-valid setting.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
