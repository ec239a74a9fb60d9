//! A throw-away PostgreSQL cluster for the province's tests: Debian's `postgresql` package, `initdb`
//! into a temporary folder, the server run as an unprivileged user (`nobody` when the tests run as
//! root: PostgreSQL refuses root) on a private loopback port, trusting loopback connections. One
//! cluster per test process, started on first use; each test takes a database of its own. The
//! server dies with the test process (`setpriv --pdeathsig`, from a thread that lives as long).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The running cluster: its port, where its files are, and its binaries.
#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The newest PostgreSQL's programs (`/usr/lib/postgresql/<version>/bin`).
fn binaries() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL (scripts/test.sh installs postgresql)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version").1
}

fn root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program` of PostgreSQL, killed when the thread that started it ends, and as the unprivileged
/// user when running as root.
fn as_owner(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.arg("--pdeathsig=KILL");
    if root() {
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
    }
    c.arg(program);
    c
}

/// Clusters of earlier test processes that are gone.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("outpost-pg-").and_then(|rest| rest.split('-').next()) {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The tests' cluster, started on first use (without fsync: throw-away data, and the tests measure
/// nothing about PostgreSQL's disk).
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| start(false))
}

/// A cluster of its own; `durable`: with PostgreSQL's defaults (fsync, full page writes, synchronous
/// commit), as a province runs it, for benchmarks beside sled's durable writes.
pub fn start(durable: bool) -> Cluster {
    let bin = binaries();
    // Not a TempDir: the cluster lives as long as the process; the next run removes it.
    remove_stale();
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("outpost-pg-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cluster folder");
    if root() {
        let chown = Command::new("chown").arg("nobody:nogroup").arg(&dir).status().expect("chown");
        assert!(chown.success());
    }
    let data = dir.join("data");
    let out = as_owner(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "outpost", "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"])
        .output()
        .expect("initdb");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let port = crate::free_port();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (server_bin, server_dir) = (bin.join("postgres"), dir.clone());
    // The thread that starts the server lives as long as the process: the server's death signal
    // is tied to it.
    std::thread::spawn(move || {
        let log = std::fs::File::create(server_dir.join("server.log")).expect("log");
        let mut server = as_owner(&server_bin)
            .arg("-D")
            .arg(server_dir.join("data"))
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c"])
            .arg(format!("unix_socket_directories={}", server_dir.display()))
            .args(if durable {
                &[][..]
            } else {
                &["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"][..]
            })
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres");
        let _ = ready_tx.send(());
        let _ = server.wait();
        std::thread::park();
    });
    ready_rx.recv().expect("started");
    let cluster = Cluster { port, dir, bin };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.psql("postgres", "SELECT 1").is_ok_and(|o| o == "1") {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start: see {}",
            cluster.dir.join("server.log").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster
}

impl Cluster {
    /// `sql` run by `psql` in `database` as the cluster's owner: its output, unaligned, tuples only.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        self.psql_as("outpost", database, sql)
    }

    /// `sql` run by `psql` in `database` as `user`.
    pub fn psql_as(&self, user: &str, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user, "-d", database])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// A new, empty database: its address for `--database`.
    pub fn database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}")).expect("create database");
        self.url(name)
    }

    /// The address of `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://outpost@127.0.0.1:{}/{database}", self.port)
    }

    /// The CPU seconds the server has used so far: the postmaster's, its exited processes' (which
    /// it has waited for) and its live processes' (the connections, the background workers).
    pub fn cpu_seconds(&self) -> f64 {
        use crate::{cpu_ticks, CLOCK_TICKS};
        let pid = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).expect("postmaster.pid");
        let pid: u32 = pid.lines().next().and_then(|l| l.trim().parse().ok()).expect("a pid");
        let mut ticks = cpu_ticks(&format!("/proc/{pid}/stat"), true).map_or(0, |(t, _)| t);
        for entry in std::fs::read_dir("/proc").expect("/proc").filter_map(|e| e.ok()) {
            let stat = entry.path().join("stat");
            if let Some((t, _)) = cpu_ticks(&stat.to_string_lossy(), false).filter(|(_, ppid)| *ppid == pid) {
                ticks += t;
            }
        }
        ticks as f64 / CLOCK_TICKS
    }
}
