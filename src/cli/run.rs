//! `coffer run [--watch] -- CMD ARGS...`: CMD with the environment's secrets added to
//! the inherited environment (secrets win), its exit code passed on (128+N when killed
//! by signal N), SIGINT, SIGTERM and SIGHUP forwarded to it. With `--watch`, CMD is
//! restarted (SIGTERM, a grace period, SIGKILL) when what it was given changes, as the
//! server's changes feed reports, through server restarts.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::Method;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use super::dotenv::is_variable_name;
use super::http::{Api, ApiFailure};
use super::target::{self, Target, TargetArgs};
use super::{CliError, CommandResult};

/// How long the changes feed holds a request open.
const FEED_WAIT_SECONDS: u64 = 25;

/// `coffer run`
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Restart the command when a secret it was given changes (when the command exits
    /// by itself, `coffer run` exits with its code, as without --watch).
    #[arg(long)]
    watch: bool,
    /// Seconds between SIGTERM and SIGKILL when restarting.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    grace_period: u64,
    /// Let secrets replace PATH, HOME, SHELL, USER and the other variables the
    /// system relies on (left alone by default).
    #[arg(long)]
    allow_reserved: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Variables the shell, the loader and the login set up; a secret does not replace
/// them unless `--allow-reserved`.
const RESERVED: &[&str] = &[
    "PATH",
    "HOME",
    "SHELL",
    "USER",
    "LOGNAME",
    "PWD",
    "OLDPWD",
    "TERM",
    "SHLVL",
    "HOSTNAME",
    "LANG",
    "LANGUAGE",
    "TMPDIR",
    "TZ",
    "IFS",
    "MAIL",
    "DISPLAY",
    "SSH_AUTH_SOCK",
    "XDG_RUNTIME_DIR",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
];

fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key) || key.starts_with("LC_") || key.starts_with("DYLD_")
}

/// The variables to give the child, and one warning line per kind of key left out.
fn injected(
    pairs: Vec<(String, String)>,
    allow_reserved: bool,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env = BTreeMap::new();
    let (mut invalid, mut reserved) = (Vec::new(), Vec::new());
    for (key, value) in pairs {
        if !is_variable_name(&key) || value.contains('\0') {
            invalid.push(key);
        } else if !allow_reserved && is_reserved(&key) {
            reserved.push(key);
        } else {
            env.insert(key, value);
        }
    }
    let mut warnings = Vec::new();
    if !invalid.is_empty() {
        warnings.push(format!(
            "warning: left out {} secret(s) whose keys are not valid environment variable names: {}",
            invalid.len(),
            invalid.join(", ")
        ));
    }
    if !reserved.is_empty() {
        warnings.push(format!(
            "warning: left out {} secret(s) that would replace system variables: {} (--allow-reserved lets them)",
            reserved.len(),
            reserved.join(", ")
        ));
    }
    (env, warnings)
}

fn fetch_env(
    api: &Api,
    target: &Target,
    allow_reserved: bool,
) -> Result<(BTreeMap<String, String>, Vec<String>), ApiFailure> {
    let secrets = target::list_secrets(api, target, &[])?;
    Ok(injected(target::flatten(&secrets), allow_reserved))
}

fn spawn(command: &[String], env: &BTreeMap<String, String>) -> Result<Child, CliError> {
    Command::new(&command[0])
        .args(&command[1..])
        // The child gets the secrets, never the token this command acted with.
        .env_remove("COFFER_TOKEN")
        .envs(env)
        .spawn()
        .map_err(|e| {
            let message = match e.kind() {
                ErrorKind::NotFound => format!("command not found: {}", command[0]),
                ErrorKind::PermissionDenied => format!("permission denied: {}", command[0]),
                _ => format!("cannot start {}: {e}", command[0]),
            };
            CliError::failed(message)
        })
}

/// The exit code a shell would report: the child's code, or 128+N after signal N.
fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|n| 128 + n))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The pid signals are forwarded to: 0 before a child runs (and between two), -1 once
/// the last one exited.
type ChildPid = Arc<AtomicI32>;

