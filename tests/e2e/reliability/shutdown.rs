//! Graceful shutdown: on SIGTERM the server stops accepting, finishes the requests in
//! flight, flushes and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

#[test]
fn a_request_in_flight_at_sigterm_is_answered_and_kept() {
    let mut server = Server::start();
    let (app_id, _) = create_app(&server.admin(), "shop");
    let path = secrets_path(&app_id, "Development");
    let body = json!({"secrets": [{"key": "IN_FLIGHT", "value": "kept"}]}).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let addr = server.base.trim_start_matches("http://").to_string();

    // Half the body is sent before the signal and half after: the request is in flight
    // for the whole shutdown.
    let mut stream = TcpStream::connect(&addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer User {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first_half}",
        server.admin_token,
        body.len()
    )
    .expect("send the first half");
    sleep(Duration::from_millis(300));
    server.send_sigterm();
    sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(&addr).is_err(),
        "a stopping server accepts no new connection"
    );
    stream
        .write_all(second_half.as_bytes())
        .expect("send the second half");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the answer");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"IN_FLIGHT\""), "{response}");

    let status = server.wait();
    assert!(status.success(), "graceful stop exits 0, got {status}");
    server.start_again();
    let (status, listed) = server.admin().get(&format!("{path}&key=IN_FLIGHT"));
    assert_eq!(status, 200);
    assert_eq!(listed[0]["value"], "kept", "{listed}");
}

#[test]
fn a_waiting_feed_request_is_answered_at_once_on_sigterm_and_the_server_exits() {
    let mut server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let since = admin.get(&changes_path(&app_id, "")).1["next"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = changes_path(&app_id, &format!("&since={since}&wait=60"));
    let waiter = std::thread::spawn(move || (admin.get(&path), Instant::now()));
    until_feed_waiting(&server, 1, Duration::from_secs(10));

    let signalled = Instant::now();
    server.send_sigterm();
    let ((status, page), answered) = waiter.join().unwrap();
    let answered_after = answered.duration_since(signalled);
    assert_eq!(status, 200, "{page}");
    assert_eq!(page, json!({"data": [], "next": since}));
    assert!(
        answered_after < Duration::from_secs(1),
        "answered {answered_after:?} after SIGTERM"
    );
    let status = server.wait();
    let exited_after = signalled.elapsed();
    eprintln!("answered {answered_after:?} and exited {exited_after:?} after SIGTERM");
    assert!(status.success(), "graceful stop exits 0, got {status}");
    assert!(
        exited_after < Duration::from_secs(5),
        "exited {exited_after:?} after SIGTERM"
    );
}
