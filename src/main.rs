//! The `coffer` binary: `serve`, `init`, `audit verify`, admin commands that talk to
//! a running server over its HTTP API, and the client (`login`, `secrets`, `run`, ...).

mod admin;
mod backup;
mod cli;
mod rekey;
mod serve;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser as _;
use clap::{Args, CommandFactory, Parser, Subcommand};

/// Coffer: a self-hosted secrets engine speaking the Phase secrets API.
#[derive(Debug, Parser)]
#[command(name = "coffer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (initialises an empty data directory first).
    Serve(serve::ServeArgs),
    /// Initialise a data directory and print the first admin (User) token.
    Init(StoreArgs),
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage apps on a running server (uses COFFER_ADDR and COFFER_TOKEN).
    App {
        #[command(subcommand)]
        command: admin::AppCommand,
    },
    /// Manage environments on a running server.
    Env {
        #[command(subcommand)]
        command: admin::EnvCommand,
    },
    /// Manage tokens on a running server.
    Token {
        #[command(subcommand)]
        command: admin::TokenCommand,
    },
    /// Take a consistent, encrypted backup of a running server (uses COFFER_ADDR and
    /// COFFER_TOKEN); it opens only with the server's master key.
    Backup(backup::BackupArgs),
    /// Restore a backup as a new data directory (the server need not run).
    Restore(backup::RestoreArgs),
    /// Rotate the master key of a stopped server's data directory.
    Rekey(rekey::RekeyArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
    /// Print a shell completion script: `coffer completions bash > /etc/bash_completion.d/coffer`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit hash chain and report the first broken entry.
    Verify(StoreArgs),
}

/// Which engine holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageKind {
    /// sled in the data directory: one node.
    Embedded,
    /// An etcd cluster (v3 API) shared by several nodes.
    Etcd,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Where the state lives: `embedded` (in --data-dir) or `etcd` (a cluster several
    /// nodes share; needs --etcd-endpoints and --master-key-file).
    #[arg(long, env = "COFFER_STORAGE", value_enum, default_value_t = StorageKind::Embedded)]
    pub storage: StorageKind,
    /// Client URLs of the etcd cluster's members, comma-separated (with --storage etcd).
    #[arg(
        long,
        env = "COFFER_ETCD_ENDPOINTS",
        value_delimiter = ',',
        required_if_eq("storage", "etcd")
    )]
    pub etcd_endpoints: Vec<String>,
    /// The key prefix of this store in the etcd cluster (several stores may share one).
    #[arg(long, env = "COFFER_ETCD_PREFIX", default_value = "coffer/")]
    pub etcd_prefix: String,
    /// Data directory.
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    pub data_dir: PathBuf,
    /// Master key file (32 bytes raw or 64 hex characters); default `<data-dir>/master.key`,
    /// generated on first start.
    #[arg(long, env = "COFFER_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Page cache of the store, in MiB (more keeps more of a large store in memory).
    #[arg(long, env = "COFFER_CACHE_MIB", default_value_t = coffer_store::DEFAULT_CACHE_MIB,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub cache_mib: u64,
    /// When a write is answered: `strict`, once it is fsynced (it survives a power loss);
    /// `relaxed`, once it is handed to the operating system (it survives a crash of
    /// Coffer, not a power loss: the log is fsynced in the background every 500 ms).
    #[arg(long, env = "COFFER_DURABILITY", default_value = "strict",
          value_parser = clap::builder::PossibleValuesParser::new(["strict", "relaxed"])
              .map(|s| s.parse::<coffer_store::Durability>().expect("a listed value")))]
    pub durability: coffer_store::Durability,
    /// The node whose audit chain this process appends to (each node of a cluster has
    /// its own); default: the host's name with `--storage etcd`, else an id the data
    /// directory keeps from its first start.
    #[arg(long, env = "COFFER_NODE_ID", value_parser = node_id)]
    pub node_id: Option<String>,
}

fn node_id(text: &str) -> Result<String, String> {
    if coffer_store::valid_node_id(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "use 1 to {} letters, digits, '.', '_' or '-'",
            coffer_store::MAX_NODE_ID_LEN
        ))
    }
}

impl StoreArgs {
    /// Opens the store these arguments name.
    pub fn open(&self) -> Result<coffer_store::Store, String> {
        let mut config = coffer_store::StoreConfig::new(&self.data_dir);
        config.storage = match self.storage {
            StorageKind::Embedded => coffer_store::Storage::Embedded,
            StorageKind::Etcd => coffer_store::Storage::Etcd {
                endpoints: self.etcd_endpoints.clone(),
                prefix: self.etcd_prefix.clone(),
            },
        };
        config.master_key_file = self.master_key_file.clone();
        config.cache_bytes = self.cache_mib << 20;
        config.durability = self.durability;
        config.node_id = self.node_id.clone();
        coffer_store::Store::open(&config).map_err(|e| e.to_string())
    }
}

fn init(args: &StoreArgs) -> Result<(), String> {
    let store = args.open()?;
    match store.initialize().map_err(|e| e.to_string())? {
        Some(token) => {
            println!("{}", &*token.token);
            eprintln!(
                "phaseToken (for the Phase CLI and SDKs): {}",
                &*token.phase_token
            );
            Ok(())
        }
        None => Err(format!(
            "{} is already initialised; its admin token was printed when it was created",
            args.data_dir.display()
        )),
    }
}

fn verify_audit(args: &StoreArgs) -> Result<(), String> {
    let store = args.open()?;
    let report = store.verify_audit().map_err(|e| e.to_string())?;
    // One line per chain; a store of one chain (one node) says so without naming it.
    let named = report.chains.len() > 1;
    for chain in &report.chains {
        let chain_name = if named {
            format!("audit chain of node {}", chain.node_id)
        } else {
            "audit chain".to_owned()
        };
        if chain.broken_checkpoint {
            return Err(format!(
                "{chain_name}: checkpoint failed authentication (edited or moved)"
            ));
        }
        let from = chain
            .from_checkpoint
            .map(|seq| format!(", verified from checkpoint {seq}"))
            .unwrap_or_default();
        match chain.first_broken {
            None => println!("{chain_name} intact: {} entries{from}", chain.checked),
            Some(seq) => {
                return Err(format!(
                    "{chain_name} broken at entry {seq} ({} entries before it are intact{from})",
                    chain.checked
                ))
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Init(args) => init(&args),
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => verify_audit(&args),
        Command::App { command } => admin::app(command),
        Command::Env { command } => admin::env(command),
        Command::Token { command } => admin::token(command),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Rekey(args) => rekey::rekey(args),
        Command::Client(command) => {
            return cli::dispatch(command).unwrap_or_else(|error| {
                eprintln!("error: {error}");
                error.exit_code()
            })
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "coffer", &mut script);
            cli::output::write_stdout(&script);
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
