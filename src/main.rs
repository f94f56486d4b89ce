//! The `terraform-provider-flux` binary: set up logging to stderr, build the provider, and serve
//! it to Terraform (go-plugin handshake) or, with `--debug`, for a developer to attach
//! Terraform through `TF_REATTACH_PROVIDERS`.
//!
//! Kept tiny: everything of substance lives in the library. `anyhow` is used here only.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use terraform_provider_flux::protocol::handshake;
use terraform_provider_flux::{docs, logging, provider};

const USAGE: &str = "\
usage: terraform-provider-flux [--debug]

Without arguments the provider expects to be started by Terraform or OpenTofu.
  --debug   serve without Terraform and print the TF_REATTACH_PROVIDERS value to use";

/// What the command line asks for. New subcommands (e.g. a hidden `docs`) go here and in
/// [`Command::parse`].
enum Command {
    /// Serve as a Terraform plugin (the go-plugin handshake).
    Serve,
    /// Serve in debug mode.
    Debug,
    /// Print usage.
    Help,
    /// Hidden: regenerate the Registry documentation (`make docs`).
    Docs {
        /// Output directory (`docs`).
        out: std::path::PathBuf,
        /// Examples directory (`examples`).
        examples: std::path::PathBuf,
    },
}

impl Command {
    fn parse(args: &[String]) -> Result<Self, String> {
        match args {
            [] => Ok(Self::Serve),
            [flag] if flag == "--debug" || flag == "-debug" => Ok(Self::Debug),
            [flag] if flag == "--help" || flag == "-h" || flag == "help" => Ok(Self::Help),
            [docs, rest @ ..] if docs == "docs" => match rest {
                [o, out, e, examples] if o == "--out" && e == "--examples" => Ok(Self::Docs {
                    out: out.into(),
                    examples: examples.into(),
                }),
                _ => Err("usage: terraform-provider-flux docs --out DIR --examples DIR".into()),
            },
            other => Err(format!("unexpected arguments: {}", other.join(" "))),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    if let Command::Help = command {
        eprintln!("{USAGE}");
        return Ok(());
    }
    if let Command::Docs { out, examples } = &command {
        let summary = docs::generate(provider::service().schemas(), examples, out)?;
        eprintln!(
            "docs: {} written, {} unchanged, {} removed",
            summary.written.len(),
            summary.unchanged.len(),
            summary.removed.len()
        );
        return Ok(());
    }
    logging::init();
    // One thread: the provider waits on Terraform, the API server and Git far more than it
    // computes, and every extra worker thread costs start-up time and memory (its stack and its
    // own malloc arena). Blocking work (Git through libgit2) runs on tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let service = provider::service();
    let served = match command {
        Command::Debug => runtime.block_on(handshake::serve_debug(service)),
        Command::Serve | Command::Help | Command::Docs { .. } => {
            runtime.block_on(handshake::serve(service))
        }
    };
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(served?)
}
