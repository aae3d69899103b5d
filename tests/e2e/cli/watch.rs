//! `coffer run --watch`: the child is restarted when a secret it was given changes,
//! also after the server went away and came back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::support::*;

/// A child that prints `start <GREETING>`, and `stopping` when it gets SIGTERM.
const GREETER: &str =
    "trap 'echo stopping; exit 0' TERM; echo \"start $GREETING\"; while :; do sleep 0.05; done";

/// Lines of a child's stdout, as they come.
fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[track_caller]
fn next_line(lines: &Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(30))
        .expect("a line from the child within 30 s")
}

fn stop_with_sigterm(mut child: Child, lines: &Receiver<String>) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(next_line(lines), "stopping", "SIGTERM forwarded");
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "the child's exit code"
    );
}

#[test]
fn watch_restarts_the_child_when_an_injected_secret_changes() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("GREETING", "hello")]);
    let mut child = workspace
        .command(&[
            "run",
            "--watch",
            "--grace-period",
            "5",
            "--",
            "sh",
            "-c",
            GREETER,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    assert_eq!(next_line(&lines), "start hello");

    workspace.update("Development", "GREETING", "bye");
    assert_eq!(next_line(&lines), "stopping");
    assert_eq!(next_line(&lines), "start bye");

    workspace.update("Development", "GREETING", "again");
    assert_eq!(next_line(&lines), "stopping");
    assert_eq!(next_line(&lines), "start again");
    stop_with_sigterm(child, &lines);
}

#[test]
fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let workspace = Workspace::new();
    workspace.seed("Development", &[("GREETING", "hello")]);
    let stubborn = "trap '' TERM; echo \"start $GREETING\"; while :; do sleep 0.05; done";
    let mut child = workspace
        .command(&[
            "run",
            "--watch",
            "--grace-period",
            "1",
            "--",
            "sh",
            "-c",
            stubborn,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    assert_eq!(next_line(&lines), "start hello");
    workspace.update("Development", "GREETING", "bye");
    assert_eq!(next_line(&lines), "start bye");
    let _ = child.kill();
    let _ = child.wait();
}

/// A TCP relay in front of the server, so that the client keeps one address while the
/// server restarts on another port.
struct Relay {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
}

impl Relay {
    fn new(base: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(socket_of(base)));
        let target = Arc::clone(&upstream);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let to = *target.lock().unwrap();
                std::thread::spawn(move || relay(client, to));
            }
        });
        Relay { addr, upstream }
    }

    fn point_to(&self, base: &str) {
        *self.upstream.lock().unwrap() = socket_of(base);
    }
}

fn socket_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 || to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn relay(client: TcpStream, to: SocketAddr) {
    let Ok(server) = TcpStream::connect(to) else {
        return;
    };
    let (client_read, server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || pump(client_read, server_write));
    pump(server, client);
}

#[test]
fn watch_keeps_following_through_a_server_restart() {
    let mut workspace = Workspace::new();
    workspace.seed("Development", &[("GREETING", "hello")]);
    let relay = Relay::new(&workspace.server.base);
    let mut child = workspace
        .command(&[
            "run",
            "--watch",
            "--grace-period",
            "5",
            "--",
            "sh",
            "-c",
            GREETER,
        ])
        .env("COFFER_ADDR", format!("http://{}", relay.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    assert_eq!(next_line(&lines), "start hello");

    workspace.server.kill();
    workspace.server.start_again();
    relay.point_to(&workspace.server.base);
    workspace.update("Development", "GREETING", "after restart");
    assert_eq!(next_line(&lines), "stopping");
    assert_eq!(next_line(&lines), "start after restart");
    stop_with_sigterm(child, &lines);
}
