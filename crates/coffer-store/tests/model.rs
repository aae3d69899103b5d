//! Model-based test: random sequences of batch creates, updates (renames, moves, type
//! changes, check-and-set), upserts, rollbacks (of live and deleted secrets, to any
//! version, with check-and-set) and deletes, with colliding keys and paths over two
//! environments, and reopens of the store between steps. Each step runs against the
//! real store and against a plain in-memory model of the rules in API.md; both must
//! give the same outcome (which error, or the same records) and the same listings.
//!
//! The model applies a batch entry by entry on a working copy and keeps it only if
//! every entry passes, which is what "atomic batches" and "a PUT's rename/move lands on
//! an existing key" mean for a batch.

mod common;

use std::collections::BTreeMap;

use coffer_store::{
    NewSecret, OverrideChange, Rollback, Secret, SecretFilter, SecretType, SecretUpdate, Store,
    StoreConfig, StoreError, UpsertSecret, VersionAction,
};
use common::me;
use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;

// --- the vocabulary of generated operations --------------------------------------------

/// Key spellings: a few names, in either case, so that batches collide.
const KEYS: [&str; 4] = ["A", "B", "db_url", "Db_Url"];
/// Path spellings with their normal form (`None`: refused).
const PATHS: [(&str, Option<&str>); 8] = [
    ("", Some("/")),
    ("/", Some("/")),
    ("a", Some("/a")),
    ("/a/", Some("/a")),
    ("//a//b", Some("/a/b")),
    ("a/b/", Some("/a/b")),
    ("/b", Some("/b")),
    ("/a/../b", None),
];
const TAGS: [&str; 2] = ["x", "y"];
const TYPES: [SecretType; 3] = [SecretType::Secret, SecretType::Sealed, SecretType::Config];

#[derive(Clone, Debug)]
enum KeySpec {
    Good(usize),
    Malformed,
    Blank,
}

impl KeySpec {
    fn spelled(&self) -> &'static str {
        match self {
            KeySpec::Good(i) => KEYS[*i],
            KeySpec::Malformed => "BAD\nKEY",
            KeySpec::Blank => " ",
        }
    }
}

#[derive(Clone, Debug)]
struct NewSpec {
    key: KeySpec,
    path: usize,
    value: u8,
    tags: Vec<usize>,
    ty: usize,
}

/// Which secret an update or delete names: one the run has seen (live or not, in either
/// environment), or one that never existed.
#[derive(Clone, Debug)]
enum Target {
    Known(Index),
    Unknown,
}

#[derive(Clone, Debug)]
enum CasSpec {
    Current,
    Off(u64),
}

#[derive(Clone, Debug)]
struct UpdateSpec {
    target: Target,
    key: Option<KeySpec>,
    path: Option<usize>,
    value: Option<u8>,
    ty: Option<usize>,
    cas: Option<CasSpec>,
}

/// An upsert entry: tags and type left out keep the stored ones.
#[derive(Clone, Debug)]
struct UpsertSpec {
    key: KeySpec,
    path: usize,
    value: u8,
    tags: Option<Vec<usize>>,
    ty: Option<usize>,
}

/// The version a rollback asks for: one of the secret's (by position in its history,
/// the deletion markers included), or one it does not have.
#[derive(Clone, Debug)]
enum VersionSpec {
    Existing(Index),
    Zero,
    PastCurrent(u64),
}

#[derive(Clone, Debug)]
struct RollbackSpec {
    target: Target,
    version: VersionSpec,
    cas: Option<CasSpec>,
    may_restore: bool,
}

#[derive(Clone, Debug)]
struct FilterSpec {
    path: Option<usize>,
    key: Option<usize>,
    tags: Vec<usize>,
}

#[derive(Clone, Debug)]
enum Op {
    Create(usize, Vec<NewSpec>),
    Update(usize, Vec<UpdateSpec>),
    Delete(usize, Vec<Target>),
    Upsert(usize, Vec<UpsertSpec>),
    Rollback(usize, RollbackSpec),
    List(usize, FilterSpec),
    Reopen,
}

fn key_spec() -> impl Strategy<Value = KeySpec> {
    prop_oneof![
        12 => (0..KEYS.len()).prop_map(KeySpec::Good),
        1 => Just(KeySpec::Malformed),
        1 => Just(KeySpec::Blank),
    ]
}

