//! `outpost-province`: the provincial server's command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use outpost_province::{
    acme::{AcmeConfig, Issuer},
    dns::{self, TsigKey},
    relay::{self, Relay},
    server::{Province, Server},
    users::{Scope, Users},
    web::Web,
};

/// Outpost's provincial server: the province's CA, the sites and their sync.
#[derive(Debug, Parser)]
#[command(name = "outpost-province", version, about)]
struct Cli {
    /// The province's data folder.
    #[arg(long, global = true, default_value = "outpost-province-data")]
    data: PathBuf,
    /// Keep the sites' documents in this PostgreSQL database (`postgres://…` or `host=… dbname=…`)
    /// instead of a store per site under the data folder. Several servers may share one database.
    /// Read from `OUTPOST_PROVINCE_DATABASE` when not given (a password stays off the command line).
    #[arg(long, global = true, default_value = "")]
    database: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Makes the province's CA and the server's certificate (once; again renews the server's).
    Init {
        /// Host names or addresses the server is reached by (besides province.outpost).
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// The sites.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Serves sites' exchanges and enrolments over HTTPS with mutual TLS, and pulls the sites that
    /// have an address.
    Serve {
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
        /// Seconds between pull cycles (0: never pull; sites push).
        #[arg(long, default_value_t = 300)]
        pull_every: u64,
        /// Longest wait before pulling a site that failed again (the wait doubles, with jitter).
        #[arg(long, default_value_t = 3600)]
        max_backoff: u64,
        /// Where to serve the web UI, for example 127.0.0.1:8480 (plain HTTP: keep it on loopback
        /// behind the province's HTTPS reverse proxy); none by default.
        #[arg(long, default_value = "")]
        web: String,
        /// A site whose last exchange is older than this many minutes shows offline.
        #[arg(long, default_value_t = 15)]
        online_minutes: i64,
        #[command(flatten)]
        reach: ReachArgs,
        #[command(flatten)]
        sms: SmsArgs,
    },
    /// A demo province: a few simulated sites in two districts and two users (passwords printed
    /// once), made in the data folder the first time, then served with the web UI.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        #[arg(long, default_value = "127.0.0.1:8480")]
        web: String,
    },
    /// Moves the sites' sled stores (under the data folder) into the database `--database` names:
    /// every document with its history, and the state of the exchange with each site. The stores
    /// are only read; remove them once the server runs on the database.
    Migrate,
    /// The web UI's users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// With --database: the province's analysts, PostgreSQL roles that read the views of schema
    /// `analytics` (docs/province.md) for their district's sites, or the province's.
    Analyst {
        #[command(subcommand)]
        command: AnalystCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AnalystCommand {
    /// Makes (or changes) an analyst's login role; the password from OUTPOST_PROVINCE_PASSWORD or
    /// standard input. The database connection must be allowed to make roles.
    Add {
        /// The role's name: lower-case letters, digits and _.
        role: String,
        /// Sees the whole province.
        #[arg(long, conflicts_with = "district", required_unless_present = "district")]
        province: bool,
        /// Sees the sites of this district only (as in `site add --district`).
        #[arg(long)]
        district: Option<String>,
    },
}

/// The last link (docs/sms.md): the province's own modem, to which sites send their confirmed daily
/// report and severe alerts by signed SMS while their data link is down.
#[derive(Debug, clap::Args, Clone, Default)]
struct SmsArgs {
    /// The modem's serial port (the AT port; "simulator": a simulated modem in the data folder).
    #[arg(long, default_value = "")]
    modem: String,
    /// The modem's SIM number, which sites are told to write to (e.g. +84905000111).
    #[arg(long, default_value = "")]
    sms_number: String,
}

/// Reach from home (docs/reach.md): phones connect to `<site>.<zone>` here, and each site's box keeps
/// a tunnel open to carry them.
#[derive(Debug, clap::Args, Clone, Default)]
struct ReachArgs {
    /// The zone whose names are the sites' (`<site-id>.<zone>`), in the province's DNS.
    #[arg(long, default_value = "")]
    zone: String,
    /// Where phones connect (the address `*.<zone>` resolves to from the internet), e.g. 0.0.0.0:443.
    #[arg(long, default_value = "", requires = "zone")]
    reach: String,
    /// Where boxes keep their tunnels open (mutual TLS with the site's certificate), e.g. 0.0.0.0:8444.
    #[arg(long, default_value = "", requires = "reach")]
    tunnels: String,
    /// Phones of one site through the relay at once (a flood towards one site leaves the others be).
    #[arg(long, default_value_t = 256)]
    reach_per_site: usize,
    /// The ACME CA's directory URL that issues the sites' names (DNS-01), e.g. Let's Encrypt's
    /// https://acme-v02.api.letsencrypt.org/directory; none: sites keep their own certificates.
    #[arg(long, default_value = "", requires_all = ["zone", "dns_server", "tsig_key_file"])]
    acme_directory: String,
    /// The CA certificates the ACME server's HTTPS is checked against.
    #[arg(long, default_value = "/etc/ssl/certs/ca-certificates.crt")]
    acme_roots: PathBuf,
    /// A contact address for the CA (mailto:…).
    #[arg(long)]
    acme_contact: Option<String>,
    /// The province's DNS server for the zone, host:port, which takes RFC 2136 updates.
    #[arg(long, default_value = "")]
    dns_server: String,
    /// A file holding the TSIG key for those updates, as `hmac-sha256:key-name:base64-secret`.
    #[arg(long, default_value = "")]
    tsig_key_file: String,
}

impl ReachArgs {
    /// The issuer of the sites' names, if the CA is given.
    fn issuer(&self, province: &Province) -> anyhow::Result<Option<std::sync::Arc<Issuer>>> {
        if self.acme_directory.is_empty() {
            return Ok(None);
        }
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
        };
        let key = TsigKey::parse(&read(std::path::Path::new(&self.tsig_key_file))?)
            .with_context(|| format!("the TSIG key in {}", self.tsig_key_file))?;
        let dns = dns::Updater { server: self.dns_server.clone(), zone: relay::normal_zone(&self.zone), key };
        let config = AcmeConfig {
            directory: self.acme_directory.clone(),
            roots_pem: read(&self.acme_roots)?,
            contact: self.acme_contact.clone(),
            dns,
        };
        Ok(Some(std::sync::Arc::new(Issuer::new(province.clone(), config)?)))
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Adds a user (or sets their password, name and scope). The password is read from
    /// OUTPOST_PROVINCE_PASSWORD, or else from the first line of standard input.
    Add {
        username: String,
        /// The name shown in the UI.
        #[arg(long, default_value = "")]
        name: String,
        /// A provincial administrator: sees every site.
        #[arg(long, conflicts_with = "district", required_unless_present = "district")]
        admin: bool,
        /// A district officer: sees the sites of this district only (as in `site add --district`).
        #[arg(long)]
        district: Option<String>,
    },
    /// Lists the users and what they see.
    List,
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Adds a site (or renews its token) and prints its one-time enrolment token.
    Add {
        id: String,
        #[arg(long, default_value = "")]
        district: String,
        /// `host:port` where the province can pull the site (its `sync.listen`); none: it pushes.
        #[arg(long)]
        address: Option<String>,
    },
    /// Sets or clears (`--none`) where the province pulls a site from.
    Address {
        id: String,
        #[arg(required_unless_present = "none")]
        address: Option<String>,
        #[arg(long)]
        none: bool,
    },
    /// Writes site ID's enrolment to a file for a USB stick, for a box with no link at all (uses up
    /// the site's token; the file holds the site's private key: delete it once the box has it).
    Export {
        id: String,
        /// Where the box will reach the province, HOST:PORT.
        #[arg(long)]
        province: String,
        /// The file to write (mode 0600).
        #[arg(long)]
        to: PathBuf,
    },
    /// Refuses a site's certificate from now on.
    Revoke { id: String },
    /// Lists the sites: id, district, state, address (or `push`), last successful exchange.
    List,
    /// What the province holds of a site: records by kind (the server must not be running).
    Show { id: String },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("outpost-province: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The commands that work on the database alone: the analysts' roles, and moving the sled stores in.
fn on_database(command: Command, province: &Province, database: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !database.is_empty(),
        "say which database: --database postgres://… (or OUTPOST_PROVINCE_DATABASE)"
    );
    let db = outpost_sync::pg::Database::connect(database, 1).context("the database (--database)")?;
    match command {
        Command::Analyst { command: AnalystCommand::Add { role, province: _, district } } => {
            let password = new_password()?;
            anyhow::ensure!(password.chars().count() >= 10, "a password is 10 characters or more");
            db.add_analyst(&role, &password, district.as_deref())?;
            println!(
                "{role} reads schema analytics for {}",
                district.as_deref().unwrap_or("the whole province")
            );
        }
        Command::Migrate => {
            let moved = outpost_province::migrate::migrate(province, &db, |site, done, total| {
                eprintln!("{site}: {done}/{total} documents");
            })?;
            for m in &moved {
                println!("{}\t{} documents", m.site, m.documents);
            }
            println!("{} sites moved; serve with the same --database.", moved.len());
        }
        _ => unreachable!("only the database's commands come here"),
    }
    Ok(())
}

/// A new password: `OUTPOST_PROVINCE_PASSWORD`, or a line of standard input (never an argument,
/// which `ps` shows).
fn new_password() -> anyhow::Result<String> {
    Ok(match std::env::var("OUTPOST_PROVINCE_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let province = Province::new(&cli.data);
    let database = match (cli.database.as_str(), std::env::var("OUTPOST_PROVINCE_DATABASE")) {
        ("", Ok(url)) => url,
        (url, _) => url.to_owned(),
    };
    // The server over the province's registry, its sites' documents where they are kept.
    let server = |province: Province| -> anyhow::Result<Server> {
        let server = Server::new(province);
        if database.is_empty() {
            return Ok(server);
        }
        let db = outpost_sync::pg::Database::connect(&database, 4).context("the database (--database)")?;
        Ok(server.with_database(db))
    };
    match cli.command {
        Command::Init { names } => {
            let ca = province.init(&names)?;
            println!("CA fingerprint (SHA-256): {}", ca.fingerprint);
        }
        Command::Site { command: SiteCommand::Add { id, district, address } } => {
            let token = province.add_site(&id, &district)?;
            if let Some(address) = address {
                province.set_address(&id, Some(&address))?;
            }
            println!("{token}");
        }
        Command::Site { command: SiteCommand::Address { id, address, none } } => {
            province.set_address(&id, if none { None } else { address.as_deref() })?;
        }
        Command::Site { command: SiteCommand::Revoke { id } } => province.revoke_site(&id)?,
        Command::Site { command: SiteCommand::Export { id, province: address, to } } => {
            let bundle = province.export_bundle(&id)?;
            let enrolment = outpost_link::site::Enrolment { province: address, bundle };
            outpost_link::ca::write_private(&to, &serde_json::to_vec_pretty(&enrolment)?)?;
            println!("{}: on the box, `outpost enroll --from-file` it, then delete it.", to.display());
        }
        Command::Site { command: SiteCommand::List } => {
            for s in province.sites()? {
                let state = if s.revoked {
                    "revoked"
                } else if s.enrolled {
                    "enrolled"
                } else {
                    "waiting"
                };
                let log = province.sync_log(&s.id);
                let last = log.link.last_success.map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
                let address = s.address.as_deref().unwrap_or("push");
                let clock = log
                    .link
                    .peer_clock_ahead_seconds
                    .map_or_else(String::new, |s| format!("\tclock {s:+} s"));
                println!("{}\t{}\t{state}\t{address}\t{last}{clock}", s.id, s.district);
            }
        }
        Command::Site { command: SiteCommand::Show { id } } => {
            anyhow::ensure!(province.site(&id)?.is_some(), "no site {id}");
            let store = server(province)?.store(&id)?;
            let mut counts = std::collections::BTreeMap::new();
            for (_, doc_id) in store.changes_since(0, usize::MAX)? {
                *counts.entry(doc_id.split('/').next().unwrap_or_default().to_owned()).or_insert(0u64) += 1;
            }
            println!("{}", serde_json::to_string(&counts)?);
        }
        Command::User { command: UserCommand::Add { username, name, admin, district } } => {
            let scope = match (admin, district) {
                (true, _) => Scope::Province,
                (false, Some(d)) => Scope::District(d),
                (false, None) => anyhow::bail!("say --admin or --district"),
            };
            Users::new(&province.dir).add(&username, &name, scope, &new_password()?)?;
        }
        Command::User { command: UserCommand::List } => {
            for u in Users::new(&province.dir).all()? {
                let scope = match &u.scope {
                    Scope::Province => "province".to_owned(),
                    Scope::District(d) => format!("district\t{d}"),
                };
                println!("{}\t{}\t{scope}", u.username, u.display_name);
            }
        }
        command @ (Command::Analyst { .. } | Command::Migrate) => on_database(command, &province, &database)?,
        Command::Demo { listen, web } => {
            if province.dir.join("ca").exists() {
                println!("The demo province in {} is there already; serving it.", province.dir.display());
            } else {
                outpost_province::demo::make(&province)?;
            }
            // The demo keeps its sites in sled stores under its folder, whatever --database says.
            let server = Server::new(province.clone());
            let none = (&ReachArgs::default(), &SmsArgs::default());
            serve((province, server), &listen, (0, 3600), &web, 15, none)?;
        }
        Command::Serve { listen, pull_every, max_backoff, web, online_minutes, reach, sms } => {
            let server = server(province.clone())?;
            serve(
                (province, server),
                &listen,
                (pull_every, max_backoff),
                &web,
                online_minutes,
                (&reach, &sms),
            )?;
        }
    }
    Ok(())
}

/// The province's modem and what keeps it (and its simulator) running, when `--modem` names one.
fn start_modem(
    province: &Province,
    sms: &SmsArgs,
) -> anyhow::Result<Option<(outpost_sms::modem::Modem, Option<outpost_sms::sim::Simulator>)>> {
    if sms.modem.is_empty() {
        return Ok(None);
    }
    anyhow::ensure!(!sms.sms_number.is_empty(), "--modem needs --sms-number: the number sites write to");
    let (port, sim) = if sms.modem == "simulator" {
        let sim = outpost_sms::sim::Simulator::start(&province.dir.join("modem-simulator"))?;
        (sim.path().to_owned(), Some(sim))
    } else {
        (std::path::PathBuf::from(&sms.modem), None)
    };
    let inbox = std::sync::Arc::new(outpost_province::bysms::SmsInbox::new(province.clone()));
    let modem = outpost_sms::modem::Modem::start(outpost_sms::modem::ModemConfig::new(&port), inbox);
    println!("SMS from sites on {} ({})", port.display(), sms.sms_number);
    Ok(Some((modem, sim)))
}

/// Serves sites' exchanges on `listen`, the web UI on `web` (if any), the relay for phones from
/// home (if asked), and pulls every `pull_every` seconds (0: never).
fn serve(
    (province, server): (Province, Server),
    listen: &str,
    (pull_every, max_backoff): (u64, u64),
    web: &str,
    online_minutes: i64,
    (reach, sms): (&ReachArgs, &SmsArgs),
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        println!("outpost-province listening on https://{}", listener.local_addr()?);
        let _modem = start_modem(&province, sms)?;
        let mut server = server;
        if !sms.sms_number.is_empty() {
            server = server.with_sms_number(&sms.sms_number);
        }
        if let Some(issuer) = reach.issuer(&province)? {
            println!("names *.{} from {}", issuer.zone(), reach.acme_directory);
            server = server.with_names(issuer.clone());
            tokio::spawn(issuer.run());
        }
        if !reach.reach.is_empty() {
            anyhow::ensure!(
                !reach.tunnels.is_empty(),
                "--reach needs --tunnels: where boxes keep their tunnels"
            );
            let limits = relay::Limits { per_site: reach.reach_per_site.max(1), ..relay::Limits::default() };
            let relay = Relay::new(server.clone(), &reach.zone, limits);
            let phones = std::net::TcpListener::bind(&reach.reach)?;
            let tunnels = std::net::TcpListener::bind(&reach.tunnels)?;
            println!(
                "phones from home for *.{} on {}; tunnels on {}",
                relay::normal_zone(&reach.zone),
                phones.local_addr()?,
                tunnels.local_addr()?
            );
            relay.start(phones, tunnels)?;
        }
        if !web.is_empty() {
            let web_listener = tokio::net::TcpListener::bind(&web).await?;
            println!("web UI on http://{}", web_listener.local_addr()?);
            let ui = Web::new(server.clone(), chrono::Duration::minutes(online_minutes.max(1)));
            tokio::spawn(async move {
                if let Err(e) = ui.serve(web_listener).await {
                    tracing::error!(error = %format!("{e:#}"), "The web UI stopped.");
                }
            });
        }
        if pull_every > 0 {
            let every = std::time::Duration::from_secs(pull_every);
            let max = std::time::Duration::from_secs(max_backoff.max(pull_every));
            tokio::spawn(server.clone().pull_loop(every, max));
        }
        server.serve(listener).await
    })?;
    Ok(())
}
