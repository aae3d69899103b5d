//! `coffer login`, `coffer logout` and `coffer link`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::config::{ConfigFile, Connection, Profile, TokenKind};
use super::target::{self, LinkFile, LINK_FILE};
use super::{CliError, CommandResult};

/// `coffer login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server address, e.g. https://coffer.example.com.
    #[arg(long, env = "COFFER_ADDR")]
    addr: String,
    /// Read the token from the first line of standard input (preferred in scripts).
    #[arg(long, conflicts_with = "token")]
    token_stdin: bool,
    /// The token on the command line (it lands in shell history: prefer the prompt or
    /// --token-stdin).
    #[arg(long)]
    token: Option<String>,
    /// Profile to store it in (several servers or identities).
    #[arg(long, env = "COFFER_PROFILE")]
    profile: Option<String>,
    /// A PEM file of CA certificates to trust for this server (a private CA).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
}

/// `coffer logout`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Profile to forget.
    #[arg(long, env = "COFFER_PROFILE")]
    profile: Option<String>,
}

/// `coffer link`
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// App id.
    #[arg(long, conflicts_with = "app")]
    app_id: Option<String>,
    /// App name (User tokens; a Service token's own app is used when both are absent).
    #[arg(long)]
    app: Option<String>,
    /// Environment name or id.
    #[arg(long)]
    env: String,
    /// Secret path within the environment (default: every path).
    #[arg(long)]
    path: Option<String>,
    /// Profile to act with.
    #[arg(long, env = "COFFER_PROFILE")]
    profile: Option<String>,
}

/// A token as the user gave it, reduced to the bearer part.
#[derive(Debug)]
pub struct ParsedToken {
    /// The 64 hex characters sent after `Bearer <Type>`.
    pub bearer: String,
    /// The kind a `phaseToken`'s prefix announces (`pss_service` / `pss_user`).
    pub kind_hint: Option<TokenKind>,
}

fn is_token_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Accepts a plain token (64 hex) or a `phaseToken`
/// (`pss_service:v2:<token>:<pk>:<share0>:<wrapKey>`, `pss_user:v1:<token>:…`).
pub fn parse_token(given: &str) -> Result<ParsedToken, CliError> {
    let given = given.trim();
    if is_token_hex(given) {
        return Ok(ParsedToken {
            bearer: given.to_ascii_lowercase(),
            kind_hint: None,
        });
    }
    let fields: Vec<&str> = given.split(':').collect();
    let kind_hint = match fields.first() {
        Some(&"pss_service") => Some(TokenKind::Service),
        Some(&"pss_user") => Some(TokenKind::User),
        _ => None,
    };
    let well_formed = kind_hint.is_some()
        && fields.len() == 6
        && fields[1].len() > 1
        && fields[1].starts_with('v')
        && fields[1][1..].bytes().all(|b| b.is_ascii_digit())
        && fields[2..].iter().all(|f| is_token_hex(f));
    if !well_formed {
        // The message never quotes what was given: it may be a token with a typo.
        return Err(CliError::usage(
            "not a Coffer token: expected 64 hex characters or a phaseToken (pss_service:v2:… / pss_user:v1:…)",
        ));
    }
    Ok(ParsedToken {
        bearer: fields[2].to_ascii_lowercase(),
        kind_hint,
    })
}

fn read_token(args: &LoginArgs) -> Result<String, CliError> {
    if let Some(token) = &args.token {
        return Ok(token.clone());
    }
    if args.token_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::failed(format!("reading the token from stdin: {e}")))?;
        return Ok(line);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no terminal to prompt for the token: pass --token-stdin and pipe it in",
        ));
    }
    rpassword::prompt_password("Token: ")
        .map_err(|e| CliError::failed(format!("reading the token: {e}")))
}

