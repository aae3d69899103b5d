//! `coffer backup` (through a running server's `GET /v1/backup/`) and `coffer restore`
//! (offline, into a new data directory).

use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::admin::Connection;

/// Options of `coffer backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (replaced atomically; mode 0600).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    conn: Connection,
}

/// Options of `coffer restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    backup: PathBuf,
    /// The new data directory (absent or empty).
    #[arg(long)]
    data_dir: PathBuf,
    /// The master key file the backup was taken under (the backup never holds the key).
    #[arg(long, env = "COFFER_MASTER_KEY_FILE")]
    master_key_file: PathBuf,
}

/// Removes a partial download unless it was renamed into place.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// A progress line on stderr when it is a terminal; nothing otherwise.
fn progress() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} backup: {bytes} received ({bytes_per_sec})")
            .expect("a valid template"),
    );
    bar
}

/// Runs `coffer backup`: downloads the backup into a new file beside `--out`, syncs it,
/// and renames it onto `--out`, so `--out` is the old file or the whole new one.
pub fn backup(args: BackupArgs) -> Result<(), String> {
    let out = &args.out;
    let name = out
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", out.display()))?
        .to_string_lossy()
        .into_owned();
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut response = args.conn.download("/v1/backup/")?;
    let temp = dir.join(format!(".{name}.{}.partial", std::process::id()));
    let failed = |path: &Path| {
        let shown = path.display().to_string();
        move |e: std::io::Error| format!("{shown}: {e}")
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).map_err(failed(&temp))?;
    let mut partial = Partial(Some(temp.clone()));
    let bar = progress();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let read = response
            .read(&mut buffer)
            .map_err(|e| format!("the backup stopped arriving: {e}"))?;
        if read == 0 {
            break;
        }
        file.write_all(&buffer[..read]).map_err(failed(&temp))?;
        total += read as u64;
        bar.set_position(total);
    }
    bar.finish_and_clear();
    file.sync_all().map_err(failed(&temp))?;
    drop(file);
    fs::rename(&temp, out).map_err(failed(out))?;
    partial.0 = None;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(failed(&dir))?;
    eprintln!("backup written to {} ({total} bytes)", out.display());
    Ok(())
}

/// Runs `coffer restore`.
pub fn restore(args: RestoreArgs) -> Result<(), String> {
    let file = File::open(&args.backup).map_err(|e| format!("{}: {e}", args.backup.display()))?;
    let report = coffer_store::restore::restore(file, &args.master_key_file, &args.data_dir)
        .map_err(|e| format!("{}: {e}; nothing was restored", args.backup.display()))?;
    println!(
        "restored {} records into {} (secrets: {}, tokens: {}); audit chain intact: {} entries",
        report.records,
        args.data_dir.display(),
        report.secrets,
        report.tokens,
        report.audit_entries
    );
    if report.master_key_in_data_dir {
        println!(
            "the master key is in {}/master.key, as it was in the backed-up data directory",
            args.data_dir.display()
        );
    }
    Ok(())
}