fn send_signal(pid: i32, signal: Signal) {
    if pid > 0 {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Forwards SIGINT, SIGTERM and SIGHUP to the child. A signal from the kernel (Ctrl-C
/// or a hangup, sent by the terminal to the whole foreground group) already reached
/// the child, so it is not sent twice.
fn forward_signals(child: ChildPid) -> Result<signal_hook::iterator::Handle, CliError> {
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| CliError::failed(format!("cannot handle signals: {e}")))?;
    let handle = signals.handle();
    std::thread::spawn(move || {
        for origin in signals.forever() {
            if origin.cause == Cause::Kernel {
                continue;
            }
            let pid = child.load(Ordering::SeqCst);
            if pid == 0 {
                // No child to pass it to (still reading the secrets, or between two
                // children): stop as the signal asked, with the code a shell would give.
                std::process::exit(128 + origin.signal);
            }
            if let Ok(signal) = Signal::try_from(origin.signal) {
                send_signal(pid, signal);
            }
        }
    });
    Ok(handle)
}

/// Runs `coffer run`.
pub fn run(args: RunArgs) -> CommandResult {
    let (client, target) = args.target.resolve()?;
    let child_pid: ChildPid = Arc::new(AtomicI32::new(0));
    let signals = forward_signals(Arc::clone(&child_pid))?;
    let result = if args.watch {
        watch(&args, &client.api, &target, &child_pid)
    } else {
        let (env, warnings) = fetch_env(&client.api, &target, args.allow_reserved)?;
        warnings.iter().for_each(|w| eprintln!("{w}"));
        let mut child = spawn(&args.command, &env)?;
        child_pid.store(child.id() as i32, Ordering::SeqCst);
        let status = child
            .wait()
            .map_err(|e| CliError::failed(format!("waiting for {}: {e}", args.command[0])))?;
        child_pid.store(-1, Ordering::SeqCst);
        Ok(exit_code(status))
    };
    signals.close();
    result.map(Some)
}

enum Event {
    /// The child of this generation exited.
    Exited(u64, ExitStatus),
    /// The feed reported changes (or came back after losing the server): look again.
    Changed,
}

/// The changes feed's position now.
fn feed_position(api: &Api, target: &Target) -> Result<String, ApiFailure> {
    let query = [
        ("app_id", target.app_id.as_str()),
        ("env", target.env.as_str()),
    ];
    let body = api.call(Method::GET, "/v1/changes/", &query, None)?.body;
    Ok(body["next"].as_str().unwrap_or_default().to_string())
}

/// Follows the feed from `since`, sending `Changed` when it moves; keeps trying while
/// the server is away, and looks again when it is back.
fn follow_feed(api: Api, target: Target, mut since: String, events: Sender<Event>) {
    let mut away = false;
    let mut backoff = Duration::from_millis(200);
    loop {
        let wait = FEED_WAIT_SECONDS.to_string();
        let query = [
            ("app_id", target.app_id.as_str()),
            ("env", target.env.as_str()),
            ("since", since.as_str()),
            ("wait", wait.as_str()),
        ];
        let request = api
            .request(Method::GET, "/v1/changes/")
            .query(&query)
            .timeout(Duration::from_secs(FEED_WAIT_SECONDS + 15));
        let result = api.send(request);
        let ok = match result {
            Ok(answer) => {
                let changed = answer.body["data"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty());
                if let Some(next) = answer.body["next"].as_str() {
                    since = next.to_string();
                }
                changed || away
            }
            Err(ApiFailure::Status { status: 410, .. }) => match feed_position(&api, &target) {
                Ok(now) => {
                    since = now;
                    true
                }
                Err(_) => false,
            },
            Err(ApiFailure::Status {
                status, message, ..
            }) if status < 500 && status != 429 && status != 408 => {
                eprintln!("warning: stopped watching for changes: {message} (HTTP {status})");
                return;
            }
            Err(failure) => {
                if !away {
                    let line = match &failure {
                        ApiFailure::Transport(line) => line.clone(),
                        ApiFailure::Status {
                            status, message, ..
                        } => format!("{message} (HTTP {status})"),
                    };
                    eprintln!("warning: lost the changes feed ({line}); retrying");
                    away = true;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if away {
            eprintln!("coffer: the changes feed is back");
            away = false;
            backoff = Duration::from_millis(200);
        }
        if ok && events.send(Event::Changed).is_err() {
            return;
        }
    }
}

fn start(
    args: &RunArgs,
    env: &BTreeMap<String, String>,
    generation: u64,
    child_pid: &ChildPid,
    events: &Sender<Event>,
) -> Result<(), CliError> {
    let mut child = spawn(&args.command, env)?;
    child_pid.store(child.id() as i32, Ordering::SeqCst);
    let events = events.clone();
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            let _ = events.send(Event::Exited(generation, status));
        }
    });
    Ok(())
}

/// Waits for the child of `generation` to exit, SIGKILLing it after `grace`.
fn stop(generation: u64, grace: Duration, child_pid: &ChildPid, events: &Receiver<Event>) {
    let pid = child_pid.load(Ordering::SeqCst);
    send_signal(pid, Signal::SIGTERM);
    let mut killed = false;
    let deadline = std::time::Instant::now() + grace;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(if killed {
            Duration::from_secs(3600)
        } else {
            left
        }) {
            Ok(Event::Exited(g, _)) if g == generation => break,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                send_signal(pid, Signal::SIGKILL);
                killed = true;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    child_pid.store(0, Ordering::SeqCst);
}

fn watch(
    args: &RunArgs,
    api: &Api,
    target: &Target,
    child_pid: &ChildPid,
) -> Result<ExitCode, CliError> {
    // The position is taken before the secrets are read, so no change between the two
    // goes unnoticed.
    let since = feed_position(api, target).map_err(|failure| match failure.status() {
        Some(404 | 405) => CliError::failed(format!(
            "the server at {} has no changes feed (GET /v1/changes/), which --watch follows",
            api.base()
        )),
        _ => CliError::from(failure),
    })?;
    let (mut env, warnings) = fetch_env(api, target, args.allow_reserved)?;
    warnings.iter().for_each(|w| eprintln!("{w}"));
    let (tx, rx) = mpsc::channel();
    let mut generation = 0;
    start(args, &env, generation, child_pid, &tx)?;
    {
        let (api, target, tx) = (api.clone(), target.clone(), tx.clone());
        std::thread::spawn(move || follow_feed(api, target, since, tx));
    }
    loop {
        match rx.recv() {
            Ok(Event::Exited(g, status)) if g == generation => {
                child_pid.store(-1, Ordering::SeqCst);
                return Ok(exit_code(status));
            }
            Ok(Event::Exited(..)) => {}
            Ok(Event::Changed) => {
                let (fresh, warnings) = match fetch_env(api, target, args.allow_reserved) {
                    Ok(found) => found,
                    Err(failure) => {
                        eprintln!(
                            "warning: could not read the secrets again: {}",
                            CliError::from(failure)
                        );
                        continue;
                    }
                };
                if fresh == env {
                    continue;
                }
                let changed: Vec<&String> = fresh
                    .keys()
                    .chain(env.keys())
                    .filter(|k| fresh.get(*k) != env.get(*k))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                eprintln!(
                    "coffer: {} changed; restarting {}",
                    changed
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    args.command[0]
                );
                warnings.iter().for_each(|w| eprintln!("{w}"));
                stop(
                    generation,
                    Duration::from_secs(args.grace_period),
                    child_pid,
                    &rx,
                );
                // A change that came in while the child was stopping was not looked at:
                // read once more so the new child starts with the latest.
                env = match fetch_env(api, target, args.allow_reserved) {
                    Ok((latest, _)) => latest,
                    Err(_) => fresh,
                };
                generation += 1;
                start(args, &env, generation, child_pid, &tx)?;
            }
            Err(_) => return Err(CliError::failed("the child's watcher stopped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_variables_and_bad_names_are_left_out_with_one_line_each() {
        let pairs = vec![
            ("PATH".to_string(), "/nowhere".to_string()),
            ("HOME".to_string(), "/nowhere".to_string()),
            ("MY KEY".to_string(), "x".to_string()),
            ("1ST".to_string(), "x".to_string()),
            ("DB_URL".to_string(), "postgres://".to_string()),
        ];
        let (env, warnings) = injected(pairs.clone(), false);
        assert_eq!(env.keys().collect::<Vec<_>>(), ["DB_URL"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("MY KEY, 1ST"), "{}", warnings[0]);
        assert!(warnings[1].contains("PATH, HOME"), "{}", warnings[1]);
        let (env, warnings) = injected(pairs, true);
        assert_eq!(env.keys().collect::<Vec<_>>(), ["DB_URL", "HOME", "PATH"]);
        assert_eq!(warnings.len(), 1);
    }
}
