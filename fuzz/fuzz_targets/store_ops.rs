//! The store against a model: the fuzz input is decoded into a short sequence of
//! create/update/delete batches over two environments, a few keys (in both cases) and
//! a few spellings of the same paths. After every operation the store must agree with
//! the model on success or failure, hold at most one live secret per
//! (environment, path, key), and list exactly the secrets the model holds.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use coffer_store::{
    normalize_key, normalize_path, Actor, NewApp, NewSecret, SecretFilter, SecretUpdate, Store,
    StoreError,
};
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

const KEYS: [&str; 8] = ["A", "a", "B", "_x", "DB_URL", "db_url", "1BAD", "bad key"];
const PATHS: [&str; 8] = [
    "",
    "/",
    "//",
    "/app",
    "app/",
    "//app//",
    "/app/sub",
    "/app/../x",
];
const MAX_OPS: usize = 24;

/// Live secrets of one environment: id → (path, KEY).
type EnvModel = BTreeMap<Uuid, (String, String)>;

fn slot(byte: u8) -> Result<(String, String), ()> {
    let key = normalize_key(KEYS[usize::from(byte) % KEYS.len()]).map_err(|_| ())?;
    let path = normalize_path(PATHS[usize::from(byte / 8) % PATHS.len()]).map_err(|_| ())?;
    Ok((path, key))
}

fn occupied(model: &EnvModel, slot: &(String, String), except: Option<Uuid>) -> bool {
    model.iter().any(|(id, s)| s == slot && Some(*id) != except)
}

/// A create batch: every entry valid and free (also within the batch), or nothing.
fn create(store: &Store, me: &Actor, env: Uuid, model: &mut EnvModel, bytes: &[u8]) {
    let batch: Vec<NewSecret> = bytes
        .iter()
        .map(|b| NewSecret {
            key: KEYS[usize::from(*b) % KEYS.len()].to_owned(),
            value: format!("v{b}"),
            path: PATHS[usize::from(*b / 8) % PATHS.len()].to_owned(),
            ..Default::default()
        })
        .collect();
    let slots: Result<Vec<_>, ()> = bytes.iter().map(|b| slot(*b)).collect();
    let result = store.create_secrets(me, env, batch);
    match slots {
        Err(()) => {
            let err = result.expect_err("an invalid key or path is refused");
            assert!(!err.is_internal(), "{err}");
        }
        Ok(slots) => {
            let distinct: BTreeSet<_> = slots.iter().collect();
            let free =
                distinct.len() == slots.len() && slots.iter().all(|s| !occupied(model, s, None));
            if free {
                let created = result.unwrap_or_else(|e| panic!("create of free slots: {e}"));
                assert_eq!(created.len(), slots.len());
                for (secret, slot) in created.iter().zip(slots) {
                    assert_eq!((&secret.path, &secret.key), (&slot.0, &slot.1));
                    assert_eq!(secret.version, 1);
                    model.insert(secret.id, slot);
                }
            } else {
                assert!(
                    matches!(result, Err(StoreError::DuplicateSecret)),
                    "a taken slot must be a duplicate: {result:?}"
                );
            }
        }
    }
}

