//! Durability, shown by the system calls: the real server runs under `strace -f`,
//! clients send concurrent creates and updates of small and 64 KiB values and one batch
//! large enough to make sled write blob files, and the trace must show that every write
//! answered 2xx was on disk before its answer was written to its socket:
//!
//! - an `fsync`/`fdatasync` of the log file (`db/db`) finished before the answer and
//!   started after the request was read and after a write to the log that followed the
//!   request (the request's data cannot have been written earlier);
//! - every blob file (`db/blobs/N`) whose last write finished before that sync was
//!   fsynced after that write and before the answer, and so was the `blobs` directory
//!   after the file was created. (When several syncs qualify, one must pass: the trace
//!   does not say which group a request was in, and a later group's log sync may finish
//!   before the request is answered, with that group's blobs still to be synced.)
//! - before the first answer: the data directory's parent, the data directory, `db/`,
//!   `blobs/`, `master.key` and sled's `conf` were fsynced.
//!
//! The same check must find violations with `--durability relaxed` (which answers once
//! the log is handed to the kernel), so it is known to see a missing fsync.
//!
//! Needs `strace` (Debian package `strace`): the tests are `#[ignore]`d so that
//! `cargo test --workspace` runs anywhere, and `.ci/run` runs them. Without strace they
//! fail. `COFFER_DURABILITY_BATCH` sets the size of the large batch (default 1000).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::common::{secrets_path, Api};

const CLIENTS: usize = 4;
const ROUNDS: usize = 6;
const BIG: usize = 64 * 1024;
const COMMENT: usize = 4 * 1024;
const DEFAULT_BATCH: usize = 1000;

#[test]
#[ignore = "needs strace: run by .ci/run"]
fn every_answered_write_was_fsynced_before_its_answer() {
    let batch = std::env::var("COFFER_DURABILITY_BATCH")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_BATCH);
    let run = traced_run(&[], batch);
    let report = check(&run);
    if !report.violations.is_empty() {
        let kept = std::env::temp_dir().join("coffer-durability-strace.txt");
        let _ = std::fs::write(&kept, &run.trace);
        eprintln!("the trace is kept in {}", kept.display());
    }
    eprintln!(
        "durability: {} answered writes checked, {} log syncs, {} blob files written",
        report.answered, report.log_syncs, report.blobs
    );
    assert!(
        report.violations.is_empty(),
        "{} of {} answered writes were not durable when answered ({} findings); first ones:\n{}",
        report.undurable,
        report.answered,
        report.violations.len(),
        report.violations[..report.violations.len().min(12)].join("\n")
    );
    assert_eq!(
        report.answered,
        answered_writes(batch),
        "every answer found"
    );
    if batch == DEFAULT_BATCH {
        // Otherwise the blob rule above is checked on nothing.
        assert!(
            report.blobs > 0,
            "the workload is meant to make sled write blob files"
        );
    }
}

#[test]
#[ignore = "needs strace: run by .ci/run"]
fn relaxed_durability_answers_before_the_fsync_and_the_check_sees_it() {
    let run = traced_run(&["--durability", "relaxed"], 0);
    assert!(
        run.stderr.contains("Durability: relaxed"),
        "the setting is stated at start-up:\n{}",
        run.stderr
    );
    let report = check(&run);
    assert_eq!(report.answered, answered_writes(0), "every answer found");
    assert!(
        !report.violations.is_empty(),
        "relaxed answers before fsyncing, yet the check found nothing"
    );
}

/// The writes [`workload`] has answered: the app, three per client round, the batch.
fn answered_writes(batch: usize) -> usize {
    1 + CLIENTS * ROUNDS * 3 + usize::from(batch > 0)
}

/// A finished traced server run.
struct Run {
    trace: String,
    data_dir: PathBuf,
    parent_dir: PathBuf,
    stderr: String,
    _dir: tempfile::TempDir,
}

