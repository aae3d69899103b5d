//! Bad configuration fails fast: a clear message on stderr and a non-zero exit, never a
//! hang or a panic.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `coffer` with `args`; returns its exit status and stderr. Fails the test if it
/// runs past the deadline.
fn run_coffer(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coffer");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "coffer {args:?} still running after {DEADLINE:?}; stderr:\n{}",
                reader.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().expect("stderr reader");
    (status, stderr)
}

/// Asserts a fast, clean failure whose message contains every one of `needles`.
#[track_caller]
fn assert_refused(args: &[&str], needles: &[&str]) -> String {
    let started = Instant::now();
    let (status, stderr) = run_coffer(args);
    assert!(
        !status.success(),
        "coffer {args:?} should fail; stderr:\n{stderr}"
    );
    assert!(
        status.code().is_some(),
        "exited, not killed by a signal: {status}"
    );
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "coffer {args:?}: stderr should mention {needle:?}:\n{stderr}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failing took {:?}",
        started.elapsed()
    );
    stderr
}

fn serve_args<'a>(data_dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["serve", "--data-dir", data_dir, "--bind", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    args
}

/// Writes a key file readable by its owner only (others are refused).
fn write_key(path: &Path, byte: u8) {
    write_private(path, hex::encode([byte; 32]));
}

fn write_private(path: &Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("key file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Starts `coffer serve` and waits until it listens; the caller kills it.
fn serve_until_listening(args: &[&str]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coffer");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let listening = line.starts_with("Coffer listening on ");
            let _ = tx.send(line);
            if listening {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(DEADLINE) {
            Ok(line) if line.starts_with("Coffer listening on ") => return child,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("coffer {args:?} did not start:\n{}", seen.join("\n"));
            }
        }
    }
}

#[test]
fn a_data_directory_that_cannot_be_created_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data = file.join("data");
    let data = data.to_str().unwrap();
    assert_refused(&serve_args(data, &[]), &["data directory", data]);
    assert_refused(&["init", "--data-dir", data], &["data directory", data]);
    // A data directory that is itself a regular file.
    let file = file.to_str().unwrap();
    assert_refused(&serve_args(file, &[]), &["data directory", file]);
}

#[test]
fn a_wrong_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let key_a = dir.path().join("a.key");
    let key_b = dir.path().join("b.key");
    write_key(&key_a, 0xaa);
    write_key(&key_b, 0xbb);
    let (key_a, key_b) = (key_a.to_str().unwrap(), key_b.to_str().unwrap());
    let mut first = serve_until_listening(&serve_args(data, &["--master-key-file", key_a]));
    first.kill().unwrap();
    first.wait().unwrap();
    let stderr = assert_refused(
        &serve_args(data, &["--master-key-file", key_b]),
        &["wrong master key"],
    );
    assert!(!stderr.contains("Coffer listening"), "{stderr}");
    // The default key file is not the one the data was written with either.
    assert_refused(&serve_args(data, &[]), &["master key"]);
    // A missing or malformed key file is named.
    let missing = dir.path().join("missing.key");
    let missing = missing.to_str().unwrap();
    assert_refused(
        &serve_args(data, &["--master-key-file", missing]),
        &[missing],
    );
    let short = dir.path().join("short.key");
    write_private(&short, b"0123456789");
    let short = short.to_str().unwrap();
    assert_refused(
        &serve_args(data, &["--master-key-file", short]),
        &[short, "32 bytes"],
    );
    // The right key still opens it.
    let mut again = serve_until_listening(&serve_args(data, &["--master-key-file", key_a]));
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn an_address_in_use_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--bind",
        &addr,
    ];
    assert_refused(&args, &["cannot listen on", &addr]);
    drop(listener);
}

#[test]
fn a_missing_or_bad_tls_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"this is not PEM").unwrap();
    let garbage = garbage.to_str().unwrap();
    assert_refused(
        &serve_args(data, &["--tls-cert", missing, "--tls-key", missing]),
        &["TLS", missing],
    );
    assert_refused(
        &serve_args(data, &["--tls-cert", garbage, "--tls-key", garbage]),
        &["TLS", garbage],
    );
    // A certificate without a key (or the reverse) is a usage error.
    assert_refused(&serve_args(data, &["--tls-cert", garbage]), &["--tls-key"]);
    assert_refused(&serve_args(data, &["--tls-key", garbage]), &["--tls-cert"]);
}