fn path_spec() -> impl Strategy<Value = usize> {
    // The refused path (the last) is rarer than the others.
    prop_oneof![12 => 0..PATHS.len() - 1, 1 => Just(PATHS.len() - 1)]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![9 => any::<Index>().prop_map(Target::Known), 1 => Just(Target::Unknown)]
}

fn new_spec() -> impl Strategy<Value = NewSpec> {
    (
        key_spec(),
        path_spec(),
        any::<u8>(),
        prop::collection::vec(0..TAGS.len(), 0..3),
        0..TYPES.len(),
    )
        .prop_map(|(key, path, value, tags, ty)| NewSpec {
            key,
            path,
            value,
            tags,
            ty,
        })
}

fn update_spec() -> impl Strategy<Value = UpdateSpec> {
    (
        target(),
        prop::option::weighted(0.3, key_spec()),
        prop::option::weighted(0.3, path_spec()),
        prop::option::weighted(0.6, any::<u8>()),
        prop::option::weighted(0.2, 0..TYPES.len()),
        prop::option::weighted(
            0.3,
            prop_oneof![3 => Just(CasSpec::Current), 1 => (1..3u64).prop_map(CasSpec::Off)],
        ),
    )
        .prop_map(|(target, key, path, value, ty, cas)| UpdateSpec {
            target,
            key,
            path,
            value,
            ty,
            cas,
        })
}

fn upsert_spec() -> impl Strategy<Value = UpsertSpec> {
    (
        key_spec(),
        path_spec(),
        any::<u8>(),
        prop::option::weighted(0.3, prop::collection::vec(0..TAGS.len(), 0..3)),
        prop::option::weighted(0.3, 0..TYPES.len()),
    )
        .prop_map(|(key, path, value, tags, ty)| UpsertSpec {
            key,
            path,
            value,
            tags,
            ty,
        })
}

fn rollback_spec() -> impl Strategy<Value = RollbackSpec> {
    (
        target(),
        prop_oneof![
            8 => any::<Index>().prop_map(VersionSpec::Existing),
            1 => Just(VersionSpec::Zero),
            1 => (1..3u64).prop_map(VersionSpec::PastCurrent),
        ],
        prop::option::weighted(
            0.3,
            prop_oneof![3 => Just(CasSpec::Current), 1 => (1..3u64).prop_map(CasSpec::Off)],
        ),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(target, version, cas, may_restore)| RollbackSpec {
            target,
            version,
            cas,
            may_restore,
        })
}

fn filter_spec() -> impl Strategy<Value = FilterSpec> {
    (
        prop::option::of(0..PATHS.len() - 1),
        prop::option::of(0..KEYS.len()),
        prop::collection::vec(0..TAGS.len(), 0..2),
    )
        .prop_map(|(path, key, tags)| FilterSpec { path, key, tags })
}

fn op() -> impl Strategy<Value = Op> {
    let env = 0..2usize;
    prop_oneof![
        5 => (env.clone(), prop::collection::vec(new_spec(), 0..5)).prop_map(|(e, b)| Op::Create(e, b)),
        5 => (env.clone(), prop::collection::vec(update_spec(), 0..4)).prop_map(|(e, b)| Op::Update(e, b)),
        2 => (env.clone(), prop::collection::vec(target(), 0..4)).prop_map(|(e, b)| Op::Delete(e, b)),
        4 => (env.clone(), prop::collection::vec(upsert_spec(), 0..4)).prop_map(|(e, b)| Op::Upsert(e, b)),
        4 => (env.clone(), rollback_spec()).prop_map(|(e, r)| Op::Rollback(e, r)),
        2 => (env, filter_spec()).prop_map(|(e, f)| Op::List(e, f)),
        1 => Just(Op::Reopen),
    ]
}

// --- the model -------------------------------------------------------------------------

/// A live secret as the model keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    env: usize,
    path: String,
    key: String,
    value: String,
    tags: Vec<String>,
    ty: SecretType,
    version: u64,
}

/// What a step returned, comparable between model and store.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    EmptyBatch,
    MissingKey,
    InvalidKey(String),
    InvalidPath(String),
    Duplicate,
    NotFound(Uuid),
    SomeNotFound(Vec<Uuid>),
    VersionConflict {
        expected: u64,
        current: u64,
    },
    SealedCannotBeUnsealed,
    VersionNotFound {
        id: Uuid,
        version: u64,
    },
    RestoreNotAllowed(Uuid),
    /// Anything else the store said; the model never says this.
    Unexpected(String),
}

