//! The command line: `outpost run`, `outpost demo`, `outpost print-config`, and the tools (backup,
//! restore, update, enrolment, SMS, modem and BLE diagnostics). Parses flags with clap, reads the
//! configuration file, and hands a validated [`crate::run::RunOptions`] to the box.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::{
    base::config::{Config, RawConfig},
    platform::{backup, stick, update},
    run,
    services::{link, mqtt},
};

/// Outpost — the offline box of a quarantine site.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, about)]
pub struct Cli {
    /// Log filter (error, warn, info, debug, or a tracing filter such as `outpost=debug`). rumqttd's
    /// own log is off by default: it logs each refused login and dropped connection as an error,
    /// without limit; the box logs those itself, at most once a minute.
    #[arg(long, global = true, default_value = "info,rumqttd=off")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The site's configuration file (TOML); keys it does not set keep their embedded defaults.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Where the box keeps its data (overrides `store.data_dir`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Address of the web UI (overrides `web.listen`), e.g. 0.0.0.0:8080; port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<String>,
    /// Address of the web UI over HTTPS (overrides `web.tls_listen`); `off`: plain HTTP only.
    #[arg(long, value_name = "ADDR|off")]
    pub tls_listen: Option<String>,
    /// Address of the MQTT broker (overrides `mqtt.listen`); `off` for no broker at all.
    #[arg(long, value_name = "ADDR|off")]
    pub mqtt: Option<String>,
    /// Address of the broker's TLS port (overrides `mqtt.tls_listen`); `off` for none.
    #[arg(long, value_name = "ADDR|off")]
    pub mqtt_tls: Option<String>,
    /// Run on a manual clock starting at this RFC 3339 time, moved by `set TIME` / `advance 30m` lines
    /// on standard input (for tests and drills).
    #[arg(long, value_name = "TIME")]
    pub clock: Option<DateTime<Utc>>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the box.
    Run(Common),
    /// Run a demo site (seeded people wearing simulated bands, a simulated modem) with data in
    /// ./outpost-demo-data.
    Demo {
        #[command(flatten)]
        common: Common,
        /// How many people to seed into an empty demo site.
        #[arg(long, default_value_t = 50)]
        people: usize,
    },
    /// SMS tools: encode and decode PDUs, or send through a modem.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// Modem diagnostics.
    #[command(subcommand)]
    Modem(ModemCommand),
    /// Wristband diagnostics for whoever sets up a site: what the box's adapter or the site's gateways
    /// see, one JSON line per sighting.
    #[command(subcommand)]
    Ble(BleCommand),
    /// Enrol this box with the province once: `outpost-province site add` gave the token.
    Enroll {
        #[command(flatten)]
        common: Common,
        /// The provincial server, HOST:PORT.
        #[arg(long, required_unless_present = "from_file")]
        province: Option<String>,
        /// The one-time enrolment token; better from the environment (`OUTPOST_ENROLL_TOKEN`),
        /// which keeps it out of the process list and the shell history.
        #[arg(long)]
        token: Option<String>,
        /// Without any link: the enrolment file a USB stick brought from the province
        /// (`outpost-province site export`). Delete it from the stick afterwards.
        #[arg(long, conflicts_with_all = ["province", "token"])]
        from_file: Option<PathBuf>,
    },
    /// Write a backup of the box's data into a folder: a consistent copy, taken while the box runs
    /// (through its control socket) or from the data folder when it does not.
    Backup {
        #[command(flatten)]
        common: Common,
        /// The folder to write `outpost-<site>-<time>.backup` into (a USB stick, say).
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into the data folder (stop the box first). The data there is moved aside,
    /// not overwritten; a backup of another site or from a newer version is refused.
    Restore {
        #[command(flatten)]
        common: Common,
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
    /// Install an update from a package file (from a USB stick): checks it, backs the data up,
    /// installs it with dpkg (the data is kept) and waits for the box to answer again. As root.
    Update {
        #[command(flatten)]
        common: Common,
        /// The package, `outpost_<version>_<arch>.deb`.
        #[arg(long)]
        from: PathBuf,
        /// Where the backup taken first goes (default: `outpost-backups` beside the data folder).
        #[arg(long)]
        backup_to: Option<PathBuf>,
    },
    /// Carry out what an administrator asked for on the health page with a USB stick (a backup onto
    /// it, an update from it): run as root by outpost-stick.service when the box leaves the request.
    Stick {
        #[command(flatten)]
        common: Common,
        /// Where to mount the stick while it is used.
        #[arg(long, default_value = stick::MOUNT_AT)]
        mount_at: PathBuf,
    },
    /// Print the effective configuration (defaults with the file laid over them).
    PrintConfig {
        /// The site's configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SmsCommand {
    /// Print the SMS-SUBMIT PDUs for a message, in hex, one per line, as `AT+CMGS` sends them.
    Encode {
        /// Destination number: `+84…` (international) or `0…` (national).
        #[arg(long)]
        to: String,
        /// The message text (any language; Vietnamese letters are sent as UCS-2).
        #[arg(long)]
        text: String,
        /// Concatenation reference for a multipart message (0–255).
        #[arg(long, default_value_t = 0)]
        reference: u8,
    },
    /// Decode a PDU (as `AT+CMGR`, `AT+CMGL` or `+CDS` show it) and print it as JSON.
    Decode {
        /// The PDU in hex, service-centre address first.
        hex: String,
    },
    /// Send one message through a modem (stop the box first: the port is opened exclusively).
    Send {
        #[command(flatten)]
        port: PortArgs,
        /// Destination number: `+84…` or `0…`.
        #[arg(long)]
        to: String,
        /// The message text.
        #[arg(long)]
        text: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct PortArgs {
    /// The modem's serial port, e.g. /dev/ttyUSB2 or /dev/serial/by-id/….
    #[arg(long)]
    port: PathBuf,
    /// The SIM PIN, if it asks for one (tried once).
    #[arg(long)]
    pin: Option<String>,
    /// Line speed.
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
}

#[derive(Debug, Subcommand)]
pub enum ModemCommand {
    /// Connect to each modem and print its state (SIM, registration, signal, operator) as JSON: one
    /// object for one `--port`, a list for several (a site with several modems).
    Status {
        /// A modem's serial port; repeat for each modem.
        #[arg(long = "port", required = true)]
        ports: Vec<PathBuf>,
        /// The SIM PIN, if it asks for one (tried once).
        #[arg(long)]
        pin: Option<String>,
        /// Line speed.
        #[arg(long, default_value_t = 115_200)]
        baud: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum BleCommand {
    /// Scan with the box's Bluetooth adapter (through BlueZ) and print each sighting: address, RSSI,
    /// and the parsed battery, strap and beacon fields.
    Scan {
        /// How long to scan.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// The adapter (`hci0`); the first one if not given.
        #[arg(long)]
        adapter: Option<String>,
    },
    /// Subscribe to a broker's gateway topics (ESPresense, Theengs/OpenMQTTGateway) and print each
    /// sighting, or why a message was refused. The password is read from `OUTPOST_MQTT_PASSWORD`.
    Listen {
        /// The broker, `HOST:PORT` (the box's own: 127.0.0.1:1883).
        #[arg(long)]
        mqtt: String,
        /// The device name to connect as (added by an administrator under MQTT).
        #[arg(long)]
        user: String,
        /// Stop after this many seconds (default: until interrupted).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

fn ble_command(command: BleCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _in_runtime = rt.enter();
    match command {
        BleCommand::Scan { seconds, adapter } => {
            let stats = std::sync::Arc::new(outpost_ble::scan::ScanStats::default());
            let config = outpost_ble::scan::ScanConfig {
                adapter,
                scanner: "box".into(),
                watchdog: std::time::Duration::from_secs(30),
            };
            rt.block_on(outpost_ble::scan::run(
                config,
                stats.clone(),
                chrono::Utc::now,
                |s| println!("{}", serde_json::to_string(&s).unwrap_or_default()),
                tokio::time::sleep(std::time::Duration::from_secs(seconds)),
            ))
            .context("cannot scan (is bluetoothd running, and may this user use it?)")?;
            let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!(
                "{} events, {} sightings, {} watchdog restarts",
                n(&stats.events),
                n(&stats.sightings),
                n(&stats.restarts)
            );
            Ok(())
        }
        BleCommand::Listen { mqtt, user, seconds } => {
            let password = std::env::var("OUTPOST_MQTT_PASSWORD").context(
                "set OUTPOST_MQTT_PASSWORD to the device's password (it is not taken on the command line)",
            )?;
            let (host, port) = mqtt.rsplit_once(':').context("--mqtt takes HOST:PORT")?;
            let port: u16 = port.parse().context("--mqtt takes HOST:PORT")?;
            rt.block_on(mqtt::listen(host, port, &user, &password, seconds))
        }
    }
}

/// Opens the modem and waits (up to 15 s) for it to be ready.
fn open_modem(port: &PortArgs) -> anyhow::Result<outpost_sms::modem::Modem> {
    use outpost_sms::{modem, pdu};
    struct Ignore;
    impl modem::ModemEvents for Ignore {
        fn received(&self, _: &pdu::Deliver, _: &str) -> bool {
            false // leave messages on the SIM for the box
        }
        fn report(&self, _: &pdu::StatusReport) {}
    }
    if !port.port.exists() {
        anyhow::bail!("the modem at {} is not ready: no such port (is it plugged in?)", port.port.display());
    }
    let config =
        modem::ModemConfig { baud: port.baud, pin: port.pin.clone(), ..modem::ModemConfig::new(&port.port) };
    let m = modem::Modem::start(config, std::sync::Arc::new(Ignore));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !m.health().connected {
        if std::time::Instant::now() > deadline {
            let h = m.health();
            anyhow::bail!(
                "the modem at {} is not ready: {}",
                port.port.display(),
                h.last_error.unwrap_or_else(|| "no answer".into())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(m)
}

fn modem_command(command: ModemCommand) -> anyhow::Result<()> {
    match command {
        ModemCommand::Status { ports, pin, baud } => {
            if let [port] = ports.as_slice() {
                let m = open_modem(&PortArgs { port: port.clone(), pin, baud })?;
                println!("{}", serde_json::to_string_pretty(&m.health())?);
                return Ok(());
            }
            // Several: every modem's state, the ones that cannot be used with why.
            let mut states = Vec::new();
            let mut unusable = 0;
            for port in &ports {
                let state = match open_modem(&PortArgs { port: port.clone(), pin: pin.clone(), baud }) {
                    Ok(m) => serde_json::to_value(m.health())?,
                    Err(error) => {
                        unusable += 1;
                        serde_json::json!({"connected": false, "last_error": format!("{error:#}")})
                    }
                };
                states.push(serde_json::json!({"port": port.display().to_string(), "modem": state}));
            }
            println!("{}", serde_json::to_string_pretty(&states)?);
            if unusable > 0 {
                anyhow::bail!("{unusable} of {} modems cannot be used", ports.len());
            }
            Ok(())
        }
    }
}

fn sms(command: SmsCommand) -> anyhow::Result<()> {
    use outpost_sms::pdu;
    match command {
        SmsCommand::Encode { to, text, reference } => {
            let options = pdu::SubmitOptions { reference, ..pdu::SubmitOptions::default() };
            let parts = pdu::encode_submit(&to, &text, options).context("cannot encode this message")?;
            let (alphabet, _) = pdu::parts_needed(&text);
            eprintln!(
                "{} part(s), {:?}; send each with AT+CMGS=<length> (lengths: {})",
                parts.len(),
                alphabet,
                parts.iter().map(|p| p.tpdu_len.to_string()).collect::<Vec<_>>().join(", ")
            );
            for p in parts {
                println!("{}", p.hex);
            }
            Ok(())
        }
        SmsCommand::Send { port, to, text } => {
            let m = open_modem(&port)?;
            match m.send(&to, &text, 0) {
                outpost_sms::modem::SendOutcome::Sent { references } => {
                    println!("{}", serde_json::json!({"sent": true, "references": references}));
                    Ok(())
                }
                outpost_sms::modem::SendOutcome::Failed { permanent, reason } => {
                    anyhow::bail!(
                        "not sent ({}): {reason}",
                        if permanent { "permanent" } else { "temporary" }
                    )
                }
                outpost_sms::modem::SendOutcome::ModemLost { reason } => {
                    anyhow::bail!("not sent (the modem was lost): {reason}")
                }
            }
        }
        SmsCommand::Decode { hex } => {
            let decoded = pdu::decode(&hex).context("cannot decode this PDU")?;
            println!("{}", serde_json::to_string_pretty(&decoded)?);
            Ok(())
        }
    }
}

/// The configuration file (or none) over the defaults, as written.
fn load_raw(path: Option<&PathBuf>) -> anyhow::Result<RawConfig> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => String::new(),
    };
    let context = || match path {
        Some(p) => format!("invalid configuration in {}", p.display()),
        None => "invalid embedded configuration".to_owned(),
    };
    let raw = RawConfig::from_toml(&text).with_context(context)?;
    // Checked here too, so that a bad file names itself.
    Config::validate(raw.clone()).with_context(context)?;
    Ok(raw)
}

/// The last configuration a box in `--data` started with, when it kept one.
fn last_good(common: &Common) -> Option<Config> {
    let kept = run::last_good_config(common.data.as_ref()?);
    if !kept.exists() {
        return None;
    }
    apply(&Common { config: Some(kept), ..common.clone() }, false).ok()
}

fn apply(common: &Common, demo: bool) -> anyhow::Result<Config> {
    let mut raw = load_raw(common.config.as_ref())?;
    if demo && common.config.is_none() {
        // The demo's own defaults: its own data folder, a simulated modem and simulated bands.
        raw.store.data_dir = PathBuf::from("outpost-demo-data");
        raw.modem.port = crate::base::config::raw::Ports::One("simulator".into());
        raw.bands.adapter = "simulator".into();
    }
    if let Some(d) = &common.data {
        raw.store.data_dir = d.clone();
    }
    if let Some(l) = &common.listen {
        raw.web.listen = l.clone();
    }
    let off = |m: &String| if m == "off" { String::new() } else { m.clone() };
    if let Some(m) = &common.mqtt {
        raw.mqtt.listen = off(m);
        if m == "off" {
            raw.mqtt.tls_listen = String::new();
        }
    }
    if let Some(m) = &common.mqtt_tls {
        raw.mqtt.tls_listen = off(m);
    }
    if let Some(t) = &common.tls_listen {
        raw.web.tls_listen = off(t);
    }
    Config::validate(raw).context("invalid configuration")
}

/// `outpost run`: on the configuration file, or on the last one that worked when it does not load.
fn run_box(common: Common) -> anyhow::Result<()> {
    let (config, config_problem) = match apply(&common, false) {
        Ok(config) => (config, None),
        Err(error) => {
            let Some(config) = last_good(&common) else { return Err(error) };
            let problem = format!("{error:#}");
            tracing::error!(%problem, "The configuration file cannot be used: running on the last configuration that worked. Fix the file and restart.");
            (config, Some(problem))
        }
    };
    run::run(run::RunOptions {
        config,
        manual_clock: common.clock,
        demo_people: None,
        config_file: common.config.clone().filter(|_| config_problem.is_none()),
        config_problem,
    })
}

fn backup_command(common: Common, to: PathBuf) -> anyhow::Result<()> {
    let config = apply(&common, false)?;
    let started = std::time::Instant::now();
    let (path, summary) =
        backup::backup_to(&to, &config.store.data_dir, &config.site.id, chrono::Utc::now())?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "Backup written: {} ({} entries, {} files, {:.1} MB, {:.1} s).",
        path.display(),
        summary.entries,
        summary.files,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn restore_command(common: Common, from: PathBuf) -> anyhow::Result<()> {
    let config = apply(&common, false)?;
    let data_dir = &config.store.data_dir;
    let restored = backup::restore(&from, data_dir, &config.site.id, chrono::Utc::now())?;
    println!(
        "Restored the backup of site {} made {} by Outpost {} ({} entries, {} files) into {}.",
        restored.manifest.site_id,
        restored.manifest.created_at.format("%Y-%m-%d %H:%M UTC"),
        restored.manifest.version,
        restored.summary.entries,
        restored.summary.files,
        data_dir.display()
    );
    if data_dir.join("sync").join("link.json").exists() {
        println!(
            "This box is enrolled with the province: at its first exchange the province sees a \
             restored box and sends back what it holds of this site, what the old box sent after \
             the backup included."
        );
    }
    if let Some(previous) = restored.previous {
        println!(
            "The data that was there is kept in {} (delete it when the box runs well).",
            previous.display()
        );
    }
    Ok(())
}

fn enroll_command(
    common: Common,
    province: Option<String>,
    token: Option<String>,
    from_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let config = apply(&common, false)?;
    let (data_dir, site_id) = (&config.store.data_dir, &config.site.id);
    let enrolment = match (from_file, province) {
        (Some(file), _) => link::enroll_from_file(data_dir, site_id, &file)?,
        (None, Some(province)) => {
            let token = token
                .or_else(|| std::env::var("OUTPOST_ENROLL_TOKEN").ok())
                .context("no enrolment token: set OUTPOST_ENROLL_TOKEN (or --token)")?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(link::enroll(data_dir, site_id, &province, &token))?
        }
        (None, None) => anyhow::bail!("say --province HOST:PORT, or --from-file FILE"),
    };
    println!("Enrolled as site {} with the province at {}.", enrolment.bundle.site_id, enrolment.province);
    Ok(())
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(common) => run_box(common),
        Command::Demo { common, people } => run::run(run::RunOptions {
            config: apply(&common, true)?,
            manual_clock: common.clock,
            demo_people: Some(people),
            config_file: None,
            config_problem: None,
        }),
        Command::Backup { common, to } => backup_command(common, to),
        Command::Restore { common, from } => restore_command(common, from),
        Command::Update { common, from, backup_to } => {
            update::update(&apply(&common, false)?, &from, backup_to)
        }
        Command::Stick { common, mount_at } => {
            // A broken configuration file must not stop the update that may mend it.
            let config = apply(&common, false).or_else(|e| last_good(&common).ok_or(e))?;
            stick::serve(&config, &mount_at)
        }
        Command::Enroll { common, province, token, from_file } => {
            enroll_command(common, province, token, from_file)
        }
        Command::Sms(command) => sms(command),
        Command::Modem(command) => modem_command(command),
        Command::Ble(command) => ble_command(command),
        Command::PrintConfig { config } => {
            print!("{}", Config::validate(load_raw(config.as_ref())?)?.to_toml());
            Ok(())
        }
    }
}
