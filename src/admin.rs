//! Admin commands that go through a running server's HTTP API, as any client would.
//! `COFFER_ADDR` names the server, `COFFER_TOKEN` holds a User token.

use clap::{Args, Subcommand};
use reqwest::blocking::Client;
use reqwest::Method;
use serde_json::{json, Value};

/// Where the server is and who we are.
#[derive(Debug, Args)]
pub struct Connection {
    /// Server address.
    #[arg(long, env = "COFFER_ADDR", default_value = "http://127.0.0.1:8240")]
    addr: String,
    /// A User token.
    #[arg(long, env = "COFFER_TOKEN", hide_env_values = true)]
    token: String,
}

/// `coffer app ...`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app (with Development, Staging, Production unless --env is given).
    Create {
        /// App name.
        name: String,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
        /// Environment names (repeatable).
        #[arg(long = "env")]
        environments: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

/// `coffer env ...`
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Create an environment in an app.
    Create {
        /// App id.
        #[arg(long)]
        app_id: String,
        /// Environment name.
        name: String,
        #[command(flatten)]
        conn: Connection,
    },
}

/// `coffer token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is shown only once).
    Create {
        /// Token name.
        #[arg(long)]
        name: String,
        /// `service` or `user`.
        #[arg(long = "type", default_value = "service")]
        kind: String,
        /// App id (service tokens).
        #[arg(long)]
        app_id: Option<String>,
        /// Environment names or ids (service tokens), comma-separated.
        #[arg(long = "env", value_delimiter = ',')]
        environments: Vec<String>,
        /// Permissions, comma-separated: read,create,update,delete.
        #[arg(long, value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        /// Expiry, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        /// Allowed IPs/CIDR ranges, comma-separated.
        #[arg(long, value_delimiter = ',')]
        allowed_ips: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id.
        id: String,
        #[command(flatten)]
        conn: Connection,
    },
}

impl Connection {
    /// GETs `path` for the caller to read the body of (a download of any size: no
    /// overall timeout); an error answer becomes its status and message.
    pub fn download(&self, path: &str) -> Result<reqwest::blocking::Response, String> {
        let url = format!("{}{path}", self.addr.trim_end_matches('/'));
        let client = Client::builder()
            .timeout(None)
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        let response = client
            .get(&url)
            .header("Authorization", format!("Bearer User {}", self.token))
            .send()
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = value["error"].as_str().unwrap_or("request failed");
        Err(format!("{} {message}", status.as_u16()))
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.addr.trim_end_matches('/'));
        let mut request = Client::new()
            .request(method, &url)
            .header("Authorization", format!("Bearer User {}", self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let text = response.text().map_err(|e| format!("{url}: {e}"))?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{url}: unexpected answer: {e}"))?
        };
        if status.is_success() {
            Ok(value)
        } else {
            let message = value["error"].as_str().unwrap_or("request failed");
            Err(format!("{} {message}", status.as_u16()))
        }
    }
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialise")
    );
}

/// Runs `coffer app ...`.
pub fn app(command: AppCommand) -> Result<(), String> {
    match command {
        AppCommand::Create {
            name,
            description,
            environments,
            conn,
        } => {
            let mut body = json!({"name": name, "description": description});
            if !environments.is_empty() {
                body["environments"] = json!(environments);
            }
            print(&conn.call(Method::POST, "/v1/apps/", Some(body))?);
            Ok(())
        }
    }
}

/// Runs `coffer env ...`.
pub fn env(command: EnvCommand) -> Result<(), String> {
    match command {
        EnvCommand::Create { app_id, name, conn } => {
            let path = format!("/v1/environments/?app_id={app_id}");
            print(&conn.call(Method::POST, &path, Some(json!({"name": name})))?);
            Ok(())
        }
    }
}

/// Runs `coffer token ...`.
pub fn token(command: TokenCommand) -> Result<(), String> {
    match command {
        TokenCommand::Create {
            name,
            kind,
            app_id,
            environments,
            permissions,
            expires_at,
            allowed_ips,
            conn,
        } => {
            let mut body = json!({
                "name": name,
                "type": kind,
                "environments": environments,
                "allowedIps": allowed_ips,
            });
            if let Some(app_id) = app_id {
                body["appId"] = json!(app_id);
            }
            if let Some(permissions) = permissions {
                body["permissions"] = json!(permissions);
            }
            if let Some(expires_at) = expires_at {
                body["expiresAt"] = json!(expires_at);
            }
            let created = conn.call(Method::POST, "/v1/tokens/", Some(body))?;
            eprintln!("token id: {}", created["id"].as_str().unwrap_or("?"));
            println!("{}", created["token"].as_str().unwrap_or_default());
            Ok(())
        }
        TokenCommand::Revoke { id, conn } => {
            conn.call(Method::DELETE, &format!("/v1/tokens/{id}/"), None)?;
            eprintln!("revoked {id}");
            Ok(())
        }
    }
}