impl From<StoreError> for Outcome {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmptyBatch => Outcome::EmptyBatch,
            StoreError::MissingKey => Outcome::MissingKey,
            StoreError::InvalidKey(k) => Outcome::InvalidKey(k),
            StoreError::InvalidPath(p) => Outcome::InvalidPath(p),
            StoreError::DuplicateSecret => Outcome::Duplicate,
            StoreError::SecretNotFound(id) => Outcome::NotFound(id),
            StoreError::SecretsNotFound(ids) => Outcome::SomeNotFound(ids),
            StoreError::VersionConflict { expected, current } => {
                Outcome::VersionConflict { expected, current }
            }
            StoreError::SealedCannotBeUnsealed => Outcome::SealedCannotBeUnsealed,
            StoreError::VersionNotFound { id, version } => Outcome::VersionNotFound { id, version },
            StoreError::RestoreNotAllowed(id) => Outcome::RestoreNotAllowed(id),
            other => Outcome::Unexpected(format!("{other:?}")),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    live: BTreeMap<Uuid, Rec>,
    /// Every version of every secret ever created, with what it did and its content (a
    /// deletion's is what it deleted).
    history: BTreeMap<Uuid, Vec<(u64, VersionAction, Rec)>>,
    /// The environment of every secret ever created.
    env_of: BTreeMap<Uuid, usize>,
}

fn model_key(spec: &KeySpec) -> Result<String, Outcome> {
    match spec {
        KeySpec::Good(i) => Ok(KEYS[*i].to_ascii_uppercase()),
        KeySpec::Malformed => Err(Outcome::InvalidKey(spec.spelled().into())),
        KeySpec::Blank => Err(Outcome::MissingKey),
    }
}

fn model_path(i: usize) -> Result<String, Outcome> {
    let (given, normal) = PATHS[i];
    normal
        .map(str::to_owned)
        .ok_or_else(|| Outcome::InvalidPath(given.into()))
}

fn model_tags(tags: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.iter().any(|o| o == TAGS[*t]) {
            out.push(TAGS[*t].into());
        }
    }
    out
}

impl Model {
    fn holder(&self, env: usize, path: &str, key: &str) -> Option<Uuid> {
        self.live
            .iter()
            .find(|(_, r)| r.env == env && r.path == path && r.key == key)
            .map(|(id, _)| *id)
    }

    fn listing(&self, env: usize, filter: &FilterSpec) -> Vec<(Uuid, Rec)> {
        // An empty path filter lists every path, as Phase does.
        let path = filter
            .path
            .filter(|p| !PATHS[*p].0.is_empty())
            .map(|p| model_path(p).unwrap());
        let key = filter.key.map(|k| KEYS[k].to_ascii_uppercase());
        let tags = model_tags(&filter.tags);
        let mut out: Vec<(Uuid, Rec)> = self
            .live
            .iter()
            .filter(|(_, r)| r.env == env)
            .filter(|(_, r)| path.as_ref().is_none_or(|p| *p == r.path))
            .filter(|(_, r)| key.as_ref().is_none_or(|k| *k == r.key))
            .filter(|(_, r)| tags.is_empty() || r.tags.iter().any(|t| tags.contains(t)))
            .map(|(id, r)| (*id, r.clone()))
            .collect();
        out.sort_by(|a, b| (&a.1.path, &a.1.key).cmp(&(&b.1.path, &b.1.key)));
        out
    }

    /// Checks a create batch; on success returns the records in batch order.
    fn create(&self, env: usize, batch: &[NewSpec]) -> Result<Vec<Rec>, Outcome> {
        if batch.is_empty() {
            return Err(Outcome::EmptyBatch);
        }
        let mut recs = Vec::new();
        for spec in batch {
            recs.push(Rec {
                env,
                key: model_key(&spec.key)?,
                path: model_path(spec.path)?,
                value: format!("c{}", spec.value),
                tags: model_tags(&spec.tags),
                ty: TYPES[spec.ty],
                version: 1,
            });
        }
        for (i, rec) in recs.iter().enumerate() {
            let earlier = recs[..i]
                .iter()
                .any(|r| r.path == rec.path && r.key == rec.key);
            if earlier || self.holder(env, &rec.path, &rec.key).is_some() {
                return Err(Outcome::Duplicate);
            }
        }
        Ok(recs)
    }

