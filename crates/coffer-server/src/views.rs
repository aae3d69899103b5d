//! The JSON shapes of responses (camelCase keys, RFC 3339 UTC timestamps with
//! microseconds).

use coffer_store::{
    App, AuditEntry, ChainPositions, Change, Environment, IssuedToken, PersonalOverride, Secret,
    SecretVersion, Timestamp, Token, VersionActor,
};
use serde::{Serialize, Serializer};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

const RFC3339_MICROS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Formats a store timestamp as `2026-11-25T10:57:21.812009Z`. Digits are written by
/// hand: this runs twice for every secret in a response, and the generic formatter
/// cost about as much as the rest of the secret's JSON.
pub fn format_timestamp(at: Timestamp) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_micros()) * 1000) else {
        return String::new();
    };
    // `time` holds years up to 9999; negative ones go to the generic formatter.
    let Ok(year) = u32::try_from(t.year()) else {
        return t.format(RFC3339_MICROS).unwrap_or_default();
    };
    let fields = [
        (year, 4, '-'),
        (u32::from(u8::from(t.month())), 2, '-'),
        (u32::from(t.day()), 2, 'T'),
        (u32::from(t.hour()), 2, ':'),
        (u32::from(t.minute()), 2, ':'),
        (u32::from(t.second()), 2, '.'),
        (t.microsecond(), 6, 'Z'),
    ];
    let mut out = String::with_capacity(27);
    for (value, width, separator) in fields {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
        out.push(separator);
    }
    out
}

/// Parses an RFC 3339 time into a store timestamp.
pub fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let at = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(Timestamp((at.unix_timestamp_nanos() / 1000) as i64))
}

fn timestamp<S: Serializer>(at: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*at))
}

fn optional_timestamp<S: Serializer>(at: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => timestamp(at, s),
        None => s.serialize_none(),
    }
}

fn hex32<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// A secret as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView<'a> {
    id: Uuid,
    environment: Uuid,
    /// Always `null`: the path carries the location (Phase's folders are paths here).
    #[schema(value_type = Option<String>)]
    folder: Option<()>,
    path: &'a str,
    key: &'a str,
    value: &'a str,
    comment: &'a str,
    tags: &'a [String],
    #[serde(rename = "type")]
    secret_type: &'static str,
    /// The calling User token's own value, shown to that token alone; `null` for
    /// every other token.
    #[serde(rename = "override")]
    #[schema(nullable)]
    override_value: Option<OverrideView<'a>>,
    #[serde(serialize_with = "hex32")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    key_digest: &'a [u8; 32],
    version: u64,
    /// Always `static` (Phase's lifecycle of a secret that is not generated).
    #[schema(value_type = String, example = "static")]
    lifecycle: &'static str,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: &'a Timestamp,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: &'a Timestamp,
}

impl<'a> From<&'a Secret> for SecretView<'a> {
    fn from(s: &'a Secret) -> Self {
        SecretView {
            id: s.id,
            environment: s.env_id,
            folder: None,
            path: &s.path,
            key: &s.key,
            value: &s.value,
            comment: &s.comment,
            tags: &s.tags,
            secret_type: s.secret_type.as_str(),
            override_value: s.personal_override.as_ref().map(OverrideView::from),
            key_digest: &s.key_digest,
            version: s.version,
            lifecycle: "static",
            created_at: &s.created_at,
            updated_at: &s.updated_at,
        }
    }
}

/// A personal override as its owner sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideView<'a> {
    id: Uuid,
    value: &'a str,
    /// An inactive override is kept and shown, but a client does not apply it.
    is_active: bool,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: &'a Timestamp,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: &'a Timestamp,
}

impl<'a> From<&'a PersonalOverride> for OverrideView<'a> {
    fn from(o: &'a PersonalOverride) -> Self {
        OverrideView {
            id: o.id,
            value: &o.value,
            is_active: o.is_active,
            created_at: &o.created_at,
            updated_at: &o.updated_at,
        }
    }
}

/// Secrets as a JSON array.
pub fn secrets(list: &[Secret]) -> Vec<SecretView<'_>> {
    list.iter().map(SecretView::from).collect()
}

/// An environment as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView<'a> {
    id: Uuid,
    name: &'a str,
    env_type: &'static str,
    index: u32,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: &'a Timestamp,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: &'a Timestamp,
}

impl<'a> From<&'a Environment> for EnvironmentView<'a> {
    fn from(e: &'a Environment) -> Self {
        EnvironmentView {
            id: e.id,
            name: &e.name,
            env_type: e.env_type.as_str(),
            index: e.index,
            created_at: &e.created_at,
            updated_at: &e.updated_at,
        }
    }
}

/// An app as the API shows it; `environments` only on create.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView<'a> {
    id: Uuid,
    name: &'a str,
    description: &'a str,
    sse_enabled: bool,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: &'a Timestamp,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: &'a Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    environments: Option<Vec<EnvironmentView<'a>>>,
}

