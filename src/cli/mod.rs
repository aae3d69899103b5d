//! `coffer` as a client: commands that log in to a server, link a directory to an app
//! and environment, and read, write, run with, export and import its secrets.
//!
//! One module per command group; [`http`] (the API client), [`config`] (profiles and
//! the `.coffer.json` link) and [`output`] (tables, JSON, masking) are shared.

pub mod config;
mod diff;
mod dotenv;
mod export;
mod history;
pub mod http;
mod import;
mod login;
pub mod output;
mod run;
mod secrets;
mod target;

use std::fmt;
use std::process::ExitCode;

use clap::Subcommand;

/// The client commands, flattened into the binary's top-level command list.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Store a server address and token in a profile (the token is read from a prompt by default).
    Login(login::LoginArgs),
    /// Forget a profile's token.
    Logout(login::LogoutArgs),
    /// Link the current directory to an app and environment (writes .coffer.json).
    Link(login::LinkArgs),
    /// List, read, write and delete secrets.
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
    /// Run a command with the environment's secrets added to its environment.
    Run(run::RunArgs),
    /// Print the environment's secrets as dotenv, JSON, YAML or a Kubernetes Secret.
    Export(export::ExportArgs),
    /// Import secrets from a dotenv or JSON file, in atomic batches.
    Import(import::ImportArgs),
    /// Show the versions of a secret.
    History(history::HistoryArgs),
    /// Make an earlier version of a secret the current one.
    Rollback(history::RollbackArgs),
    /// Compare the secrets of two environments.
    Diff(diff::DiffArgs),
}

/// Runs a client command; the exit code is the command's (for `run`, the child's).
pub fn dispatch(command: ClientCommand) -> Result<ExitCode, CliError> {
    match command {
        ClientCommand::Login(args) => login::login(args),
        ClientCommand::Logout(args) => login::logout(args),
        ClientCommand::Link(args) => login::link(args),
        ClientCommand::Secrets { command } => secrets::run(command),
        ClientCommand::Run(args) => run::run(args),
        ClientCommand::Export(args) => export::export(args),
        ClientCommand::Import(args) => import::import(args),
        ClientCommand::History(args) => history::history(args),
        ClientCommand::Rollback(args) => history::rollback(args),
        ClientCommand::Diff(args) => diff::diff(args),
    }
    .map(|code| code.unwrap_or(ExitCode::SUCCESS))
}

/// What a command returns: `None` for plain success, or an exit code of its own.
pub type CommandResult = Result<Option<ExitCode>, CliError>;

/// Whether a failure is the caller's wrong use (exit 2) or anything else (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Wrong or missing arguments, nothing linked: exit code 2.
    Usage,
    /// The server refused, could not be reached, or a file could not be read: exit code 1.
    Failed,
}

/// A failure reported as one line on stderr.
#[derive(Debug, Clone)]
pub struct CliError {
    /// The line printed after `error: `. Never holds a token or a secret value.
    pub message: String,
    /// Which exit code it gets.
    pub kind: FailureKind,
}

impl CliError {
    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            kind: FailureKind::Usage,
        }
    }

    /// Any other failure (exit code 1).
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            kind: FailureKind::Failed,
        }
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            FailureKind::Usage => ExitCode::from(2),
            FailureKind::Failed => ExitCode::FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
