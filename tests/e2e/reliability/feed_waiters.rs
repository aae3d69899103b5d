//! Many clients long-polling the changes feed: a waiting request holds a connection and
//! nothing else (no thread), and the one write they wait for wakes every one of them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const WAITERS: usize = 1000;

/// The server's thread count, from `/proc/<pid>/status`.
fn threads(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: in /proc status")
}

#[test]
fn a_thousand_waiting_requests_hold_no_thread_and_one_write_wakes_them_all() {
    // Each waiter is a socket on both sides; the server inherits this limit.
    rlimit::increase_nofile_limit(4 * WAITERS as u64 + 256).expect("raise the open-file limit");
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    // Asked as the waiters ask, so that the lookups they start with (token, environment)
    // are cached, and a thread the pool starts for a first lookup is counted before.
    let (status, at) = admin.get(&changes_path(&app_id, "&env=Development"));
    assert_eq!(status, 200);
    let since = at["next"].as_str().unwrap().to_owned();
    let threads_before = threads(&server);

    let addr = server.base.trim_start_matches("http://").to_owned();
    let path = changes_path(&app_id, &format!("&env=Development&since={since}&wait=60"));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer User {}\r\n\
         Connection: close\r\n\r\n",
        server.admin_token
    );
    let mut waiters: Vec<TcpStream> = (0..WAITERS)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).expect("connect");
            stream.write_all(request.as_bytes()).expect("send");
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            stream
        })
        .collect();
    until_feed_waiting(&server, WAITERS as u64, Duration::from_secs(60));
    let threads_waiting = threads(&server);
    eprintln!("server threads: {threads_before} before, {threads_waiting} with {WAITERS} waiting");
    assert!(
        threads_waiting <= threads_before + 2,
        "waiting requests cost no thread: {threads_before} before, {threads_waiting} with {WAITERS} waiting"
    );

    let (status, created) = admin.post(
        &secrets_path(&app_id, "Development"),
        json!({"secrets": [{"key": "WAKE", "value": "v"}]}),
    );
    assert_eq!(status, 200, "{created}");
    let written = Instant::now();
    let id = created[0]["id"].as_str().unwrap().to_owned();
    for stream in &mut waiters {
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let body = &answer[answer.find("\r\n\r\n").expect("a body") + 4..];
        let page: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(page["data"][0]["secretIds"], json!([id]), "{page}");
    }
    let all_answered = written.elapsed();
    eprintln!("{WAITERS} waiters answered within {all_answered:?} of the write");
    assert!(all_answered < Duration::from_secs(10), "{all_answered:?}");
    assert_eq!(feed_waiting(&server), 0);
}