impl<'a> AppView<'a> {
    /// The app alone.
    pub fn new(app: &'a App) -> Self {
        AppView {
            id: app.id,
            name: &app.name,
            description: &app.description,
            sse_enabled: true,
            created_at: &app.created_at,
            updated_at: &app.updated_at,
            environments: None,
        }
    }

    /// The app with its environments.
    pub fn with_environments(app: &'a App, envs: &'a [Environment]) -> Self {
        AppView {
            environments: Some(envs.iter().map(EnvironmentView::from).collect()),
            ..AppView::new(app)
        }
    }
}

/// A token as the API shows it (never the token itself, never its hash).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView<'a> {
    id: Uuid,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    app_id: Option<Uuid>,
    environments: &'a [Uuid],
    permissions: Vec<&'static str>,
    #[serde(serialize_with = "optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: &'a Option<Timestamp>,
    allowed_ips: &'a [String],
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: &'a Timestamp,
    #[serde(serialize_with = "optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: &'a Option<Timestamp>,
    revoked: bool,
    /// The token itself: only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    /// The same token in the Phase clients' form (`pss_service:v2:…`, `pss_user:v1:…`):
    /// only in the create response.
    #[serde(skip_serializing_if = "Option::is_none")]
    phase_token: Option<&'a str>,
}

impl<'a> TokenView<'a> {
    /// A stored token.
    pub fn new(t: &'a Token) -> Self {
        let p = t.permissions;
        let permissions = [
            (p.read, "read"),
            (p.create, "create"),
            (p.update, "update"),
            (p.delete, "delete"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        TokenView {
            id: t.id,
            name: &t.name,
            kind: t.kind.as_str(),
            app_id: t.app_id,
            environments: &t.env_ids,
            permissions,
            expires_at: &t.expires_at,
            allowed_ips: &t.allowed_ips,
            created_at: &t.created_at,
            last_used_at: &t.last_used_at,
            revoked: t.revoked,
            token: None,
            phase_token: None,
        }
    }

    /// A token just created, with its secret in both forms.
    pub fn created(t: &'a Token, issued: &'a IssuedToken) -> Self {
        TokenView {
            token: Some(&issued.token),
            phase_token: Some(&issued.phase_token),
            ..TokenView::new(t)
        }
    }
}

/// The calling token (`GET /v1/tokens/self/`): its record and, for a service token,
/// the app and environments it reaches, by id and name; `scope` is null for a User
/// token, which reaches everything.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnTokenView<'a> {
    #[serde(flatten)]
    token: TokenView<'a>,
    scope: Option<TokenScopeView<'a>>,
}

/// The app and environments a service token reaches.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenScopeView<'a> {
    app: NamedView<'a>,
    environments: Vec<NamedView<'a>>,
}

/// `{"id": ..., "name": ...}`
#[derive(Serialize, ToSchema)]
pub struct NamedView<'a> {
    id: Uuid,
    name: &'a str,
}

impl<'a> OwnTokenView<'a> {
    /// The token with its scope (`None` for a User token).
    pub fn new(token: &'a Token, scope: Option<&'a (App, Vec<Environment>)>) -> Self {
        let scope = scope.map(|(app, environments)| TokenScopeView {
            app: NamedView {
                id: app.id,
                name: &app.name,
            },
            environments: environments
                .iter()
                .map(|env| NamedView {
                    id: env.id,
                    name: &env.name,
                })
                .collect(),
        });
        OwnTokenView {
            token: TokenView::new(token),
            scope,
        }
    }
}

/// An audit entry as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView<'a> {
    /// The node whose audit chain holds the entry.
    node_id: &'a str,
    /// Its place in that chain.
    seq: u64,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    time: &'a Timestamp,
    actor: ActorView,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    action: &'static str,
    app_id: Option<Uuid>,
    env_id: Option<Uuid>,
    secret_ids: &'a [Uuid],
    version: Option<u64>,
    #[serde(serialize_with = "hex32")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    prev_hash: &'a [u8; 32],
    #[serde(serialize_with = "hex32")]
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    hash: &'a [u8; 32],
}

/// A change of the feed: which secrets of which environment, never a value.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeView<'a> {
    /// The node whose audit chain recorded the change.
    node_id: &'a str,
    /// The entry's place in that chain.
    seq: u64,
    #[schema(value_type = String, example = "secret.update")]
    action: &'static str,
    env_id: Uuid,
    secret_ids: &'a [Uuid],
    /// The version written, when one secret was changed.
    version: Option<u64>,
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    time: &'a Timestamp,
}

impl<'a> From<&'a Change> for ChangeView<'a> {
    fn from(c: &'a Change) -> Self {
        ChangeView {
            node_id: &c.node_id,
            seq: c.seq,
            action: c.action.as_str(),
            env_id: c.env_id,
            secret_ids: &c.secret_ids,
            version: c.version,
            time: &c.time,
        }
    }
}

/// A page of the changes feed.
#[derive(Serialize, ToSchema)]
pub struct ChangesPageView<'a> {
    data: Vec<ChangeView<'a>>,
    /// The cursor to pass back as `since`.
    next: String,
}