/// Runs `coffer login`.
pub fn login(args: LoginArgs) -> CommandResult {
    let given = read_token(&args)?;
    let parsed = parse_token(&given)?;
    let connection = Connection {
        addr: args.addr.trim_end_matches('/').to_string(),
        token: parsed.bearer,
        kind: parsed.kind_hint,
        ca_cert: args.ca_cert.clone(),
    };
    let identity = target::identify(&connection)?;
    let mut config = ConfigFile::load()?;
    let name = config.profile_name(args.profile.as_deref());
    config.profiles.insert(
        name.clone(),
        Profile {
            addr: connection.addr.clone(),
            token: connection.token,
            kind: identity.kind,
            ca_cert: args.ca_cert,
        },
    );
    if config.default_profile.is_none() {
        config.default_profile = Some(name.clone());
    }
    let path = config.save()?;
    eprintln!(
        "Logged in to {} with a {} token (profile '{name}', saved in {}).",
        connection.addr,
        identity.kind.header_word(),
        path.display()
    );
    Ok(None)
}

/// Runs `coffer logout`.
pub fn logout(args: LogoutArgs) -> CommandResult {
    let mut config = ConfigFile::load()?;
    let name = config.profile_name(args.profile.as_deref());
    if config.profiles.remove(&name).is_none() {
        return Err(CliError::usage(format!("no profile '{name}'")));
    }
    if config.default_profile.as_deref() == Some(name.as_str()) {
        config.default_profile = None;
    }
    config.save()?;
    eprintln!("Forgot profile '{name}'.");
    Ok(None)
}

/// Runs `coffer link`.
pub fn link(args: LinkArgs) -> CommandResult {
    let client = target::Client::open(args.profile.as_deref())?;
    let (app_id, app_name) = match (&args.app_id, &args.app) {
        (Some(id), _) => (id.clone(), None),
        (None, Some(name)) => (client.app_id_by_name(name)?, Some(name.clone())),
        // A Service token belongs to one app: that one, when none is named.
        (None, None) => match target::identify(&client.connection)?.app_id {
            Some(id) => (id, None),
            None => return Err(CliError::usage("say which app: --app-id ID or --app NAME")),
        },
    };
    let path = args.path.as_deref().map(target::normalise_path);
    // Reading one secret proves the app, the environment and the token's reach in one go.
    let mut query = vec![
        ("app_id", app_id.as_str()),
        ("env", args.env.as_str()),
        ("limit", "1"),
    ];
    if let Some(path) = &path {
        query.push(("path", path));
    }
    client
        .api
        .call(reqwest::Method::GET, "/v1/secrets/", &query, None)?;
    let link = LinkFile {
        app_id,
        app: app_name,
        env: args.env,
        path,
    };
    let text = serde_json::to_string_pretty(&json!(link)).expect("a link serialises") + "\n";
    std::fs::write(LINK_FILE, text)
        .map_err(|e| CliError::failed(format!("writing {LINK_FILE}: {e}")))?;
    eprintln!(
        "Linked this directory to app {} environment {}.",
        link.app.as_deref().unwrap_or(&link.app_id),
        link.env
    );
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_plain_token_is_its_own_bearer() {
        let parsed = parse_token(&format!("{HEX}\n")).unwrap();
        assert_eq!(parsed.bearer, HEX);
        assert_eq!(parsed.kind_hint, None);
    }

    #[test]
    fn a_phase_token_gives_its_third_field_and_its_kind() {
        let other = "f".repeat(64);
        let service = format!("pss_service:v2:{HEX}:{other}:{other}:{other}");
        let parsed = parse_token(&service).unwrap();
        assert_eq!(parsed.bearer, HEX);
        assert_eq!(parsed.kind_hint, Some(TokenKind::Service));
        let user = format!("pss_user:v1:{HEX}:{other}:{other}:{other}");
        assert_eq!(parse_token(&user).unwrap().kind_hint, Some(TokenKind::User));
    }

    #[test]
    fn malformed_tokens_are_refused_without_being_quoted() {
        let truncated = &HEX[1..];
        let short = format!("pss_service:v2:{HEX}");
        let unknown = format!("pss_other:v1:{HEX}:{HEX}:{HEX}:{HEX}");
        for bad in ["", "abc", truncated, &short, &unknown] {
            let error = parse_token(bad).unwrap_err();
            assert_eq!(error.kind, super::super::FailureKind::Usage);
            assert!(!error.message.contains(truncated), "{}", error.message);
        }
    }
}