    fn commit_create(&mut self, created: Vec<(Uuid, Rec)>) {
        for (id, rec) in created {
            self.env_of.insert(id, rec.env);
            self.history
                .entry(id)
                .or_default()
                .push((1, VersionAction::Create, rec.clone()));
            self.live.insert(id, rec);
        }
    }

    /// Applies an update batch to a copy; returns the copy and the updated records.
    fn update(
        &self,
        env: usize,
        batch: &[(Uuid, UpdateSpec, Option<u64>)],
    ) -> Result<(Model, Vec<(Uuid, Rec)>), Outcome> {
        if batch.is_empty() {
            return Err(Outcome::EmptyBatch);
        }
        let mut checked = Vec::new();
        for (id, spec, cas) in batch {
            let key = spec.key.as_ref().map(model_key).transpose()?;
            let path = spec.path.map(model_path).transpose()?;
            checked.push((*id, spec, *cas, key, path));
        }
        let mut next = self.clone();
        let mut updated = Vec::new();
        for (id, spec, cas, key, path) in checked {
            let Some(old) = next.live.get(&id).filter(|r| r.env == env).cloned() else {
                return Err(Outcome::NotFound(id));
            };
            if let Some(expected) = cas {
                if expected != old.version {
                    return Err(Outcome::VersionConflict {
                        expected,
                        current: old.version,
                    });
                }
            }
            let ty = spec.ty.map_or(old.ty, |t| TYPES[t]);
            if old.ty == SecretType::Sealed && ty != SecretType::Sealed {
                return Err(Outcome::SealedCannotBeUnsealed);
            }
            let mut rec = old.clone();
            rec.key = key.unwrap_or(rec.key);
            rec.path = path.unwrap_or(rec.path);
            if (&rec.path, &rec.key) != (&old.path, &old.key)
                && next.holder(env, &rec.path, &rec.key).is_some()
            {
                return Err(Outcome::Duplicate);
            }
            if let Some(v) = spec.value {
                rec.value = format!("u{v}");
            }
            rec.ty = ty;
            rec.version += 1;
            next.history.entry(id).or_default().push((
                rec.version,
                VersionAction::Update,
                rec.clone(),
            ));
            next.live.insert(id, rec.clone());
            updated.push((id, rec));
        }
        Ok((next, updated))
    }

    /// Applies an upsert batch to a copy; returns the copy and, in batch order, the
    /// records written with the id of each updated secret (creates get theirs from the
    /// store).
    #[allow(clippy::type_complexity)]
    fn upsert(
        &self,
        env: usize,
        batch: &[UpsertSpec],
    ) -> Result<(Model, Vec<(Option<Uuid>, Rec)>), Outcome> {
        if batch.is_empty() {
            return Err(Outcome::EmptyBatch);
        }
        let mut places: Vec<(String, String)> = Vec::new();
        for spec in batch {
            // The store checks the key first.
            let key = model_key(&spec.key)?;
            let place = (model_path(spec.path)?, key);
            if places.contains(&place) {
                return Err(Outcome::Duplicate);
            }
            places.push(place);
        }
        let mut next = self.clone();
        let mut written = Vec::new();
        for (spec, (path, key)) in batch.iter().zip(places) {
            let value = format!("p{}", spec.value);
            match next.holder(env, &path, &key) {
                None => written.push((
                    None,
                    Rec {
                        env,
                        path,
                        key,
                        value,
                        tags: spec.tags.as_deref().map(model_tags).unwrap_or_default(),
                        ty: spec.ty.map_or(SecretType::Secret, |t| TYPES[t]),
                        version: 1,
                    },
                )),
                Some(id) => {
                    let old = next.live[&id].clone();
                    let ty = spec.ty.map_or(old.ty, |t| TYPES[t]);
                    if old.ty == SecretType::Sealed && ty != SecretType::Sealed {
                        return Err(Outcome::SealedCannotBeUnsealed);
                    }
                    let rec = Rec {
                        value,
                        tags: spec.tags.as_deref().map_or(old.tags.clone(), model_tags),
                        ty,
                        version: old.version + 1,
                        ..old
                    };
                    next.history.entry(id).or_default().push((
                        rec.version,
                        VersionAction::Update,
                        rec.clone(),
                    ));
                    next.live.insert(id, rec.clone());
                    written.push((Some(id), rec));
                }
            }
        }
        Ok((next, written))
    }

