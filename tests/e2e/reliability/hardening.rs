//! The attacks of the security review, repeated: strangers cannot grow the server's
//! state, a forged forwarded header does not change the client's address, a slow body
//! cannot hold a connection, and one large listing cannot stall the server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};

use crate::access::support::{assert_denied, GONE, IP_REFUSED};
use crate::common::*;

fn connect(server: &Server) -> TcpStream {
    let addr = server.base.strip_prefix("http://").expect("plain HTTP");
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads one answer off a keep-alive connection: `(status, head, body)`.
fn read_answer(reader: &mut BufReader<TcpStream>) -> (u16, String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("read") > 0, "closed");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    (status, head, body)
}

#[test]
fn made_up_methods_leave_no_state_behind() {
    let server = Server::start();
    let anyone = server.client(None);
    assert_eq!(anyone.get("/metrics").0, 200);
    let before = server.memory_kib("VmRSS");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut stream = connect(&server);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut rng = rand::thread_rng();
                let mut sent = Vec::new();
                for i in 0..2_500 {
                    // One in fifty is as long as the review's: 30,000 letters.
                    let len = if i % 50 == 0 {
                        30_000
                    } else {
                        rng.gen_range(1..64)
                    };
                    let method: String = (&mut rng)
                        .sample_iter(Alphanumeric)
                        .take(len)
                        .map(char::from)
                        .collect();
                    let method = format!("X{t}{method}");
                    let request = format!("{method} /health HTTP/1.1\r\nHost: x\r\n\r\n");
                    stream.write_all(request.as_bytes()).unwrap();
                    let (status, _, body) = read_answer(&mut reader);
                    assert_eq!(status, 405, "{}", String::from_utf8_lossy(&body));
                    let body: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(body["code"], "method_not_allowed");
                    if i % 500 == 0 {
                        sent.push(method);
                    }
                }
                sent
            })
        })
        .collect();
    let sent: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let (status, metrics) = anyone.get("/metrics");
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.len() < 64 * 1024,
        "{} bytes of metrics",
        metrics.len()
    );
    assert!(
        metrics.contains(r#"method="other",route="/health",status="405""#),
        "{metrics}"
    );
    let after = server.memory_kib("VmRSS");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    let logs = server.logs();
    for method in sent {
        assert!(!metrics.contains(&method[..20]), "method in /metrics");
        assert!(!logs.contains(&method[..20]), "method in the log");
    }
}

/// A raw request through the trusted proxy (the test's own loopback address).
fn via_proxy(server: &Server, token: &str, forwarded: &[(&str, &str)]) -> (u16, Value) {
    let mut stream = connect(server);
    let mut request = format!(
        "GET /v1/apps/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: Bearer User {token}\r\n"
    );
    for (name, value) in forwarded {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let (status, _, body) = read_answer(&mut BufReader::new(stream));
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn a_forged_forwarded_header_does_not_change_the_client() {
    let server = Server::start_with(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--auth-failure-limit",
        "3",
    ]);
    let (_, created) = server.admin().post(
        "/v1/tokens/",
        json!({"name": "office", "type": "user", "allowedIps": ["10.0.0.0/8"]}),
    );
    let office = created["token"].as_str().unwrap().to_owned();
    // Through the proxy from inside the range: admitted.
    let (status, _) = via_proxy(&server, &office, &[("X-Forwarded-For", "10.1.2.3")]);
    assert_eq!(status, 200);
    // The review's requests: the proxy reports 192.0.2.7 after an entry that does not
    // parse, and X-Real-IP claims the range. The header is not believed, the peer
    // (127.0.0.1, outside the range) is the client.
    for forged in ["junk, 192.0.2.7", "10.1.2.3:5555, 192.0.2.7", ", 192.0.2.7"] {
        let answer = via_proxy(
            &server,
            &office,
            &[("X-Forwarded-For", forged), ("X-Real-IP", "10.0.0.5")],
        );
        assert_denied(&(answer.0.try_into().unwrap(), answer.1), IP_REFUSED);
    }
    // The client's own line before the proxy's: the lines are joined in order, and the
    // proxy's last entry is the client.
    let answer = via_proxy(
        &server,
        &office,
        &[
            ("X-Forwarded-For", "10.1.2.3"),
            ("X-Forwarded-For", "192.0.2.7"),
        ],
    );
    assert_denied(&(answer.0.try_into().unwrap(), answer.1), IP_REFUSED);

    // Nor does the trick give a fresh failed-authentication budget per request: every
    // forged request counts against the proxy's own address.
    let unknown = "0".repeat(64);
    for forged in ["junk, 192.0.2.7", "junk, 192.0.2.8", ", 192.0.2.9"] {
        let answer = via_proxy(&server, &unknown, &[("X-Forwarded-For", forged)]);
        assert_denied(&(answer.0.try_into().unwrap(), answer.1), GONE);
    }
    let (status, body) = via_proxy(
        &server,
        &unknown,
        &[("X-Forwarded-For", "junk, 192.0.2.10")],
    );
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "throttled");
}

