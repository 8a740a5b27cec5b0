//! The `bacalhau` binary: parses the command line and hands each command to its module.
//! Only wiring lives here; behaviour lives in the library crates.

/// Prints a line to stdout; a closed pipe (`bacalhau job list | head`) is not an error.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints to stdout without a newline; a closed pipe is not an error.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod commands;
mod config;
mod host;
mod otel;
mod output;

use clap::FromArgMatches as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = commands::command().get_matches();
    let mut cli = match commands::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    cli.set_leading_config(commands::leading_config(std::env::args()));
    let logging = cli.logging();
    // BACALHAU_LOG_LEVEL and RUST_LOG (full filter syntax) win over the configuration.
    let filter = tracing_subscriber::EnvFilter::try_from_env("BACALHAU_LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| match logging.directive() {
            // Raft's own progress (votes, replication) is debug detail for an operator.
            "info" => tracing_subscriber::EnvFilter::new("info,openraft=warn"),
            directive => tracing_subscriber::EnvFilter::new(directive),
        });
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match logging.mode.to_ascii_lowercase().as_str() {
        "json" => logger.json().init(),
        // Upstream's `cmd` mode: terse lines for a terminal.
        "cmd" => logger.without_time().with_target(false).init(),
        _ => logger.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