    /// Checks a rollback; on success returns the record written and whether it was a
    /// restore.
    fn rollback(
        &self,
        env: usize,
        id: Uuid,
        version: u64,
        cas: Option<u64>,
        may_restore: bool,
    ) -> Result<(Rec, bool), Outcome> {
        let Some(history) = self
            .history
            .get(&id)
            .filter(|_| self.env_of.get(&id) == Some(&env))
        else {
            return Err(Outcome::NotFound(id));
        };
        let (current, action, latest) = history.last().cloned().expect("a version");
        let deleted = action == VersionAction::Delete;
        if deleted && !may_restore {
            return Err(Outcome::RestoreNotAllowed(id));
        }
        if let Some(expected) = cas {
            if expected != current {
                return Err(Outcome::VersionConflict { expected, current });
            }
        }
        let Some((_, _, content)) = history.iter().find(|(v, _, _)| *v == version) else {
            return Err(Outcome::VersionNotFound { id, version });
        };
        let ty = match latest.ty {
            SecretType::Sealed => SecretType::Sealed,
            _ => content.ty,
        };
        let rec = Rec {
            ty,
            version: current + 1,
            ..content.clone()
        };
        if self
            .holder(env, &rec.path, &rec.key)
            .is_some_and(|holder| holder != id)
        {
            return Err(Outcome::Duplicate);
        }
        Ok((rec, deleted))
    }

    fn commit_rollback(&mut self, id: Uuid, rec: Rec, restored: bool) {
        let action = match restored {
            true => VersionAction::Create,
            false => VersionAction::Update,
        };
        self.history
            .entry(id)
            .or_default()
            .push((rec.version, action, rec.clone()));
        self.live.insert(id, rec);
    }

    fn delete(&mut self, env: usize, ids: &[Uuid]) -> Result<usize, Outcome> {
        if ids.is_empty() {
            return Err(Outcome::EmptyBatch);
        }
        let mut unique: Vec<Uuid> = Vec::new();
        for id in ids {
            if !unique.contains(id) {
                unique.push(*id);
            }
        }
        let missing: Vec<Uuid> = unique
            .iter()
            .copied()
            .filter(|id| self.live.get(id).is_none_or(|r| r.env != env))
            .collect();
        if !missing.is_empty() {
            return Err(Outcome::SomeNotFound(missing));
        }
        for id in &unique {
            let rec = self.live.remove(id).expect("checked live");
            self.history.entry(*id).or_default().push((
                rec.version + 1,
                VersionAction::Delete,
                rec,
            ));
        }
        Ok(unique.len())
    }
}

// --- running both ----------------------------------------------------------------------

struct Harness {
    dir: tempfile::TempDir,
    store: Option<Store>,
    envs: [Uuid; 2],
    model: Model,
    /// Every id the run has seen, in order of creation.
    known: Vec<Uuid>,
}

