//! The `outpost` binary: parse the command line, set up logging, run, print the whole error chain.

use clap::Parser;

fn main() -> std::process::ExitCode {
    outpost::platform::memory::limit_arenas();
    outpost::platform::memory::raise_open_files();
    let cli = outpost::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match outpost::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("outpost: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
