//! The API client: one blocking reqwest client (rustls), the Authorization header, and
//! the mapping of every failure to one clear line.

use std::error::Error as _;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

use super::config::{Connection, TokenKind};
use super::CliError;

/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed request, before it becomes a [`CliError`].
#[derive(Debug, Clone)]
pub enum ApiFailure {
    /// The server answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `error` message.
        message: String,
        /// The server's `code`.
        code: String,
    },
    /// No answer: connection refused, DNS, TLS or a timeout; one line saying which.
    Transport(String),
}

impl ApiFailure {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiFailure::Status { status, .. } => Some(*status),
            ApiFailure::Transport(_) => None,
        }
    }
}

impl From<ApiFailure> for CliError {
    fn from(failure: ApiFailure) -> CliError {
        match failure {
            ApiFailure::Status {
                status: 403,
                message,
                ..
            } if message == "Token expired or deleted" || message == "Invalid token" => {
                CliError::failed(format!(
                    "the server refused the token ({message}); log in again with `coffer login`"
                ))
            }
            ApiFailure::Status {
                status, message, ..
            } => CliError::failed(format!("{message} (HTTP {status})")),
            ApiFailure::Transport(line) => CliError::failed(line),
        }
    }
}

impl ApiFailure {
    /// For a route this client needs that the server does not have (an older server):
    /// says so instead of the bare `Not found.`.
    pub fn or_missing_route(self, api: &Api, route: &str) -> CliError {
        match &self {
            ApiFailure::Status {
                status: 404 | 405,
                code,
                ..
            } if code == "not_found" || code == "method_not_allowed" => CliError::failed(format!(
                "the server at {} does not serve {route}: it is older than this client",
                api.base()
            )),
            _ => self.into(),
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// Response headers.
    pub headers: HeaderMap,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// A client bound to one server and one token.
#[derive(Debug, Clone)]
pub struct Api {
    http: Client,
    base: String,
    authorization: String,
}

impl Api {
    /// A client for `connection`, with the token kind given (or learnt at login).
    pub fn new(connection: &Connection, kind: TokenKind) -> Result<Api, CliError> {
        let mut builder = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("coffer-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &connection.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                CliError::failed(format!("{}: not a PEM certificate: {e}", path.display()))
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder
            .build()
            .map_err(|e| CliError::failed(format!("cannot set up the HTTP client: {e}")))?;
        let base = connection.addr.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::usage(format!(
                "server address must start with http:// or https://: {base}"
            )));
        }
        Ok(Api {
            http,
            base,
            authorization: format!("Bearer {} {}", kind.header_word(), connection.token),
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (which starts with `/v1/...`), authorised.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.authorization)
    }

    /// Sends a request and reads a JSON answer; an error status becomes [`ApiFailure::Status`].
    pub fn send(&self, request: RequestBuilder) -> Result<Answer, ApiFailure> {
        let response = request.send().map_err(|e| self.transport(&e))?;
        read_answer(response).map_err(|e| match e {
            ReadFailure::Api(failure) => failure,
            ReadFailure::Body(e) => self.transport(&e),
        })
    }

    /// `method path?query` with an optional JSON body.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer, ApiFailure> {
        let mut request = self.request(method, path).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request)
    }

    /// One line for a request that got no answer.
    fn transport(&self, error: &reqwest::Error) -> ApiFailure {
        let mut causes = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        let innermost = causes.last().cloned().unwrap_or_else(|| error.to_string());
        let chain = causes.join(": ").to_ascii_lowercase();
        // rustls reports through io errors whose types do not survive the chain, so
        // its failures are recognised by their words.
        let tls_words = [
            "certificate",
            "tls",
            "handshake",
            "invalid peer",
            "corrupt message",
            "alert",
        ];
        let line = if tls_words.iter().any(|w| chain.contains(w)) {
            format!("TLS failure talking to {}: {innermost}", self.base)
        } else if error.is_timeout() {
            format!("the server at {} did not answer in time", self.base)
        } else if error.is_connect() {
            format!("cannot reach the server at {}: {innermost}", self.base)
        } else {
            format!("request to {} failed: {innermost}", self.base)
        };
        ApiFailure::Transport(line)
    }
}

enum ReadFailure {
    Api(ApiFailure),
    Body(reqwest::Error),
}

fn read_answer(response: Response) -> Result<Answer, ReadFailure> {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().map_err(ReadFailure::Body)?;
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if status.is_success() {
        return Ok(Answer { headers, body });
    }
    let message = body["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string()
        });
    Err(ReadFailure::Api(ApiFailure::Status {
        status: status.as_u16(),
        message,
        code: body["code"].as_str().unwrap_or_default().to_string(),
    }))
}