fn rec_of(secret: &Secret, envs: &[Uuid; 2]) -> (Uuid, Rec) {
    let env = envs
        .iter()
        .position(|e| *e == secret.env_id)
        .expect("one of ours");
    (
        secret.id,
        Rec {
            env,
            path: secret.path.clone(),
            key: secret.key.clone(),
            value: secret.value.clone(),
            tags: secret.tags.clone(),
            ty: secret.secret_type,
            version: secret.version,
        },
    )
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::new(dir.path())).unwrap();
        let (_, envs) = store
            .create_app(
                &me(),
                coffer_store::NewApp {
                    name: "model".into(),
                    ..Default::default()
                },
            )
            .unwrap();
        Harness {
            dir,
            store: Some(store),
            envs: [envs[0].id, envs[1].id],
            model: Model::default(),
            known: Vec::new(),
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("open")
    }

    fn resolve(&self, target: &Target) -> Uuid {
        match target {
            Target::Known(i) if !self.known.is_empty() => self.known[i.index(self.known.len())],
            _ => Uuid::new_v4(),
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Create(env, batch) => {
                let expected = self.model.create(*env, batch);
                let news = batch
                    .iter()
                    .map(|s| NewSecret {
                        key: s.key.spelled().into(),
                        path: PATHS[s.path].0.into(),
                        value: format!("c{}", s.value),
                        tags: s.tags.iter().map(|t| TAGS[*t].to_string()).collect(),
                        secret_type: TYPES[s.ty],
                        comment: String::new(),
                        personal_override: None,
                    })
                    .collect();
                let got = self.store().create_secrets(&me(), self.envs[*env], news);
                match (expected, got) {
                    (Ok(recs), Ok(secrets)) => {
                        let got: Vec<(Uuid, Rec)> =
                            secrets.iter().map(|s| rec_of(s, &self.envs)).collect();
                        let got_recs: Vec<&Rec> = got.iter().map(|(_, r)| r).collect();
                        prop_assert_eq!(got_recs, recs.iter().collect::<Vec<_>>());
                        self.known.extend(got.iter().map(|(id, _)| *id));
                        self.model.commit_create(got);
                    }
                    (expected, got) => prop_assert_eq!(
                        got.map(|_| ()).map_err(Outcome::from),
                        expected.map(|_| ())
                    ),
                }
            }
            Op::Update(env, batch) => {
                let resolved: Vec<(Uuid, UpdateSpec, Option<u64>)> = batch
                    .iter()
                    .map(|spec| {
                        let id = self.resolve(&spec.target);
                        let current = self.model.live.get(&id).map_or(1, |r| r.version);
                        let cas = spec.cas.as_ref().map(|c| match c {
                            CasSpec::Current => current,
                            CasSpec::Off(d) => current + d,
                        });
                        (id, spec.clone(), cas)
                    })
                    .collect();
                let expected = self.model.update(*env, &resolved);
                let updates = resolved
                    .iter()
                    .map(|(id, spec, cas)| SecretUpdate {
                        id: *id,
                        key: spec.key.as_ref().map(|k| k.spelled().into()),
                        path: spec.path.map(|p| PATHS[p].0.into()),
                        value: spec.value.map(|v| format!("u{v}")),
                        comment: None,
                        tags: None,
                        secret_type: spec.ty.map(|t| TYPES[t]),
                        expected_version: *cas,
                        personal_override: Default::default(),
                    })
                    .collect();
                let got = self
                    .store()
                    .update_secrets(&me(), self.envs[*env], updates)
                    .map(|secrets| secrets.iter().map(|s| rec_of(s, &self.envs)).collect());
                match expected {
                    Ok((next, updated)) => {
                        prop_assert_eq!(got.map_err(Outcome::from), Ok(updated));
                        self.model = next;
                    }
                    Err(outcome) => prop_assert_eq!(got.map_err(Outcome::from), Err(outcome)),
                }
            }
            Op::Delete(env, targets) => {
                let ids: Vec<Uuid> = targets.iter().map(|t| self.resolve(t)).collect();
                let expected = self.model.delete(*env, &ids);
                let got = self.store().delete_secrets(&me(), self.envs[*env], &ids);
                prop_assert_eq!(got.map_err(Outcome::from), expected);
            }
            Op::Upsert(env, batch) => {
                let expected = self.model.upsert(*env, batch);
                let entries = batch
                    .iter()
                    .map(|s| UpsertSecret {
                        key: s.key.spelled().into(),
                        path: PATHS[s.path].0.into(),
                        value: format!("p{}", s.value),
                        comment: None,
                        tags: s
                            .tags
                            .as_ref()
                            .map(|t| t.iter().map(|t| TAGS[*t].to_string()).collect()),
                        secret_type: s.ty.map(|t| TYPES[t]),
                        personal_override: OverrideChange::Keep,
                    })
                    .collect();
                let got = self
                    .store()
                    .upsert_secrets(&me(), self.envs[*env], entries)
                    .map(|secrets| {
                        secrets
                            .iter()
                            .map(|s| rec_of(s, &self.envs))
                            .collect::<Vec<_>>()
                    });
                match (expected, got) {
                    (Ok((mut next, written)), Ok(got)) => {
                        prop_assert_eq!(got.len(), written.len());
                        for ((got_id, got_rec), (updated_id, rec)) in got.iter().zip(&written) {
                            prop_assert_eq!(got_rec, rec);
                            match updated_id {
                                Some(id) => prop_assert_eq!(got_id, id),
                                None => {
                                    prop_assert!(!self.known.contains(got_id));
                                    self.known.push(*got_id);
                                    next.commit_create(vec![(*got_id, got_rec.clone())]);
                                }
                            }
                        }
                        self.model = next;
                    }
                    (expected, got) => prop_assert_eq!(
                        got.map(|_| ()).map_err(Outcome::from),
                        expected.map(|_| ())
                    ),
                }
            }
            Op::Rollback(env, spec) => {
                let id = self.resolve(&spec.target);
                let versions: Vec<u64> = self
                    .model
                    .history
                    .get(&id)
                    .map(|h| h.iter().map(|(v, _, _)| *v).collect())
                    .unwrap_or_default();
                let current = versions.last().copied().unwrap_or(1);
                let version = match &spec.version {
                    VersionSpec::Existing(i) if !versions.is_empty() => {
                        versions[i.index(versions.len())]
                    }
                    VersionSpec::Existing(_) => 1,
                    VersionSpec::Zero => 0,
                    VersionSpec::PastCurrent(d) => current + d,
                };
                let cas = spec.cas.as_ref().map(|c| match c {
                    CasSpec::Current => current,
                    CasSpec::Off(d) => current + d,
                });
                let expected = self
                    .model
                    .rollback(*env, id, version, cas, spec.may_restore);
                let got = self.store().rollback_secret(
                    &me(),
                    self.envs[*env],
                    Rollback {
                        id,
                        version,
                        expected_version: cas,
                        may_restore: spec.may_restore,
                    },
                );
                match (expected, got) {
                    (Ok((rec, restored)), Ok(got)) => {
                        prop_assert_eq!(got.restored, restored);
                        prop_assert_eq!(rec_of(&got.secret, &self.envs), (id, rec.clone()));
                        self.model.commit_rollback(id, rec, restored);
                    }
                    (expected, got) => prop_assert_eq!(
                        got.map(|_| ()).map_err(Outcome::from),
                        expected.map(|_| ())
                    ),
                }
            }
            Op::List(env, filter) => {
                let store_filter = SecretFilter {
                    path: filter.path.map(|p| PATHS[p].0.into()),
                    key: filter.key.map(|k| KEYS[k].into()),
                    tags: filter.tags.iter().map(|t| TAGS[*t].into()).collect(),
                };
                let got: Vec<(Uuid, Rec)> = self
                    .store()
                    .list_secrets(self.envs[*env], &store_filter)
                    .unwrap()
                    .iter()
                    .map(|s| rec_of(s, &self.envs))
                    .collect();
                prop_assert_eq!(got, self.model.listing(*env, filter));
            }
            Op::Reopen => {
                drop(self.store.take());
                self.store = Some(Store::open(&StoreConfig::new(self.dir.path())).unwrap());
            }
        }
        self.check_listings()
    }

    fn check_listings(&self) -> Result<(), TestCaseError> {
        let everything = FilterSpec {
            path: None,
            key: None,
            tags: vec![],
        };
        for env in 0..2 {
            let got: Vec<(Uuid, Rec)> = self
                .store()
                .list_secrets(self.envs[env], &SecretFilter::default())
                .unwrap()
                .iter()
                .map(|s| rec_of(s, &self.envs))
                .collect();
            prop_assert_eq!(got, self.model.listing(env, &everything), "env {}", env);
        }
        Ok(())
    }

    fn check_history(&self) -> Result<(), TestCaseError> {
        for (id, versions) in &self.model.history {
            let env = self.model.env_of[id];
            let got: Vec<(u64, VersionAction, Rec)> = self
                .store()
                .secret_history(self.envs[env], *id)
                .unwrap()
                .into_iter()
                .map(|v| (v.version, v.action, rec_of(&v.secret, &self.envs).1))
                .collect();
            prop_assert_eq!(&got, versions, "history of {}", id);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_store_behaves_like_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut h = Harness::new();
        for op in &ops {
            h.step(op)?;
        }
        h.check_history()?;
        // A final reopen loses nothing.
        drop(h.store.take());
        h.store = Some(Store::open(&StoreConfig::new(h.dir.path())).unwrap());
        h.check_listings()?;
        h.check_history()?;
    }
}
