//! `outpost update --from FILE.deb` [M16]: an update from a USB stick at a site without internet.
//! It checks the package (Outpost's, this machine's architecture, not older than what is
//! installed), takes a backup of the data first, installs the package with dpkg (whose maintainer
//! scripts keep the data and restart the service), then waits for the box to answer again.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

use crate::{base::config::Config, platform::backup};

/// Runs `program args` and returns its standard output, trimmed.
fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The package's `(name, version, architecture)`.
pub fn package_fields(deb: &Path) -> anyhow::Result<(String, String, String)> {
    let file = deb.to_str().context("the package's path is not UTF-8")?;
    let fields = output("dpkg-deb", &["--field", file, "Package", "Version", "Architecture"])
        .with_context(|| format!("{} is not a Debian package", deb.display()))?;
    let get = |name: &str| {
        fields
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
            .unwrap_or_default()
    };
    Ok((get("Package"), get("Version"), get("Architecture")))
}

pub fn update(config: &Config, deb: &Path, backup_to: Option<PathBuf>) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0) != 0 {
        bail!("an update installs a package: run it as root (sudo outpost update --from {})", deb.display());
    }
    let (name, version, arch) = package_fields(deb)?;
    if name != "outpost" {
        bail!("{} is the package {name:?}, not Outpost. Nothing was changed.", deb.display());
    }
    let machine = output("dpkg", &["--print-architecture"])?;
    if arch != machine && arch != "all" {
        bail!("{} is built for {arch}, and this box is {machine}. Nothing was changed.", deb.display());
    }
    let installed = output("dpkg-query", &["--show", "--showformat=${Version}", "outpost"])
        .ok()
        .filter(|v| !v.is_empty());
    if let Some(installed) = &installed {
        if Command::new("dpkg").args(["--compare-versions", &version, "lt", installed]).status()?.success() {
            bail!(
                "{} holds Outpost {version}, older than the installed {installed}: data written by a \
                 newer version may not be readable by an older one. Nothing was changed.",
                deb.display()
            );
        }
    }
    let data_dir = &config.store.data_dir;
    let running = std::os::unix::net::UnixStream::connect(data_dir.join(backup::CONTROL_SOCKET)).is_ok();
    if data_dir.join("conf").exists() {
        let to = backup_to.unwrap_or_else(|| {
            let name = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            data_dir.with_file_name(format!("{name}-backups"))
        });
        let (path, summary) = backup::backup_to(&to, data_dir, &config.site.id, chrono::Utc::now())
            .context("the backup before the update failed, so nothing was installed")?;
        println!("Backup before the update: {} ({} entries).", path.display(), summary.entries);
    } else {
        println!("No data in {} yet: nothing to back up.", data_dir.display());
    }
    println!("Installing Outpost {version} (installed: {}) …", installed.as_deref().unwrap_or("none"));
    let status = Command::new("dpkg")
        .arg("--install")
        .arg(deb)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run dpkg")?;
    if !status.success() {
        bail!(
            "dpkg could not install {} ({status}); see its messages above. The data is untouched.",
            deb.display()
        );
    }
    if running {
        let port = config.web.listen.port();
        let answered = wait_for_healthz(port, Duration::from_secs(60))
            .with_context(|| format!("Outpost {version} is installed, but the box does not answer on port {port}: see `journalctl -u outpost`"))?;
        println!("Outpost {version} is installed and answers: {answered}");
    } else {
        println!("Outpost {version} is installed.");
    }
    Ok(())
}

/// Polls `GET /healthz` on the loopback until it answers 200; returns its body.
fn wait_for_healthz(port: u16, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let attempt = || -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text)
        };
        match attempt() {
            Ok(text) if text.starts_with("HTTP/1.1 200") => {
                return Ok(text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_owned());
            }
            Ok(text) => last = text.lines().next().unwrap_or_default().to_owned(),
            Err(e) => last = e.to_string(),
        }
    }
    bail!("{last}")
}
