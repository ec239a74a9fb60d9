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
