//! The allocator's settings for a box with 1–4 GB and an SD card.
//!
//! glibc gives each thread that allocates concurrently an arena of its own, up to 8 per core, and
//! returns little of a freed arena to the system. The box runs a dozen threads (web, broker, front,
//! subscriber, presence, sample writer, modem, scheduler), so its resident memory kept growing under
//! gateway traffic though nothing was kept: the broker benchmark measured +84 MB after a simulated
//! hour, still rising, against +44 MB and flat after ten minutes with two arenas
//! (`cargo bench -p outpost --bench sightings memory`). Two arenas cost nothing measurable in
//! throughput there.

/// Limits glibc's malloc to two arenas, and returns large blocks to the system when freed; call
/// first thing in `main`, before threads start. `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` set
/// in the environment win. Elsewhere than glibc, nothing to do.
///
/// The second matters for password checks: each Argon2 check allocates 19 MiB. glibc raises its
/// mmap threshold after the first such block is freed, and the later ones then come from the heap
/// and stay resident: 36 checks, two at a time, left the box at 725 MB. With the threshold fixed at
/// 1 MiB each block is unmapped when freed and the box stayed at 62 MB (`tests/e2e/hostile.rs`).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
        // exists, and M_ARENA_MAX and M_MMAP_THRESHOLD with these positive values are documented,
        // always-valid settings.
        #[allow(unsafe_code)]
        unsafe {
            if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
            }
        }
    }
}

/// The open files the listeners' caps need at most (web 512, MQTT 2 × 250, sync 256, the store and
/// the devices), with room to spare.
pub const OPEN_FILES: u64 = 8192;

/// Raises the soft limit of open files to [`OPEN_FILES`] (or the hard limit, if lower): the
/// default soft limit of 1,024 is less than the listeners' caps together. Under systemd the unit's
/// `LimitNOFILE` already does this. Returns the soft limit now in force.
// `rlim_t` is 64 bits on 64-bit Linux and 32 bits on a 32-bit Raspberry Pi OS: the casts are needed.
#[allow(clippy::unnecessary_cast)]
pub fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write one `rlimit` struct we own, for the duration of
    // the call; RLIMIT_NOFILE is a valid resource and a soft limit at most the hard one is valid.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let wanted = OPEN_FILES.min(limit.rlim_max as u64) as libc::rlim_t;
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = wanted;
            }
        }
    }
    limit.rlim_cur as u64
}

/// The space and state of the file system holding `path` (`statvfs`).
#[derive(Debug, Clone, Copy)]
pub struct FileSystem {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// Mounted read-only (an SD card the kernel turned read-only after errors, say).
    pub read_only: bool,
}

/// [`FileSystem`] of `path`, or `None` where it cannot be read.
pub fn file_system(path: &std::path::Path) -> Option<FileSystem> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a valid NUL-terminated string for the call's duration and `st` points to
    // writable memory the size of `statvfs`; the struct is read only when the call reports success.
    #[allow(unsafe_code)]
    let st = unsafe {
        if libc::statvfs(c_path.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    let fragment = st.f_frsize as u64;
    Some(FileSystem {
        total_bytes: st.f_blocks as u64 * fragment,
        // What an unprivileged process may use: the service does not run as root.
        free_bytes: st.f_bavail as u64 * fragment,
        read_only: st.f_flag & libc::ST_RDONLY != 0,
    })
}
