//! `coffer rekey`: rotates the master key of a stopped server's data directory.

use std::path::PathBuf;

use clap::Args;
use coffer_store::rekey::{RekeyOutcome, RekeyRequest};

/// Options of `coffer rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Data directory (of a stopped server).
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    data_dir: PathBuf,
    /// The current master key file; default `<data-dir>/master.key` (which then is
    /// replaced by the new key).
    #[arg(long, env = "COFFER_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// The new master key file (32 bytes raw or 64 hex characters, mode 0600).
    #[arg(long)]
    new_master_key_file: PathBuf,
}

/// Runs `coffer rekey`.
pub fn rekey(args: RekeyArgs) -> Result<(), String> {
    let request = RekeyRequest {
        data_dir: args.data_dir.clone(),
        master_key_file: args.master_key_file,
        new_master_key_file: args.new_master_key_file.clone(),
    };
    match coffer_store::rekey::rekey(&request).map_err(|e| e.to_string())? {
        RekeyOutcome::Rotated {
            key_file_replaced: Some(file),
        } => println!(
            "master key rotated: {} opens {} ({} now holds it)",
            args.new_master_key_file.display(),
            args.data_dir.display(),
            file.display()
        ),
        RekeyOutcome::Rotated {
            key_file_replaced: None,
        } => println!(
            "master key rotated: {} opens {}; start the server with --master-key-file {}",
            args.new_master_key_file.display(),
            args.data_dir.display(),
            args.new_master_key_file.display()
        ),
        RekeyOutcome::AlreadyDone => println!(
            "nothing to do: {} is under the master key of {} already",
            args.data_dir.display(),
            args.new_master_key_file.display()
        ),
    }
    Ok(())
}
