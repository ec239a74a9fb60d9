//! The command line: `outpost run`, `outpost demo`, `outpost print-config`. Parses flags with clap,
//! reads the configuration file, and hands a validated [`crate::server::RunOptions`] to the server.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::{config::Config, server};

/// Outpost — the offline box of a quarantine site.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, about)]
pub struct Cli {
    /// Log filter (error, warn, info, debug, or a tracing filter such as `outpost=debug`).
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
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
    /// Run on a manual clock starting at this RFC 3339 time, moved by `set TIME` / `advance 30m` lines
    /// on standard input (for tests and drills).
    #[arg(long, value_name = "TIME")]
    pub clock: Option<DateTime<Utc>>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the box.
    Run(Common),
    /// Run a demo site (seeded people, no modem, no bands) with data in ./outpost-demo-data.
    Demo {
        #[command(flatten)]
        common: Common,
        /// How many people to seed into an empty demo site.
        #[arg(long, default_value_t = 50)]
        people: usize,
    },
    /// SMS tools: encode and decode PDUs (no modem needed).
    #[command(subcommand)]
    Sms(SmsCommand),
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
        SmsCommand::Decode { hex } => {
            let decoded = pdu::decode(&hex).context("cannot decode this PDU")?;
            println!("{}", serde_json::to_string_pretty(&decoded)?);
            Ok(())
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => String::new(),
    };
    Config::from_toml(&text).with_context(|| match path {
        Some(p) => format!("invalid configuration in {}", p.display()),
        None => "invalid embedded configuration".to_owned(),
    })
}

fn apply(common: &Common, default_data: Option<&str>) -> anyhow::Result<Config> {
    let mut raw = load_config(common.config.as_ref())?.raw;
    if let Some(d) = default_data {
        if common.config.is_none() {
            raw.store.data_dir = PathBuf::from(d);
        }
    }
    if let Some(d) = &common.data {
        raw.store.data_dir = d.clone();
    }
    if let Some(l) = &common.listen {
        raw.web.listen = l.clone();
    }
    Config::validate(raw).context("invalid configuration")
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(common) => server::run(server::RunOptions {
            config: apply(&common, None)?,
            manual_clock: common.clock,
            demo_people: None,
        }),
        Command::Demo { common, people } => server::run(server::RunOptions {
            config: apply(&common, Some("outpost-demo-data"))?,
            manual_clock: common.clock,
            demo_people: Some(people),
        }),
        Command::Sms(command) => sms(command),
        Command::PrintConfig { config } => {
            print!("{}", load_config(config.as_ref())?.to_toml());
            Ok(())
        }
    }
}
