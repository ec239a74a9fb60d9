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
    /// Serves sites' exchanges and enrolments over HTTPS with mutual TLS.
    Serve {
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
    },
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Adds a site (or renews its token) and prints its one-time enrolment token.
    Add {
        id: String,
        #[arg(long, default_value = "")]
        district: String,
    },
    /// Refuses a site's certificate from now on.
    Revoke { id: String },
    /// Lists the sites.
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
        Command::Site { command: SiteCommand::Add { id, district } } => {
            let token = province.add_site(&id, &district)?;
            println!("{token}");
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
                println!("{}\t{}\t{state}", s.id, s.district);
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
        Command::Serve { listen } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen).await?;
                println!("outpost-province listening on https://{}", listener.local_addr()?);
                Server::new(province).serve(listener).await
            })?;
        }
    }
    Ok(())
}