impl<'a> ChangesPageView<'a> {
    /// The page's changes, and `next` as the cursor it is.
    pub fn new(changes: &'a [Change], next: &ChainPositions) -> Self {
        ChangesPageView {
            data: changes.iter().map(ChangeView::from).collect(),
            next: next.to_string(),
        }
    }
}

/// Who did something: a token (both `null` for a program embedding the store).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ActorView {
    token_id: Option<Uuid>,
    #[schema(value_type = Option<String>, pattern = "^(user|service)$")]
    kind: Option<&'static str>,
}

impl From<VersionActor> for ActorView {
    fn from(actor: VersionActor) -> Self {
        ActorView {
            token_id: actor.token_id,
            kind: actor.kind.map(|k| k.as_str()),
        }
    }
}

impl<'a> From<&'a AuditEntry> for AuditEntryView<'a> {
    fn from(e: &'a AuditEntry) -> Self {
        AuditEntryView {
            node_id: &e.node_id,
            seq: e.seq,
            time: &e.time,
            actor: ActorView {
                token_id: e.actor.token_id,
                kind: e.actor.kind.map(|k| k.as_str()),
            },
            ip: e.actor.ip.as_deref(),
            user_agent: e.actor.user_agent.as_deref(),
            action: e.action.as_str(),
            app_id: e.app_id,
            env_id: e.env_id,
            secret_ids: &e.secret_ids,
            version: e.version,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_the_generic_formatter_writes_them() {
        let generic = |at: Timestamp| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_micros()) * 1000)
                .unwrap()
                .format(RFC3339_MICROS)
                .unwrap()
        };
        let mut samples = vec![
            0,
            1,
            -1,
            951_782_400_000_000,     // 2000-02-29
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            -62_167_219_200_000_000, // 0000-01-01
            -62_167_219_200_000_001, // the year before: the generic formatter
            1_795_604_241_812_009,
        ];
        // A spread of instants over five centuries, microseconds included.
        let mut at: i64 = -2_208_988_800_000_000;
        while at < 13_000_000_000_000_000 {
            samples.push(at);
            at += 7_777_777_777_777;
        }
        for micros in samples {
            let at = Timestamp(micros);
            assert_eq!(format_timestamp(at), generic(at), "{micros}");
        }
    }

    #[test]
    fn timestamps_have_microseconds() {
        let at = Timestamp(1_795_604_241_812_009);
        assert_eq!(format_timestamp(at), "2026-11-25T10:57:21.812009Z");
        assert_eq!(parse_timestamp("2026-11-25T10:57:21.812009Z"), Some(at));
    }
}

/// A version of a secret as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView<'a> {
    version: u64,
    /// `create`, `update` or `delete` (a deletion carries the content it deleted).
    #[schema(value_type = String, pattern = "^(create|update|delete)$")]
    action: &'static str,
    key: &'a str,
    path: &'a str,
    value: &'a str,
    comment: &'a str,
    tags: &'a [String],
    #[serde(rename = "type")]
    #[schema(value_type = String, pattern = "^(secret|sealed|config)$")]
    secret_type: &'static str,
    /// The token that wrote the version; `null` for versions written before versions
    /// named their writer.
    #[schema(nullable)]
    actor: Option<ActorView>,
    /// When the version was written.
    #[serde(serialize_with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    created_at: &'a Timestamp,
}

impl<'a> From<&'a SecretVersion> for VersionView<'a> {
    fn from(v: &'a SecretVersion) -> Self {
        VersionView {
            version: v.version,
            action: v.action.as_str(),
            key: &v.secret.key,
            path: &v.secret.path,
            value: &v.secret.value,
            comment: &v.secret.comment,
            tags: &v.secret.tags,
            secret_type: v.secret.secret_type.as_str(),
            actor: v.actor.map(ActorView::from),
            created_at: &v.at,
        }
    }
}

/// `{"data": [Version]}`, newest first.
#[derive(Serialize, ToSchema)]
pub struct VersionList<'a> {
    /// The versions, newest first.
    pub data: Vec<VersionView<'a>>,
}

impl<'a> VersionList<'a> {
    /// A history as the store gives it (oldest first), newest first.
    pub fn newest_first(history: &'a [SecretVersion]) -> Self {
        VersionList {
            data: history.iter().rev().map(VersionView::from).collect(),
        }
    }
}

/// `{"data": [App]}`
#[derive(Serialize, ToSchema)]
pub struct AppList<'a> {
    /// The apps.
    pub data: Vec<AppView<'a>>,
}

/// `{"data": [Env]}`
#[derive(Serialize, ToSchema)]
pub struct EnvironmentList<'a> {
    /// The environments, by index.
    pub data: Vec<EnvironmentView<'a>>,
}

/// `{"data": [Token]}`
#[derive(Serialize, ToSchema)]
pub struct TokenList<'a> {
    /// The tokens (never the token itself).
    pub data: Vec<TokenView<'a>>,
}

/// `{"status": "ok", "version": ...}`
#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `ok`, `degraded` (the disk is full: reads answer, writes do not) or `unavailable`.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
}