#[test]
fn failed_authentications_count_ipv6_clients_by_slash_64_and_are_logged() {
    let server = Server::start_with(&[
        "--trusted-proxies",
        "127.0.0.1",
        "--auth-failure-limit",
        "3",
    ]);
    let unknown = "0".repeat(64);
    for n in 1..=3 {
        let client = format!("2001:db8:1:2::{n}");
        let answer = via_proxy(&server, &unknown, &[("X-Forwarded-For", &client)]);
        assert_denied(&(answer.0.try_into().unwrap(), answer.1), GONE);
    }
    // A fourth address of the same /64 is the same client.
    let neighbour = [("X-Forwarded-For", "2001:db8:1:2:ffff:ffff:ffff:ffff")];
    assert_eq!(via_proxy(&server, &unknown, &neighbour).0, 429);
    // And a valid token does not get it past the block: refused before any lookup.
    assert_eq!(via_proxy(&server, &server.admin_token, &neighbour).0, 429);
    // Another /64 has its own budget.
    let elsewhere = [("X-Forwarded-For", "2001:db8:1:3::1")];
    assert_eq!(via_proxy(&server, &server.admin_token, &elsewhere).0, 200);

    let (_, metrics) = server.client(None).get("/metrics");
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains(r#"coffer_auth_refused_total{reason="token_invalid"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"coffer_auth_refused_total{reason="throttled"} 2"#),
        "{metrics}"
    );
    // Log lines reach stderr through a writer thread: give them a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused_lines = |logs: &str| logs.matches("authentication refused").count();
    while refused_lines(&server.logs()) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = server.logs();
    let refusals: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("authentication refused"))
        .collect();
    assert_eq!(refusals.len(), 5, "{logs}");
    assert!(refusals[0].contains("client_ip=2001:db8:1:2::1"), "{logs}");
    assert!(refusals[0].contains("reason=\"token_invalid\""), "{logs}");
    // The first start prints the admin token once, on purpose; no log line has one.
    let printed_once =
        |l: &&str| l.starts_with("Admin token: ") || l.starts_with("Admin phaseToken: ");
    for line in logs.lines().filter(|l| !printed_once(l)) {
        assert!(!line.contains(&unknown), "a token in the log: {line}");
        assert!(
            !line.contains(&server.admin_token),
            "a token in the log: {line}"
        );
    }
}

