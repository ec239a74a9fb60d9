//! `outpost-province`: the provincial server's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use outpost_province::server::{Province, Server};

/// Outpost's provincial server: the province's CA, the sites and their sync.
#[derive(Debug, Parser)]
#[command(name = "outpost-province", version, about)]
struct Cli {
    /// The province's data folder.
    #[arg(long, global = true, default_value = "outpost-province-data")]
    data: PathBuf,
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
    },
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let province = Province::new(&cli.data);
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
                println!("{}\t{}\t{state}\t{address}\t{last}", s.id, s.district);
            }
        }
        Command::Site { command: SiteCommand::Show { id } } => {
            anyhow::ensure!(province.site(&id)?.is_some(), "no site {id}");
            let store = Server::new(province).store(&id)?;
            let mut counts = std::collections::BTreeMap::new();
            for (_, doc_id) in store.changes_since(0, usize::MAX)? {
                *counts.entry(doc_id.split('/').next().unwrap_or_default().to_owned()).or_insert(0u64) += 1;
            }
            println!("{}", serde_json::to_string(&counts)?);
        }
        Command::Serve { listen, pull_every, max_backoff } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                println!("outpost-province listening on https://{}", listener.local_addr()?);
                let server = Server::new(province);
                if pull_every > 0 {
                    let every = std::time::Duration::from_secs(pull_every);
                    let max = std::time::Duration::from_secs(max_backoff.max(pull_every));
                    tokio::spawn(server.clone().pull_loop(every, max));
                }
                server.serve(listener).await
            })?;
        }
    }
    Ok(())
}
