//! The config file (`$XDG_CONFIG_HOME/coffer/config.toml`, mode 0600: it holds tokens)
//! and the profile a command acts with, after `COFFER_ADDR` / `COFFER_TOKEN` overrides.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CliError;

/// The profile used when neither `--profile` nor `COFFER_PROFILE` names one and the
/// config file names no default.
pub const DEFAULT_PROFILE: &str = "default";

/// Which kind of token a profile holds; it decides the word in the Authorization header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Acts for an administrator.
    User,
    /// Scoped to one app, some of its environments and some permissions.
    Service,
}

impl TokenKind {
    /// The type word of `Authorization: Bearer <Type> <token>`.
    pub fn header_word(self) -> &'static str {
        match self {
            TokenKind::User => "User",
            TokenKind::Service => "Service",
        }
    }

    /// As the server spells it in token objects.
    pub fn parse(name: &str) -> Option<TokenKind> {
        match name.to_ascii_lowercase().as_str() {
            "user" => Some(TokenKind::User),
            "service" | "serviceaccount" => Some(TokenKind::Service),
            _ => None,
        }
    }
}

/// One server and the token used with it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Base URL of the server, e.g. `https://coffer.example.com`.
    pub addr: String,
    /// The bearer token (64 hex characters).
    pub token: String,
    /// User or Service, found out at login.
    pub kind: TokenKind,
    /// A PEM file of extra trusted CA certificates, for a server with a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("addr", &self.addr)
            .field("token", &"<hidden>")
            .field("kind", &self.kind)
            .finish()
    }
}

/// The whole config file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ConfigFile {
    /// The profile used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Where the config file lives: `$XDG_CONFIG_HOME/coffer/config.toml`, or
/// `$HOME/.config/coffer/config.toml` when `XDG_CONFIG_HOME` is unset or relative.
pub fn config_path() -> Result<PathBuf, CliError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => PathBuf::from(home).join(".config"),
            _ => {
                return Err(CliError::failed(
                    "neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the config file",
                ))
            }
        },
    };
    Ok(base.join("coffer").join("config.toml"))
}

impl ConfigFile {
    /// Reads the config file; a missing file is an empty config.
    pub fn load() -> Result<ConfigFile, CliError> {
        let path = config_path()?;
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                CliError::failed(format!(
                    "{} is not a valid config file: {}",
                    path.display(),
                    e.message()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(CliError::failed(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the config file with mode 0600 (in a 0700 directory), replacing it whole.
    pub fn save(&self) -> Result<PathBuf, CliError> {
        let path = config_path()?;
        let dir = path.parent().expect("the config path has a directory");
        let fail = |p: &Path, e: std::io::Error| CliError::failed(format!("{}: {e}", p.display()));
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| fail(dir, e))?;
        }
        let text = toml::to_string(self).expect("the config serialises");
        // Written beside the file and renamed over it, so a crash never leaves half a
        // config; created 0600 so the token is never readable by others, not even briefly.
        let temp = dir.join(".config.toml.new");
        let _ = fs::remove_file(&temp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| fail(&temp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail(&temp, e))?;
        fs::rename(&temp, &path).map_err(|e| fail(&path, e))?;
        Ok(path)
    }

    /// The name of the profile to use: `--profile`, else `COFFER_PROFILE` (clap reads
    /// both into `requested`), else the file's default, else `default`.
    pub fn profile_name(&self, requested: Option<&str>) -> String {
        requested
            .map(str::to_string)
            .or_else(|| self.default_profile.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_string())
    }
}

/// What a command connects with.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Base URL.
    pub addr: String,
    /// The bearer token.
    pub token: String,
    /// User or Service; `None` when the token came from `COFFER_TOKEN` and is not known yet.
    pub kind: Option<TokenKind>,
    /// Extra trusted CA certificates.
    pub ca_cert: Option<PathBuf>,
}

/// The connection for `profile`, with `COFFER_ADDR` and `COFFER_TOKEN` taking precedence.
pub fn connection(profile: Option<&str>) -> Result<Connection, CliError> {
    let config = ConfigFile::load()?;
    let name = config.profile_name(profile);
    let stored = config.profiles.get(&name);
    let env_addr = std::env::var("COFFER_ADDR").ok().filter(|s| !s.is_empty());
    let env_token = std::env::var("COFFER_TOKEN").ok().filter(|s| !s.is_empty());
    let env_ca = std::env::var_os("COFFER_CA_CERT").map(PathBuf::from);
    let addr = env_addr.or_else(|| stored.map(|p| p.addr.clone()));
    let Some(addr) = addr else {
        return Err(CliError::usage(format!(
            "not logged in (no profile '{name}'): run `coffer login --addr URL` or set COFFER_ADDR and COFFER_TOKEN"
        )));
    };
    let ca_cert = env_ca.or_else(|| stored.and_then(|p| p.ca_cert.clone()));
    match env_token {
        Some(given) => {
            let parsed = super::login::parse_token(&given)?;
            Ok(Connection {
                addr,
                token: parsed.bearer,
                kind: parsed.kind_hint,
                ca_cert,
            })
        }
        None => match stored {
            Some(profile) => Ok(Connection {
                addr,
                token: profile.token.clone(),
                kind: Some(profile.kind),
                ca_cert,
            }),
            None => Err(CliError::usage(format!(
                "no token: COFFER_ADDR is set but COFFER_TOKEN is not, and there is no profile '{name}'"
            ))),
        },
    }
}