#[test]
fn a_slow_body_is_cut_at_its_deadline() {
    let server = Server::start_with(&["--body-timeout", "2"]);
    let (app_id, _) = create_app(&server.admin(), "slow");
    let mut stream = connect(&server);
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer User {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n",
        secrets_path(&app_id, "Development"),
        server.admin_token
    );
    stream.write_all(head.as_bytes()).unwrap();
    let started = Instant::now();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            // One byte every 200 ms until the server hangs up.
            while started.elapsed() < Duration::from_secs(20) {
                if stream.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let mut reader = BufReader::new(stream);
    let (status, _, body) = read_answer(&mut reader);
    let waited = started.elapsed();
    assert_eq!(status, 408);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": "Request body not received in time.", "code": "request_timeout"})
    );
    assert!(waited >= Duration::from_millis(1900), "after {waited:?}");
    assert!(waited < Duration::from_secs(6), "after {waited:?}");
    // The connection is closed: nothing more is read from it.
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap_or(0), 0);
    writer.join().unwrap();
    // Nothing was written, and the server serves on.
    let (status, list) = server.admin().get(&secrets_path(&app_id, "Development"));
    assert_eq!((status.as_u16(), list), (200, json!([])));
}

/// An environment of `n` secrets with values of `value_len` bytes, written in batches
/// that fit the body limit given to the server.
fn fill(api: &Api, path: &str, n: usize, value_len: usize) {
    let per_batch = (900 * 1024 / (value_len + 64)).clamp(1, 1000);
    let mut written = 0;
    while written < n {
        let batch: Vec<Value> = (written..n.min(written + per_batch))
            .map(|i| {
                json!({"key": format!("K{i:05}"), "value": "v".repeat(value_len),
                            "path": format!("/p{}", i % 3)})
            })
            .collect();
        written += batch.len();
        let (status, body) = api.post(path, json!({ "secrets": batch }));
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn listings_page_with_a_cursor_bound_to_their_filters() {
    let server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "pages");
    let path = secrets_path(&app_id, "Development");
    fill(&admin, &path, 250, 10);
    let (_, everything) = admin.get(&path);
    let everything = everything.as_array().unwrap().clone();
    assert_eq!(everything.len(), 250);

    let http = &admin.http;
    let auth = admin.authorization.clone().unwrap();
    let page = |query: &str| {
        let response = http
            .get(format!("{}{path}&{query}", server.base))
            .header("Authorization", &auth)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get("Next-Cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, next, response.json::<Value>().unwrap())
    };
    let mut paged = Vec::new();
    let mut query = "limit=100".to_owned();
    let mut pages = 0;
    loop {
        let (status, next, body) = page(&query);
        assert_eq!(status, 200, "{body}");
        pages += 1;
        paged.extend(body.as_array().unwrap().iter().cloned());
        match next {
            Some(cursor) => query = format!("limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, everything, "pages put together are the listing");

    // A filtered listing pages within its filter.
    let (_, next, first) = page("path=/p1&limit=10");
    assert!(first.as_array().unwrap().iter().all(|s| s["path"] == "/p1"));
    let cursor = next.unwrap();
    let (status, _, second) = page(&format!("path=/p1&limit=10&cursor={cursor}"));
    assert_eq!(status, 200);
    assert_ne!(first, second);
    // The cursor is bound to its filters, and a made-up one names nothing.
    for query in [
        format!("limit=10&cursor={cursor}"),
        format!("path=/p2&limit=10&cursor={cursor}"),
        format!("path=/p1&tags=x&cursor={cursor}"),
        "cursor=abc".to_owned(),
    ] {
        let (status, _, body) = page(&query);
        assert_eq!(status, 400, "{query}");
        assert_eq!(
            body,
            json!({"error": "Invalid 'cursor'", "code": "invalid_cursor"})
        );
    }
    for limit in ["0", "1001", "-1", "ten", ""] {
        let (status, _, body) = page(&format!("limit={limit}"));
        assert_eq!(status, 400, "{limit}");
        assert_eq!(
            body,
            json!({"error": "Invalid 'limit'", "code": "invalid_limit"})
        );
    }
}

#[test]
fn a_large_listing_holds_about_its_answer_and_does_not_stall_health() {
    // One worker: a listing on it would stall /health for as long as it runs.
    let server = Server::start_with(&["--body-limit", "2000000", "--workers", "1"]);
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "large");
    let path = secrets_path(&app_id, "Development");
    // 300 secrets of 60 KiB: an 18 MB answer.
    fill(&admin, &path, 300, 60 * 1024);
    let baseline = server.memory_kib("VmRSS");
    let listing = {
        let admin = admin.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let (status, body) = admin.get(&path);
            assert_eq!(status, 200);
            assert_eq!(body.as_array().unwrap().len(), 300);
            started.elapsed()
        })
    };
    let health = server.client(None);
    let mut slowest = Duration::ZERO;
    while !listing.is_finished() {
        let started = Instant::now();
        assert_eq!(health.get("/health").0, 200);
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = listing.join().unwrap();
    let peak = server.memory_kib("VmHWM");
    let answer_kib = 300 * 60;
    eprintln!(
        "listing took {took:?}; slowest /health {slowest:?}; RSS {baseline} KiB, peak {peak} KiB"
    );
    assert!(
        // On the worker, the listing held /health for seconds; off it, a busy machine
        // still answers well within a second.
        slowest < Duration::from_secs(1),
        "/health waited {slowest:?} during a listing of {took:?}"
    );
    assert!(
        peak < baseline + 3 * answer_kib,
        "peak {peak} KiB from {baseline} KiB for a {answer_kib} KiB answer"
    );
}

#[test]
fn requests_the_http_layer_refuses_carry_the_json_body() {
    let server = Server::start();
    let huge_header = format!("X-Big: {}\r\n", "a".repeat(200 * 1024));
    for (request, status, code) in [
        ("GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_owned(), 400, "malformed_request"),
        ("GET /health HTTP/9.9\r\n\r\n".to_owned(), 400, "malformed_request"),
        ("GET /hea lth HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(), 400, "malformed_request"),
        ("POST /v1/apps/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_owned(), 400, "malformed_request"),
        (format!("GET /health HTTP/1.1\r\nHost: x\r\n{huge_header}\r\n"), 431, "headers_too_large"),
    ] {
        let mut stream = connect(&server);
        let _ = stream.write_all(request.as_bytes());
        let (got, head, body) = read_answer(&mut BufReader::new(stream));
        assert_eq!(got, status, "{request:.60}");
        assert!(
            head.to_ascii_lowercase().contains("content-type: application/json"),
            "{head}"
        );
        let body: Value = serde_json::from_slice(&body).expect("JSON body");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(server.client(None).get("/health").0, 200);
}

#[test]
fn slow_bodies_hold_a_bounded_number_of_connections() {
    let server = Server::start_with(&["--body-timeout", "3", "--body-readers", "2"]);
    let (app_id, _) = create_app(&server.admin(), "bounded");
    let path = secrets_path(&app_id, "Development");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer User {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
        server.admin_token
    );
    // Two senders that never finish take both readers…
    let slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(&server);
            stream.write_all(head.as_bytes()).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // …so a third body is refused at once, with the JSON body and a Retry-After.
    let started = Instant::now();
    let mut third = connect(&server);
    third.write_all(head.as_bytes()).unwrap();
    let (status, head_lines, body) = read_answer(&mut BufReader::new(third));
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        head_lines.to_ascii_lowercase().contains("retry-after: 1"),
        "{head_lines}"
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": "Service unavailable.", "code": "service_unavailable"})
    );
    // Requests without a body are not held up, and once the slow senders are cut at
    // their deadline, bodies are read again.
    assert_eq!(server.admin().get(&path).0, 200);
    for mut stream in slow {
        let (status, _, _) = read_answer(&mut BufReader::new(stream.try_clone().unwrap()));
        assert_eq!(status, 408);
        let _ = stream.flush();
    }
    let (status, created) = server
        .admin()
        .post(&path, json!({"secrets": [{"key": "AFTER", "value": "v"}]}));
    assert_eq!(status, 200, "{created}");
}
