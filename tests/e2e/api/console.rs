//! The web console's HTTP contract: its files served from the binary with a strict
//! Content-Security-Policy, ETag revalidation, gzip when asked, and 404 for the rest.

use std::io::Read;

use reqwest::blocking::Response;

use crate::common::*;

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = server.admin().http.get(format!("{}{path}", server.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_console_page_is_served_with_a_strict_policy() {
    let server = Server::start();
    let response = get(&server, "/console/", &[]);
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    let policy = header(&response, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, "referrer-policy"), "no-referrer");
    assert_eq!(header(&response, "cache-control"), "no-cache");
    assert_eq!(header(&response, "vary"), "Accept-Encoding");
    let page = response.text().unwrap();
    assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(!page.contains("<script>"), "no inline script");
    assert!(!page.contains("style="), "no inline style");
}

#[test]
fn console_without_its_slash_is_the_same_page() {
    // The app trims trailing slashes before routing, so `/console` and `/console/` are
    // one request: both answer the page (which names its files by absolute path).
    let server = Server::start();
    let with_slash = get(&server, "/console/", &[]);
    let without = get(&server, "/console", &[]);
    assert_eq!(without.status(), 200);
    assert_eq!(header(&without, "etag"), header(&with_slash, "etag"));
    assert!(header(&without, "content-security-policy").contains("default-src 'none'"));
    assert_eq!(without.text().unwrap(), with_slash.text().unwrap());
}

#[test]
fn an_unchanged_file_is_answered_304_on_its_etag() {
    let server = Server::start();
    let first = get(&server, "/console/app.js", &[]);
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "content-type"),
        "text/javascript; charset=utf-8"
    );
    let etag = header(&first, "etag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = get(&server, "/console/app.js", &[("If-None-Match", &etag)]);
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().unwrap().is_empty());
    let other = get(
        &server,
        "/console/app.js",
        &[("If-None-Match", "\"stale\"")],
    );
    assert_eq!(other.status(), 200);
    let style = get(&server, "/console/style.css", &[("If-None-Match", &etag)]);
    assert_eq!(style.status(), 200, "an ETag names one file only");
}

#[test]
fn files_are_gzipped_when_the_client_asks() {
    let server = Server::start();
    let plain = get(&server, "/console/view-secrets.js", &[]);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain_etag = header(&plain, "etag");
    let plain = plain.bytes().unwrap();
    let zipped = get(
        &server,
        "/console/view-secrets.js",
        &[("Accept-Encoding", "br;q=1, gzip;q=0.8")],
    );
    assert_eq!(zipped.status(), 200);
    assert_eq!(header(&zipped, "content-encoding"), "gzip");
    assert_eq!(header(&zipped, "vary"), "Accept-Encoding");
    let zipped_etag = header(&zipped, "etag");
    assert_ne!(zipped_etag, plain_etag, "each encoding has its own tag");
    let zipped = zipped.bytes().unwrap();
    assert!(
        zipped.len() < plain.len() / 2,
        "{} of {}",
        zipped.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);
    let revalidated = get(
        &server,
        "/console/view-secrets.js",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &zipped_etag)],
    );
    assert_eq!(revalidated.status(), 304);
}

#[test]
fn an_unknown_console_file_is_404_and_other_methods_405() {
    let server = Server::start();
    for path in [
        "/console/nope.js",
        "/console/../Cargo.toml",
        "/console/a/b.js",
    ] {
        let response = get(&server, path, &[]);
        assert_eq!(response.status(), 404, "{path}");
        let body: serde_json::Value = response.json().unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
    let posted = server
        .admin()
        .http
        .post(format!("{}/console/app.js", server.base))
        .send()
        .unwrap();
    assert_eq!(posted.status(), 405);
}

#[test]
fn console_routes_stay_out_of_the_openapi_document() {
    let server = Server::start();
    let response = get(&server, "/openapi.json", &[]);
    assert_eq!(response.status(), 200);
    let document: serde_json::Value = response.json().unwrap();
    let paths = document["paths"].as_object().unwrap();
    assert!(!paths.is_empty());
    assert!(paths.keys().all(|path| !path.starts_with("/console")));
}