/// Runs `strace -f coffer serve` with `extra` arguments, drives the workload (with a
/// batch of `batch` large secrets alongside when non-zero), stops it with SIGTERM.
fn traced_run(extra: &[&str], batch: usize) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let parent_dir = std::fs::canonicalize(dir.path()).unwrap();
    let data_dir = parent_dir.join("data");
    let trace_file = parent_dir.join("strace.txt");
    let body_limit = (batch * (BIG + COMMENT + 200) + (1 << 20)).to_string();
    let spawned = Command::new("strace")
        .args(["-f", "-q", "-tt", "-yy", "-s", "64", "-o"])
        .arg(&trace_file)
        .args([
            "-e",
            "trace=openat,read,recvfrom,recvmsg,write,writev,sendto,sendmsg,\
             pwrite64,pwritev,pwritev2,fsync,fdatasync,sync_file_range,unlink,unlinkat",
        ])
        .arg(env!("CARGO_BIN_EXE_coffer"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--bind", "127.0.0.1:0", "--log-level", "warn"])
        .args(["--body-limit", &body_limit])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut strace = match spawned {
        Ok(child) => Traced(child),
        Err(e) => {
            panic!("cannot run strace ({e}): this test needs it (Debian: apt-get install strace)")
        }
    };
    let (base, token, stderr) = wait_for_start(&mut strace.0);
    let api = Api {
        // A connection per request: while the large batch's body is parsed, its worker
        // runs nothing else, and a kept-alive connection it closes when it resumes
        // would fail the next request sent on it.
        http: Client::builder()
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        base,
        authorization: Some(format!("Bearer User {token}")),
    };
    workload(&api, batch);
    stop(&mut strace.0);
    let trace = std::fs::read_to_string(&trace_file).expect("strace output");
    let stderr = stderr
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    Run {
        trace,
        data_dir,
        parent_dir,
        stderr,
        _dir: dir,
    }
}

/// strace and the server it traces, both killed if the test ends before [`stop`].
struct Traced(Child);

impl Drop for Traced {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let pid = self.0.id();
            if let Ok(children) =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            {
                for server in children.split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", server]).status();
                }
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for "Coffer listening on"; returns the base URL, the admin token and a
/// receiver of everything the server wrote to stderr (sent when it closes).
fn wait_for_start(strace: &mut Child) -> (String, String, mpsc::Receiver<String>) {
    let stderr = strace.stderr.take().expect("stderr");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let (all_tx, all) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            let _ = lines_tx.send(line);
        }
        let _ = all_tx.send(seen);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(t) = line.strip_prefix("Admin token: ") {
                    token = t.trim().to_string();
                }
                if let Some(addr) = line.strip_prefix("Coffer listening on ") {
                    assert_eq!(token.len(), 64, "admin token printed first");
                    return (addr.trim().to_string(), token, all);
                }
                seen.push(line);
            }
            Err(_) => {
                panic!("coffer did not start under strace:\n{}", seen.join("\n"))
            }
        }
    }
}

/// SIGTERM to the traced server (strace's child), then waits for strace to exit.
fn stop(strace: &mut Child) {
    let pid = strace.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .expect("strace's children");
    let server = children
        .split_whitespace()
        .next()
        .expect("the traced server");
    let killed = Command::new("kill")
        .args(["-TERM", server])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = strace.try_wait().expect("wait for strace") {
            assert!(status.success(), "the traced server exits 0, got {status}");
            return;
        }
        if Instant::now() > deadline {
            panic!("the traced server did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn filler(len: usize, seed: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|i| alphabet[(i * 7 + seed * 13) % alphabet.len()] as char)
        .collect()
}

/// One app; then, concurrently, `CLIENTS` clients each creating small batches and
/// 64 KiB secrets and updating them, and one batch of `batch` secrets of 64 KiB values
/// with 4 KiB comments.
fn workload(api: &Api, batch: usize) {
    let (status, app) = api.post("/v1/apps/", json!({"name": "durable"}));
    assert_eq!(status.as_u16(), 201, "{app}");
    let path = secrets_path(app["id"].as_str().unwrap(), "development");
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let (api, path) = (api.clone(), path.clone());
            scope.spawn(move || client(&api, &path, c));
        }
        if batch > 0 {
            let (api, path) = (api.clone(), path.clone());
            scope.spawn(move || {
                let secrets: Vec<Value> = (0..batch)
                    .map(|i| {
                        json!({"key": format!("BATCH_{i}"), "value": filler(BIG, i),
                               "comment": filler(COMMENT, i + 1)})
                    })
                    .collect();
                let (status, answer) = api.post(&path, json!({ "secrets": secrets }));
                assert_eq!(status.as_u16(), 200, "large batch answered {answer}");
                assert_eq!(answer.as_array().map(Vec::len), Some(batch));
            });
        }
    });
}