#[test]
fn a_malformed_cidr_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for bad in [
        "10.0.0.0/33",
        "not-an-ip",
        "1.2.3.4/",
        "::1/129",
        "300.1.1.1",
        "10.0.0.0/-1",
    ] {
        for flag in ["--allowed-ips", "--trusted-proxies"] {
            let arg = format!("{flag}={bad}");
            assert_refused(
                &serve_args(data, &[&arg]),
                &[&format!("Invalid IP or CIDR: '{bad}'")],
            );
        }
    }
    // One bad entry in a list is enough.
    assert_refused(
        &serve_args(data, &["--allowed-ips", "127.0.0.1,10.0.0.0/8,bogus"]),
        &["Invalid IP or CIDR: 'bogus'"],
    );
}

#[test]
fn a_cache_size_out_of_range_is_refused_and_one_in_range_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    for bad in ["0", "-1", "lots", "1048577"] {
        let arg = format!("--cache-mib={bad}");
        assert_refused(&serve_args(data, &[&arg]), &["--cache-mib", bad]);
    }
    let mut child = serve_until_listening(&serve_args(data, &["--cache-mib", "64"]));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_second_instance_on_the_same_data_directory_is_refused() {
    let server = Server::start();
    let data = server.data_dir().to_str().unwrap().to_string();
    assert_refused(
        &serve_args(&data, &[]),
        &["in use by another Coffer process", &data],
    );
    // The first one is unharmed.
    let (status, _) = server.admin().get("/v1/apps/");
    assert_eq!(status, 200);
}

/// The table under README.md's "Configuration" against `coffer serve --help`: every flag
/// it lists exists with its variable, and a default it gives as a literal is clap's
/// default (a default it describes in words is one clap does not have).
#[test]
fn the_readmes_configuration_table_matches_serve_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let help = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["serve", "--help"])
        .output()
        .expect("coffer serve --help");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).expect("help is UTF-8");
    let table = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("a Configuration section");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip_while(|line| !line.starts_with("| `--"))
        .take_while(|line| line.starts_with("| `--"))
        .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    assert!(
        rows.len() >= 20,
        "{} rows: the table was not found whole",
        rows.len()
    );
    let backticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    for row in &rows {
        let (flags, vars, default) = (backticked(row[0]), backticked(row[1]), row[2]);
        assert_eq!(flags.len(), vars.len(), "row {row:?}");
        for (flag, var) in flags.iter().zip(&vars) {
            let entry = help_entry(&help, flag).unwrap_or_else(|| panic!("{flag} not in help"));
            assert!(entry.contains(&format!("[env: {var}=")), "{flag}: {entry}");
            let clap_default = entry
                .split("[default: ")
                .nth(1)
                .and_then(|rest| rest.split(']').next());
            let literal = default
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
                .filter(|d| !d.contains(['`', '<']));
            assert_eq!(clap_default, literal, "{flag}: README says {default}");
        }
    }
}

/// The lines of `--help` that describe `flag`, up to the next flag.
fn help_entry<'h>(help: &'h str, flag: &str) -> Option<&'h str> {
    // `--flag` or `-f, --flag`; not a description's `- value: ...` list item.
    let starts_entry = |line: &str| {
        let line = line.trim_start();
        line.starts_with("--")
            || (line.starts_with('-')
                && line
                    .as_bytes()
                    .get(1)
                    .is_some_and(u8::is_ascii_alphanumeric))
    };
    let mut offset = 0;
    let mut start = None;
    for line in help.split_inclusive('\n') {
        let names_flag = line.trim_start().split([' ', ',']).any(|word| word == flag);
        match start {
            None if starts_entry(line) && names_flag => start = Some(offset),
            Some(from) if starts_entry(line) => return Some(&help[from..offset]),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|from| &help[from..])
}
