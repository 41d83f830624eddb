//! `tollgate`: the admin command line. Settings come from the environment (the names of
//! docs/compatibility.md), or from `--env-file FILE` (`KEY=VALUE` lines, like `.tollgate/dev.env`), which wins.

mod cli;
mod commands;
mod config;
mod output;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