fn client(api: &Api, path: &str, c: usize) {
    for round in 0..ROUNDS {
        let small: Vec<Value> = (0..3)
            .map(|i| json!({"key": format!("S_{c}_{round}_{i}"), "value": format!("v{i}")}))
            .collect();
        let (status, answer) = api.post(path, json!({ "secrets": small }));
        assert_eq!(status.as_u16(), 200, "small create answered {answer}");
        let (status, answer) = api.post(
            path,
            json!({"secrets": [{"key": format!("L_{c}_{round}"), "value": filler(BIG, round)}]}),
        );
        assert_eq!(status.as_u16(), 200, "large create answered {answer}");
        let large = &answer[0];
        let value = if round % 2 == 0 {
            filler(BIG, round + 1)
        } else {
            "small again".to_string()
        };
        let (status, answer) = api.put(
            path,
            json!({"secrets": [{"id": large["id"], "value": value, "version": large["version"]}]}),
        );
        assert_eq!(status.as_u16(), 200, "update answered {answer}");
    }
}

// ----------------------------------------------------------------------- the trace

/// One system call: its full text (an interrupted call's two lines joined), and the
/// trace lines where it started and where it returned.
#[derive(Debug)]
struct Call {
    name: String,
    text: String,
    start: usize,
    end: usize,
}

impl Call {
    /// The path strace gives (`-y`) for the first argument, a descriptor.
    fn fd_path(&self) -> Option<&str> {
        let args = self.text.strip_prefix(&self.name)?.strip_prefix('(')?;
        let rest = args.trim_start_matches(|c: char| c.is_ascii_digit());
        let rest = rest.strip_prefix('<')?;
        let end = rest.find(">, ").or_else(|| rest.find(">)"))?;
        Some(&rest[..end])
    }

    /// The path of the descriptor an `openat` returned.
    fn returned_path(&self) -> Option<&str> {
        let (_, ret) = self.text.rsplit_once(") = ")?;
        let ret = ret.trim_start_matches(|c: char| c.is_ascii_digit());
        ret.strip_prefix('<')?.strip_suffix('>')
    }

    /// The first string literal of the call (the data read or written).
    fn first_string(&self) -> &str {
        let Some(open) = self.text.find('"') else {
            return "";
        };
        let rest = &self.text[open + 1..];
        let mut escaped = false;
        for (i, ch) in rest.char_indices() {
            match ch {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return &rest[..i],
                _ => escaped = false,
            }
        }
        rest
    }

    /// The call returned a positive count.
    fn returned_data(&self) -> bool {
        self.text
            .rsplit_once(") = ")
            .and_then(|(_, r)| r.split_whitespace().next()?.parse::<i64>().ok())
            .is_some_and(|n| n > 0)
    }
}

