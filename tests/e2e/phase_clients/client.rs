//! A Phase client written from PHASE-CLIENTS.md, with the primitives the official
//! clients use: it parses a `phaseToken`, rebuilds its key pair, unwraps environment
//! keys and opens what `/service/secrets/` answers.

use coffer_store::phase_crypto::{self, decode_key, KxKeyPair};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::common::{Api, Server};

/// A token as a Phase client holds it.
pub struct PhaseToken {
    header_type: &'static str,
    pub bearer: String,
    public: [u8; 32],
    share0: [u8; 32],
    wrap_key: [u8; 32],
}

impl PhaseToken {
    /// Splits a token on `:` as the clients do, and picks the type word as the Python
    /// clients do (`pss_service:v2` → `ServiceAccount`, `pss_user` → `User`).
    pub fn parse(text: &str) -> PhaseToken {
        let fields: Vec<&str> = text.split(':').collect();
        assert_eq!(fields.len(), 6, "{text}");
        let header_type = match (fields[0], fields[1]) {
            ("pss_service", "v2") => "ServiceAccount",
            ("pss_user", "v1") => "User",
            other => panic!("unexpected token prefix {other:?}"),
        };
        PhaseToken {
            header_type,
            bearer: fields[2].to_owned(),
            public: decode_key(fields[3]).unwrap(),
            share0: decode_key(fields[4]).unwrap(),
            wrap_key: decode_key(fields[5]).unwrap(),
        }
    }

    pub fn client(&self, server: &Server) -> Api {
        server.client(Some(format!("Bearer {} {}", self.header_type, self.bearer)))
    }

    /// Rebuilds the token's key pair from share0 and the wrapped share the server keeps.
    pub fn key_pair(&self, wrapped_share: &str) -> KxKeyPair {
        let share1 = phase_crypto::unwrap_share(wrapped_share, &self.wrap_key).unwrap();
        let secret = phase_crypto::join_shares(&self.share0, &share1);
        let pair = KxKeyPair::from_secret(Zeroizing::new(*secret));
        assert_eq!(
            pair.public, self.public,
            "the shares join into field 4's key"
        );
        pair
    }
}

pub fn issue(admin: &Api, body: Value) -> (Value, PhaseToken) {
    let (status, created) = admin.post("/v1/tokens/", body);
    assert_eq!(status.as_u16(), 201, "{created}");
    let phase = PhaseToken::parse(created["phaseToken"].as_str().expect("phaseToken"));
    assert_eq!(
        phase.bearer,
        created["token"].as_str().unwrap(),
        "one secret, two forms"
    );
    (created, phase)
}

pub fn identity(api: &Api) -> Value {
    let (status, body) = api.get("/service/secrets/tokens/");
    assert_eq!(status.as_u16(), 200, "{body}");
    body
}

/// Opens an environment key entry as a client does: unwraps seed and salt with the
/// token's key pair and checks the seed's key pair against `identity_key`.
pub fn open_environment_key(entry: &Value, token_keys: &KxKeyPair) -> (String, String) {
    let seed = phase_crypto::open_envelope(entry["wrapped_seed"].as_str().unwrap(), token_keys)
        .expect("the seed opens with the token's key");
    let salt = phase_crypto::open_envelope(entry["wrapped_salt"].as_str().unwrap(), token_keys)
        .expect("the salt opens with the token's key");
    let pair = KxKeyPair::from_seed(&decode_key(&seed).unwrap());
    assert_eq!(entry["identity_key"], hex::encode(pair.public));
    assert_eq!(salt.len(), 64);
    (seed.to_string(), salt.to_string())
}

/// What a client holds for one environment after `GET /service/secrets/tokens/`.
pub struct EnvironmentSession {
    pub env_id: String,
    pair: KxKeyPair,
    salt: String,
}

impl EnvironmentSession {
    /// Fetches the identity document and unwraps the keys of the environment `name`
    /// of app `app_id`, as the CLI does.
    pub fn open(api: &Api, token: &PhaseToken, app_id: &str, name: &str) -> EnvironmentSession {
        let doc = identity(api);
        let keys = token.key_pair(doc["wrapped_key_share"].as_str().unwrap());
        let app = doc["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == app_id)
            .expect("the app is in the token's identity");
        let entry = app["environment_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["environment"]["name"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(name)
            })
            .expect("the environment is in the token's identity");
        let (seed, salt) = open_environment_key(entry, &keys);
        EnvironmentSession {
            env_id: entry["environment"]["id"].as_str().unwrap().to_owned(),
            pair: KxKeyPair::from_seed(&decode_key(&seed).unwrap()),
            salt,
        }
    }

    /// Opens a `ph:v1` text sealed to this environment.
    pub fn open_text(&self, sealed: &Value) -> String {
        let text = sealed.as_str().expect("a sealed text");
        phase_crypto::open_envelope(text, &self.pair)
            .expect("opens with the environment's key")
            .to_string()
    }

    /// Seals a text to this environment, as a client does before sending it.
    pub fn seal(&self, text: &str) -> String {
        phase_crypto::seal_to(text, &self.pair.public).unwrap()
    }

    /// The digest a client sends as `KeyDigest` for `key`.
    pub fn digest(&self, key: &str) -> String {
        phase_crypto::key_digest(key, &self.salt)
    }
}