/// An update batch of one or two entries, applied in order, all or nothing.
fn update(store: &Store, me: &Actor, env: Uuid, model: &mut EnvModel, bytes: &[u8; 3], two: bool) {
    let ids: Vec<Uuid> = model.keys().copied().collect();
    let pick = |b: u8| {
        if ids.is_empty() || b == 255 {
            Uuid::from_u128(u128::from(b) + 1)
        } else {
            ids[usize::from(b) % ids.len()]
        }
    };
    let entries: Vec<(Uuid, u8)> = if two {
        vec![
            (pick(bytes[0]), bytes[1]),
            (pick(bytes[2]), bytes[1] ^ 0x5a),
        ]
    } else {
        vec![(pick(bytes[0]), bytes[1])]
    };
    let batch: Vec<SecretUpdate> = entries
        .iter()
        .map(|(id, b)| SecretUpdate {
            id: *id,
            key: (b & 1 == 1).then(|| KEYS[usize::from(*b >> 1) % KEYS.len()].to_owned()),
            path: (b & 0x80 == 0x80).then(|| PATHS[usize::from(*b >> 4) % PATHS.len()].to_owned()),
            value: Some(format!("u{b}")),
            ..Default::default()
        })
        .collect();
    // The expected outcome: every entry is validated first; then the entries apply in
    // order to a copy of the model.
    let mut next = model.clone();
    let mut expected: Result<(), &'static str> = Ok(());
    let valid = batch.iter().all(|u| {
        u.key.as_deref().map(normalize_key).transpose().is_ok()
            && u.path.as_deref().map(normalize_path).transpose().is_ok()
    });
    if !valid {
        expected = Err("invalid");
    }
    for update in batch.iter().filter(|_| valid) {
        let key = update
            .key
            .as_deref()
            .map(normalize_key)
            .transpose()
            .ok()
            .flatten();
        let path = update
            .path
            .as_deref()
            .map(normalize_path)
            .transpose()
            .ok()
            .flatten();
        let Some(current) = next.get(&update.id).cloned() else {
            expected = Err("not found");
            break;
        };
        let target = (path.unwrap_or(current.0), key.unwrap_or(current.1));
        if occupied(&next, &target, Some(update.id)) {
            expected = Err("duplicate");
            break;
        }
        next.insert(update.id, target);
    }
    let result = store.update_secrets(me, env, batch);
    match (expected, result) {
        (Ok(()), Ok(updated)) => {
            assert_eq!(updated.len(), entries.len());
            // An id named twice answers each step; the last one is where it ends up.
            let last: BTreeMap<Uuid, (String, String)> = updated
                .iter()
                .map(|s| (s.id, (s.path.clone(), s.key.clone())))
                .collect();
            for (id, slot) in &last {
                assert_eq!(Some(slot), next.get(id), "update of {id}");
            }
            *model = next;
        }
        (Err("invalid"), Err(e)) => assert!(!e.is_internal(), "{e}"),
        (Err("not found"), Err(StoreError::SecretNotFound(_))) => {}
        (Err("duplicate"), Err(StoreError::DuplicateSecret)) => {}
        (expected, result) => panic!("update: expected {expected:?}, got {result:?}"),
    }
}

/// A delete batch: every id live, or nothing is deleted.
fn delete(store: &Store, me: &Actor, env: Uuid, model: &mut EnvModel, bytes: &[u8; 3]) {
    let ids: Vec<Uuid> = model.keys().copied().collect();
    let mut doomed = Vec::new();
    for b in bytes.iter().take(1 + usize::from(bytes[2] % 3)) {
        if ids.is_empty() || *b >= 240 {
            doomed.push(Uuid::from_u128(u128::from(*b) + 1));
        } else {
            doomed.push(ids[usize::from(*b) % ids.len()]);
        }
    }
    let all_live = doomed.iter().all(|id| model.contains_key(id));
    let result = store.delete_secrets(me, env, &doomed);
    if all_live {
        let distinct: BTreeSet<_> = doomed.iter().collect();
        let n = result.unwrap_or_else(|e| panic!("delete of live secrets: {e}"));
        assert_eq!(n, distinct.len());
        for id in distinct {
            model.remove(id);
        }
    } else {
        assert!(
            matches!(result, Err(StoreError::SecretsNotFound(_))),
            "{result:?}"
        );
    }
}

/// The invariant: one live secret per (path, key), and exactly the model's secrets.
fn check(store: &Store, env: Uuid, model: &EnvModel) {
    let listed = store
        .list_secrets(env, &SecretFilter::default())
        .expect("listing works");
    let slots: BTreeSet<(&str, &str)> = listed
        .iter()
        .map(|s| (s.path.as_str(), s.key.as_str()))
        .collect();
    assert_eq!(slots.len(), listed.len(), "two live secrets share a slot");
    let seen: EnvModel = listed
        .iter()
        .map(|s| (s.id, (s.path.clone(), s.key.clone())))
        .collect();
    assert_eq!(&seen, model, "the store lists what the model holds");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let store = Store::open_temporary().expect("temporary store");
    let me = Actor::embedded();
    let (_, envs) = store
        .create_app(
            &me,
            NewApp {
                name: "fuzz".into(),
                ..Default::default()
            },
        )
        .expect("app");
    let env_ids = [envs[0].id, envs[1].id];
    let mut models = [EnvModel::new(), EnvModel::new()];
    for op in data.chunks_exact(4).take(MAX_OPS) {
        let e = usize::from(op[0] >> 7);
        let (env, model) = (env_ids[e], &mut models[e]);
        let rest = [op[1], op[2], op[3]];
        match op[0] % 4 {
            0 | 1 => {
                let n = 1 + usize::from((op[0] >> 2) % 3);
                create(&store, &me, env, model, &rest[..n]);
            }
            2 => update(&store, &me, env, model, &rest, op[0] & 0x10 != 0),
            _ => delete(&store, &me, env, model, &rest),
        }
        for (env, model) in env_ids.iter().zip(&models) {
            check(&store, *env, model);
        }
    }
});