/// Parses `strace -f -tt` output into calls, in the order they started.
fn parse(trace: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut pending: HashMap<(u32, String), (usize, String)> = HashMap::new();
    for (line_no, line) in trace.lines().enumerate() {
        // `PID TIME CALL`; strace pads short pids with spaces.
        let Some((tid, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Some((_time, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(tid) = tid.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            if let Some((start, head)) = pending.remove(&(tid, name.to_string())) {
                calls.push(Call {
                    name: name.to_string(),
                    text: format!("{head}{tail}"),
                    start,
                    end: line_no,
                });
            }
        } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            if let Some((name, _)) = head.split_once('(') {
                pending.insert((tid, name.to_string()), (line_no, head.to_string()));
            }
        } else if let Some((name, _)) = rest.split_once('(') {
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                calls.push(Call {
                    name: name.to_string(),
                    text: rest.to_string(),
                    start: line_no,
                    end: line_no,
                });
            }
        }
    }
    calls.sort_by_key(|c| c.start);
    calls
}

#[derive(Debug, Default)]
struct Report {
    answered: usize,
    /// Answered writes with at least one finding.
    undurable: usize,
    log_syncs: usize,
    blobs: usize,
    violations: Vec<String>,
}

/// Start and end lines of calls.
type Spans = Vec<(usize, usize)>;

#[derive(Default)]
struct Blob {
    created: Option<usize>,
    last_write_end: Option<usize>,
    syncs: Spans,
    /// Where sled removed it (a page written again since): no sync can cover it then,
    /// and nothing needs it.
    removed: Option<usize>,
}

fn is_sync(name: &str) -> bool {
    matches!(name, "fsync" | "fdatasync")
}

fn is_file_write(name: &str) -> bool {
    matches!(
        name,
        "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2"
    )
}

fn is_socket_read(name: &str) -> bool {
    matches!(name, "read" | "recvfrom" | "recvmsg")
}

fn is_socket_write(name: &str) -> bool {
    matches!(name, "write" | "writev" | "sendto" | "sendmsg")
}

const WRITE_METHODS: [&str; 4] = ["POST ", "PUT ", "DELETE ", "PATCH "];
const ALL_METHODS: [&str; 7] = [
    "GET ", "HEAD ", "OPTIONS ", "POST ", "PUT ", "DELETE ", "PATCH ",
];

fn check(run: &Run) -> Report {
    let calls = parse(&run.trace);
    let db_dir = run.data_dir.join("db");
    let log = db_dir.join("db").display().to_string();
    let blobs_dir = db_dir.join("blobs").display().to_string();
    let blob_prefix = format!("{blobs_dir}/");

    let mut report = Report::default();
    let mut log_writes: Spans = Vec::new();
    let mut log_syncs: Spans = Vec::new();
    let mut dir_syncs: Spans = Vec::new();
    let mut synced_paths: HashMap<String, usize> = HashMap::new();
    let mut blobs: HashMap<String, Blob> = HashMap::new();
    // Per connection: (request line, line where its first read returned).
    let mut requests: HashMap<String, (String, usize)> = HashMap::new();
    // (request, its read, its answer's start).
    let mut answers: Vec<(String, usize, usize)> = Vec::new();

    for call in &calls {
        if call.name == "openat" {
            if let Some(path) = call.returned_path() {
                if path.starts_with(&blob_prefix) && call.text.contains("O_CREAT") {
                    blobs.entry(path.to_string()).or_default().created = Some(call.end);
                }
            }
            continue;
        }
        if matches!(call.name.as_str(), "unlink" | "unlinkat") {
            let path = call.first_string();
            if path.starts_with(&blob_prefix) {
                blobs.entry(path.to_string()).or_default().removed = Some(call.start);
            }
            continue;
        }
        let Some(path) = call.fd_path() else {
            continue;
        };
        if path.starts_with("TCP:") {
            let data = call.first_string();
            if is_socket_read(&call.name) && call.returned_data() {
                if ALL_METHODS.iter().any(|m| data.starts_with(m)) {
                    requests.insert(path.to_string(), (data.to_string(), call.end));
                }
            } else if is_socket_write(&call.name) && data.starts_with("HTTP/1.1 2") {
                if let Some((request, read)) = requests.remove(path) {
                    if WRITE_METHODS.iter().any(|m| request.starts_with(m)) {
                        answers.push((request, read, call.start));
                    }
                }
            } else if is_socket_write(&call.name) && data.starts_with("HTTP/1.1 ") {
                requests.remove(path);
            }
            continue;
        }
        if is_sync(&call.name) {
            synced_paths.entry(path.to_string()).or_insert(call.end);
            if path == log {
                log_syncs.push((call.start, call.end));
            } else if path == blobs_dir {
                dir_syncs.push((call.start, call.end));
            } else if path.starts_with(&blob_prefix) {
                blobs
                    .entry(path.to_string())
                    .or_default()
                    .syncs
                    .push((call.start, call.end));
            }
        } else if is_file_write(&call.name) {
            if path == log {
                log_writes.push((call.start, call.end));
            } else if path.starts_with(&blob_prefix) {
                let blob = blobs.entry(path.to_string()).or_default();
                blob.last_write_end = Some(blob.last_write_end.unwrap_or(0).max(call.end));
            }
        }
    }
    report.answered = answers.len();
    report.log_syncs = log_syncs.len();
    report.blobs = blobs
        .values()
        .filter(|b| b.last_write_end.is_some())
        .count();
    assert!(!answers.is_empty(), "no answered write found in the trace");

    // The layout, before the first answer.
    let first_answer = answers.iter().map(|a| a.2).min().unwrap();
    let layout = [
        run.parent_dir.clone(),
        run.data_dir.clone(),
        db_dir.clone(),
        db_dir.join("blobs"),
        db_dir.join("conf"),
        run.data_dir.join("master.key"),
    ];
    for path in layout {
        let shown = path.display().to_string();
        if synced_paths
            .get(&shown)
            .is_none_or(|line| *line >= first_answer)
        {
            report
                .violations
                .push(format!("{shown} was not fsynced before the first answer"));
        }
    }

    // Every write was durable before its answer.
    for (request, read, answer) in &answers {
        let findings = report.violations.len();
        check_answer(
            &mut report.violations,
            (request, *read, *answer),
            &log_writes,
            &log_syncs,
            &dir_syncs,
            &blobs,
        );
        if report.violations.len() > findings {
            report.undurable += 1;
        }
    }
    report
}

/// The findings for one answered write: (request line, line of its read, line of its
/// answer).
fn check_answer(
    violations: &mut Vec<String>,
    (request, read, answer): (&str, usize, usize),
    log_writes: &Spans,
    log_syncs: &Spans,
    dir_syncs: &Spans,
    blobs: &HashMap<String, Blob>,
) {
    let request = request.split("\\r\\n").next().unwrap_or(request);
    let at = format!("{request} (read at trace line {read}, answered at {answer})");
    let before_answer: Vec<usize> = log_syncs
        .iter()
        .filter(|(_, end)| *end < answer)
        .map(|(start, _)| *start)
        .collect();
    let Some(&last) = before_answer.last() else {
        violations.push(format!("{at}: the log was never fsynced before"));
        return;
    };
    if last < read {
        violations.push(format!(
            "{at}: no fsync of the log since the request (last one at {last})"
        ));
        return;
    }
    // Syncs that can have covered the request: after it, and after a write to the log
    // that followed it. Which one did is not in the trace (a later group's may have
    // finished first), so one of them must have every blob written before it durable.
    let covering: Vec<usize> = before_answer
        .into_iter()
        .filter(|sync| *sync > read)
        .filter(|sync| {
            log_writes
                .iter()
                .any(|(start, end)| *start > read && end < sync)
        })
        .collect();
    if covering.is_empty() {
        violations.push(format!(
            "{at}: the log was not written between the request and an fsync before the answer"
        ));
        return;
    }
    let mut latest_findings = None;
    for sync in covering.into_iter().rev() {
        let findings = blob_findings(&at, sync, answer, dir_syncs, blobs);
        if findings.is_empty() {
            return;
        }
        latest_findings.get_or_insert(findings);
    }
    violations.extend(latest_findings.unwrap_or_default());
}

/// Blob files written before the log sync at `sync` but not durable, with their
/// directory entry, before the answer.
fn blob_findings(
    at: &str,
    sync: usize,
    answer: usize,
    dir_syncs: &Spans,
    blobs: &HashMap<String, Blob>,
) -> Vec<String> {
    let mut findings = Vec::new();
    for (path, blob) in blobs {
        let Some(written) = blob.last_write_end.filter(|w| *w < sync) else {
            continue;
        };
        if blob.removed.is_some_and(|removed| removed < answer) {
            continue;
        }
        if !blob.syncs.iter().any(|(s, e)| *s > written && *e < answer) {
            findings.push(format!(
                "{at}: blob {path}, written at {written}, was not fsynced before the answer"
            ));
        }
        let created = blob.created.unwrap_or(written);
        if !dir_syncs.iter().any(|(s, e)| *s > created && *e < answer) {
            findings.push(format!(
                "{at}: the blobs directory was not fsynced after {path} was created (line {created})"
            ));
        }
    }
    findings
}

/// The checker on a hand-written trace (runs without strace).
#[test]
fn the_checker_reads_strace_output() {
    let dir = tempfile::tempdir().unwrap();
    let parent_dir = dir.path().to_path_buf();
    let data_dir = parent_dir.join("data");
    let d = data_dir.display();
    let p = parent_dir.display();
    let sock = "5<TCP:[127.0.0.1:8240->127.0.0.1:40000]>";
    let layout = format!(
        "1 10:00:00.000001 fsync(3<{p}>) = 0\n\
         1 10:00:00.000002 fsync(3<{d}>) = 0\n\
         1 10:00:00.000003 fsync(3<{d}/db>) = 0\n\
         1 10:00:00.000004 fsync(3<{d}/db/blobs>) = 0\n\
         1 10:00:00.000005 fsync(3<{d}/db/conf>) = 0\n\
         1 10:00:00.000006 fsync(3<{d}/master.key>) = 0\n"
    );
    let request = format!(
        "2 10:00:01.000000 recvfrom({sock}, \"POST /v1/secrets/?app_id=x HTTP/1.1\\r\\n\"..., 8192, 0, NULL, NULL) = 300\n"
    );
    let durable = format!(
        "{layout}{request}\
         3 10:00:01.000001 openat(AT_FDCWD, \"{d}/db/blobs/77\", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 9<{d}/db/blobs/77>\n\
         3 10:00:01.000002 write(9<{d}/db/blobs/77>, \"abc\", 3) = 3\n\
         2 10:00:01.000003 pwrite64(4<{d}/db/db>, \"\\0\\0\"..., 512, 0) = 512\n\
         2 10:00:01.000004 fsync(10<{d}/db/blobs/77>) = 0\n\
         2     10:00:01.000005 fsync(11<{d}/db/blobs>) = 0\n\
         2 10:00:01.000006 fdatasync(12<{d}/db/db> <unfinished ...>\n\
         3 10:00:01.000007 pwrite64(4<{d}/db/db>, \"\\0\\0\"..., 512, 512) = 512\n\
         2 10:00:01.000008 <... fdatasync resumed>) = 0\n\
         2 10:00:01.000009 writev({sock}, [{{iov_base=\"HTTP/1.1 200 OK\\r\\n\"..., iov_len=17}}], 1) = 17\n"
    );
    let run = |trace: String| Run {
        trace,
        data_dir: data_dir.clone(),
        parent_dir: parent_dir.clone(),
        stderr: String::new(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let report = check(&run(durable.clone()));
    assert_eq!(report.answered, 1);
    assert_eq!(report.blobs, 1);
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // No fsync of the log since the request.
    let unsynced = durable
        .replace("fdatasync(12<", "sync_file_range(12<")
        .replace("<... fdatasync resumed>", "<... sync_file_range resumed>");
    let report = check(&run(unsynced));
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].contains("never fsynced"));

    // The blob not fsynced.
    let report = check(&run(durable.replace("fsync(10<", "fstat(10<")));
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].contains("blob"));

    // The blob removed by sled (its page written again) before the sync: nothing to sync.
    let removed = durable
        .replace("fsync(10<", "fstat(10<")
        .replace(
            "2 10:00:01.000003 pwrite64(",
            &format!("3 10:00:01.000002 unlinkat(AT_FDCWD, \"{d}/db/blobs/77\", 0) = 0\n2 10:00:01.000003 pwrite64("),
        );
    let report = check(&run(removed));
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // A later group's log sync finishes first, its blob not yet synced: the request's
    // own group covered it.
    let later_group = durable.replace(
        "2 10:00:01.000009 writev(",
        &format!(
            "4 10:00:01.000010 openat(AT_FDCWD, \"{d}/db/blobs/99\", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0666) = 9<{d}/db/blobs/99>\n\
             4 10:00:01.000011 write(9<{d}/db/blobs/99>, \"abc\", 3) = 3\n\
             4 10:00:01.000012 pwrite64(4<{d}/db/db>, \"\\0\\0\"..., 512, 1024) = 512\n\
             4 10:00:01.000013 fdatasync(12<{d}/db/db>) = 0\n\
             2 10:00:01.000019 writev("
        ),
    );
    let report = check(&run(later_group));
    assert_eq!(report.blobs, 2);
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    // The log written only after its last sync.
    let late_write = format!(
        "{layout}{request}\
         2 10:00:01.000001 fdatasync(12<{d}/db/db>) = 0\n\
         2 10:00:01.000002 pwrite64(4<{d}/db/db>, \"\\0\\0\"..., 512, 0) = 512\n\
         2 10:00:01.000003 writev({sock}, [{{iov_base=\"HTTP/1.1 201 Created\\r\\n\"..., iov_len=17}}], 1) = 17\n"
    );
    let report = check(&run(late_write));
    assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    assert!(report.violations[0].contains("not written"));

    // The layout not synced (but for `blobs/`, synced with the blob).
    let report = check(&run(durable.replace(&layout, "")));
    assert_eq!(report.violations.len(), 5, "{:?}", report.violations);
}
