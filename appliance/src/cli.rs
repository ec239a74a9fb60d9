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
    /// Print the effective configuration (defaults with the file laid over them).
    PrintConfig {
        /// The site's configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
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
        Command::PrintConfig { config } => {
            print!("{}", load_config(config.as_ref())?.to_toml());
            Ok(())
        }
    }
}
