//! Helpers of the access tests that the shared harness does not have: the contract's
//! 403 messages with their codes, service-token headers, forwarded requests, times.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// No Authorization header.
pub const NO_CREDENTIALS: &str = "Authentication credentials were not provided.";
/// Malformed header or unknown type.
pub const INVALID: &str = "Invalid token";
/// Unknown, revoked or expired token.
pub const GONE: &str = "Token expired or deleted";
/// Service token, environment outside its scope.
pub const OTHER_ENV: &str = "Service token cannot access this environment";
/// Service token, app outside its scope.
pub const OTHER_APP: &str = "Service token cannot access this app";
/// Permission `read` missing.
pub const NO_READ: &str = "You don't have permission to read secrets in this environment.";
/// Permission `create` missing.
pub const NO_CREATE: &str = "You don't have permission to create secrets in this environment.";
/// Permission `update` missing.
pub const NO_UPDATE: &str = "You don't have permission to update secrets in this environment.";
/// Permission `delete` missing.
pub const NO_DELETE: &str = "You don't have permission to delete secrets in this environment.";
/// Service token on an admin route.
pub const USER_ONLY: &str = "This action requires a User token.";
/// Client IP refused by a network access policy.
pub const IP_REFUSED: &str =
    "Access denied: a network access policy restricts access from your IP address.";

/// The machine code the server pairs with each 403 message.
pub fn code_of(message: &str) -> &'static str {
    match message {
        NO_CREDENTIALS => "not_authenticated",
        INVALID => "invalid_token",
        GONE => "token_invalid",
        OTHER_ENV => "environment_out_of_scope",
        OTHER_APP => "app_out_of_scope",
        NO_READ | NO_CREATE | NO_UPDATE | NO_DELETE => "permission_denied",
        USER_ONLY => "user_token_required",
        IP_REFUSED => "ip_not_allowed",
        other => panic!("not a 403 message of the contract: {other}"),
    }
}

/// Asserts a 403 with one of the contract's messages (and its code).
#[track_caller]
pub fn assert_denied(answer: &(StatusCode, Value), message: &str) {
    assert_error(answer, 403, message, code_of(message));
}

/// The Authorization header of a service token.
pub fn service_header(token: &str) -> Option<String> {
    Some(format!("Bearer Service {token}"))
}

/// Creates a service token of `app_id` on `envs` with `permissions`; returns (id, token).
pub fn service_token(
    admin: &Api,
    app_id: &str,
    envs: &[&str],
    permissions: &[&str],
) -> (String, String) {
    create_token(
        admin,
        json!({
            "name": "scoped",
            "type": "service",
            "appId": app_id,
            "environments": envs,
            "permissions": permissions,
        }),
    )
}

/// A request as it arrives through a proxy: with `X-Forwarded-For: <client>`.
pub fn forwarded(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<&Value>,
    client: &str,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    api.send_raw(method, path, bytes, &[("X-Forwarded-For", client)])
}

/// Creates one secret with the admin client; returns its id.
pub fn seed_secret(admin: &Api, app_id: &str, env: &str, key: &str, value: &str) -> String {
    let (status, body) = admin.post(
        &secrets_path(app_id, env),
        json!({"secrets": [{"key": key, "value": value}]}),
    );
    assert_eq!(status, 200, "{body}");
    body[0]["id"].as_str().unwrap().to_string()
}

/// `at` as RFC 3339 UTC with microseconds, e.g. `2026-11-25T10:57:21.812009Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let since_epoch = at.duration_since(UNIX_EPOCH).expect("after 1970");
    let secs = since_epoch.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since_epoch.subsec_micros()
    )
}

#[test]
fn rfc3339_formats_known_instants() {
    use std::time::Duration;
    let at = UNIX_EPOCH + Duration::from_micros(1_795_604_241_812_009);
    assert_eq!(rfc3339(at), "2026-11-25T10:57:21.812009Z");
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
}
