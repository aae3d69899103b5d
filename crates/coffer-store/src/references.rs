//! Secret references, as Phase writes them: a value may name other secrets as
//! `${KEY}` (same environment, root path), `${/path/KEY}`, `${env.KEY}`,
//! `${env./path/KEY}` and `${app::env./path/KEY}`.
//!
//! The grammar is Phase's (its three patterns, read as one scan): a reference is `${`,
//! not followed by `{`, then text without `{` or `}` up to the first `}`. Text holding
//! `::` names an app (up to the first `::`) and an environment (up to the first `.`
//! after it); other text holding `.` names an environment (up to its first `.`); text
//! without `.` names a secret of the same environment. What follows is `path/KEY`, split
//! at the last `/`. So an environment name never holds a `.`, a path or key named
//! without an environment never does either, and a key holding `}` cannot be named.
//!
//! [`Resolver`] replaces references by the values they name, recursively, from one
//! snapshot per environment it touches. A reference stays as written when what it
//! names is missing, outside what the caller may read, on a cycle with the secret that
//! holds it, more than [`MAX_REFERENCE_DEPTH`] references deep, or would push the
//! resolved value past [`MAX_RESOLVED_BYTES`]. Each secret resolves to the same value
//! wherever it is reached from, so the resolver computes it once.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use uuid::Uuid;

use crate::kv::{Backend, KvBackend};
use crate::validate::{limits, normalize_path};
use crate::{SecretFilter, Store, StoreError};

/// Longest chain of references one value resolves through; a reference whose target
/// needs a longer one stays as written.
pub const MAX_REFERENCE_DEPTH: usize = 8;

/// Largest resolved value: a reference whose value would push the resolved text past
/// what one stored value may hold stays as written. Bounds what a listing holds.
pub const MAX_RESOLVED_BYTES: usize = limits::MAX_VALUE_BYTES;

/// A reference found in a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference<'a> {
    /// Where `${...}` is in the value, braces included.
    pub span: Range<usize>,
    /// The app named before `::`, if any.
    pub app: Option<&'a str>,
    /// The environment named before `.`, if any.
    pub env: Option<&'a str>,
    /// The path as written (before the last `/`; empty for none: the root).
    pub path: &'a str,
    /// The key as written.
    pub key: &'a str,
}

/// The references of a value, in order.
pub fn references(value: &str) -> Vec<Reference<'_>> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = value[from..].find("${") {
        let start = from + offset;
        let body = start + 2;
        let content_len = value[body..]
            .find(['{', '}'])
            .filter(|&len| len > 0 && value[body + len..].starts_with('}'));
        let parsed = content_len.and_then(|len| {
            let (app, env, path_key) = classify(&value[body..body + len])?;
            let (path, key) = split_path_key(path_key);
            Some(Reference {
                span: start..body + len + 1,
                app,
                env,
                path,
                key,
            })
        });
        match parsed {
            Some(reference) => {
                from = reference.span.end;
                found.push(reference);
            }
            // As a regex search would, try the next `${` (which may start inside this one).
            None => from = start + 1,
        }
    }
    found
}

/// Splits a reference's text into app, environment and `path/KEY`, or `None` when the
/// text is not a reference.
fn classify(content: &str) -> Option<(Option<&str>, Option<&str>, &str)> {
    if content.contains("::") {
        // Text with `::` and no `.` is a key of the same environment (Phase's local
        // pattern takes it); with a `.` it is an app reference or nothing.
        return match cross_app(content) {
            Some((app, env, path_key)) => Some((Some(app), Some(env), path_key)),
            None if !content.contains('.') => Some((None, None, content)),
            None => None,
        };
    }
    match content.find('.') {
        None => Some((None, None, content)),
        Some(0) => None,
        Some(dot) if dot + 1 == content.len() => None,
        Some(dot) => Some((None, Some(&content[..dot]), &content[dot + 1..])),
    }
}

/// `app::env.path/KEY`: the app is the shortest non-empty text before a `::`, the
/// environment the shortest non-empty text after it before a `.` that leaves a
/// non-empty rest.
fn cross_app(content: &str) -> Option<(&str, &str, &str)> {
    let (app_end, _) = content
        .char_indices()
        .skip(1)
        .find(|&(i, _)| content[i..].starts_with("::"))?;
    let rest = &content[app_end + 2..];
    let (env_end, _) = rest
        .char_indices()
        .skip(1)
        .find(|&(i, c)| c == '.' && i + 1 < rest.len())?;
    Some((&content[..app_end], &rest[..env_end], &rest[env_end + 1..]))
}

/// `path/KEY` → (path, key), split at the last `/`.
fn split_path_key(path_key: &str) -> (&str, &str) {
    match path_key.rfind('/') {
        Some(slash) => (&path_key[..slash], &path_key[slash + 1..]),
        None => ("", path_key),
    }
}

/// The secrets of one environment a resolver read through references and has not yet
/// handed out (see [`Resolver::take_reads`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferencedReads {
    /// The environment's app.
    pub app_id: Uuid,
    /// The environment.
    pub env_id: Uuid,
    /// The secrets whose values went into resolved values, in the order first read.
    pub secret_ids: Vec<Uuid>,
}

/// Decides whether the caller may read an environment: `(app id, environment id)`.
pub type MayRead = Box<dyn Fn(Uuid, Uuid) -> bool + Send + Sync>;

/// Resolves the references of secrets' values for one caller, from one snapshot of
/// each environment it touches (every live secret, read once, on first use). Values
/// resolve as of those snapshots: make one resolver per answer.
///
/// ```
/// use coffer_store::{Actor, NewApp, NewSecret, Resolver, Store, StoreConfig};
/// # use std::sync::Arc;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(Store::open(&StoreConfig::new(dir.path()))?);
/// let me = Actor::embedded();
/// let (_, envs) = store.create_app(&me, NewApp { name: "shop".into(), ..Default::default() })?;
/// let secret = |key: &str, value: &str| NewSecret { key: key.into(), value: value.into(), ..Default::default() };
/// let made = store.create_secrets(&me, envs[0].id, vec![
///     secret("HOST", "db"),
///     secret("URL", "postgres://${HOST}/${production.HOST}"),
/// ])?;
/// // This caller may read development only: the production reference stays as written.
/// let dev = envs[0].id;
/// let mut resolver = Resolver::new(Arc::clone(&store), Box::new(move |_, env| env == dev));
/// assert_eq!(resolver.resolve(&made[1])?, "postgres://db/${production.HOST}");
/// # Ok(())
/// # }
/// ```
pub struct Resolver<B: KvBackend = Backend> {
    store: Arc<Store<B>>,
    may_read: MayRead,
    /// App names (lower-cased) as looked up.
    apps: HashMap<String, Option<Uuid>>,
    /// Environments by (app, lower-cased name) as looked up.
    env_names: HashMap<(Uuid, String), Option<usize>>,
    /// Environments by id, into `envs`.
    env_ids: HashMap<Uuid, usize>,
    envs: Vec<EnvSnapshot>,
    nodes: Vec<Node>,
    /// Counter of the cycle search (Tarjan's).
    next_index: u32,
    /// Nodes read through references not yet handed out by `take_reads`.
    pending_reads: Vec<usize>,
}

impl<B: KvBackend> std::fmt::Debug for Resolver<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("environments", &self.envs.len())
            .field("secrets", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

struct EnvSnapshot {
    app_id: Uuid,
    env_id: Uuid,
    /// Secrets by (path, KEY); `None` until first needed, and for ever when the
    /// caller may not read the environment.
    secrets: Option<HashMap<(String, String), usize>>,
    readable: bool,
}

/// A reference of a value (its span) and the node it names, if any.
type Edge = (Range<usize>, Option<usize>);

/// A secret of a snapshot, and what resolving it found.
struct Node {
    env: usize,
    id: Uuid,
    value: String,
    /// Each reference of the value and the secret it names (`None`: it stays as
    /// written whatever else holds). Filled on first visit.
    edges: Option<Vec<Edge>>,
    index: u32,
    low: u32,
    on_stack: bool,
    /// Set once resolved: which cycle group (strongly connected component) it is in.
    group: Option<u32>,
    resolved: Option<Resolved>,
    read: bool,
}

struct Resolved {
    /// `None`: the value as stored.
    value: Option<String>,
    /// Longest chain of references resolved in it.
    depth: usize,
    /// The secrets substituted into it.
    used: Vec<usize>,
}

const UNVISITED: u32 = u32::MAX;

impl<B: KvBackend> Resolver<B> {
    /// A resolver reading `store` for a caller who may read what `may_read` allows.
    pub fn new(store: Arc<Store<B>>, may_read: MayRead) -> Self {
        Resolver {
            store,
            may_read,
            apps: HashMap::new(),
            env_names: HashMap::new(),
            env_ids: HashMap::new(),
            envs: Vec::new(),
            nodes: Vec::new(),
            next_index: 0,
            pending_reads: Vec::new(),
        }
    }

    /// The secret's value with its references resolved. A secret listed from the same
    /// environment resolves to the value its snapshot holds for it when that is the
    /// listed value (the usual case); otherwise its own value resolves against the
    /// snapshots.
    pub fn resolve(&mut self, secret: &crate::Secret) -> Result<String, StoreError> {
        if !secret.value.contains("${") {
            return Ok(secret.value.clone());
        }
        let env = self.env_by_id(secret.env_id)?;
        let own = match env {
            Some(env) => self.lookup(env, &secret.path, &secret.key)?,
            None => None,
        };
        if let Some(own) = own.filter(|&own| self.nodes[own].value == secret.value) {
            self.resolve_node(own)?;
            let resolved = self.nodes[own].resolved.as_ref().expect("resolved");
            let used = resolved.used.clone();
            let value = resolved.value.clone();
            self.mark_read(used);
            return Ok(value.unwrap_or_else(|| secret.value.clone()));
        }
        // The listed value differs from the snapshot's (a write landed between them):
        // resolve it on its own, as a secret of its environment whose references back
        // to itself, or into its cycle group, stay as written.
        let edges = match env {
            Some(env) => self.edges_of(env, &secret.value)?,
            None => Vec::new(),
        };
        let own_group = match own {
            Some(own) => {
                self.resolve_node(own)?;
                self.nodes[own].group
            }
            None => None,
        };
        for target in edges.iter().filter_map(|edge| edge.1) {
            self.resolve_node(target)?;
        }
        let resolved = self.substitute(&secret.value, &edges, |target, node| {
            Some(target) == own || (own_group.is_some() && node.group == own_group)
        });
        self.mark_read(resolved.used.clone());
        Ok(resolved.value.unwrap_or_else(|| secret.value.clone()))
    }

    /// The secrets read through references since the last call, by environment in the
    /// order first touched.
    pub fn take_reads(&mut self) -> Vec<ReferencedReads> {
        let mut by_env: Vec<ReferencedReads> = Vec::new();
        for node in std::mem::take(&mut self.pending_reads) {
            let node = &self.nodes[node];
            let env = &self.envs[node.env];
            match by_env.iter_mut().find(|r| r.env_id == env.env_id) {
                Some(reads) => reads.secret_ids.push(node.id),
                None => by_env.push(ReferencedReads {
                    app_id: env.app_id,
                    env_id: env.env_id,
                    secret_ids: vec![node.id],
                }),
            }
        }
        by_env
    }

    /// Marks the secrets substituted (and those substituted into them) as read.
    fn mark_read(&mut self, mut todo: Vec<usize>) {
        while let Some(node) = todo.pop() {
            if std::mem::replace(&mut self.nodes[node].read, true) {
                continue;
            }
            self.pending_reads.push(node);
            if let Some(resolved) = &self.nodes[node].resolved {
                todo.extend_from_slice(&resolved.used);
            }
        }
    }

    /// The environment of this id, registered; `None` when it is gone.
    fn env_by_id(&mut self, env_id: Uuid) -> Result<Option<usize>, StoreError> {
        if let Some(&env) = self.env_ids.get(&env_id) {
            return Ok(Some(env));
        }
        match self.store.get_environment(env_id) {
            Ok(env) => Ok(Some(self.register_env(env.app_id, env.id))),
            Err(StoreError::EnvironmentIdNotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    fn register_env(&mut self, app_id: Uuid, env_id: Uuid) -> usize {
        if let Some(&env) = self.env_ids.get(&env_id) {
            return env;
        }
        let readable = (self.may_read)(app_id, env_id);
        self.envs.push(EnvSnapshot {
            app_id,
            env_id,
            secrets: None,
            readable,
        });
        self.env_ids.insert(env_id, self.envs.len() - 1);
        self.envs.len() - 1
    }

    /// The environment a reference names from `from`, registered; `None` when there
    /// is none of that name.
    fn named_env(
        &mut self,
        from: usize,
        app: Option<&str>,
        env: Option<&str>,
    ) -> Result<Option<usize>, StoreError> {
        let app_id = match app {
            None => self.envs[from].app_id,
            Some(name) => {
                let lower = name.to_lowercase();
                let found = match self.apps.get(&lower) {
                    Some(found) => *found,
                    None => {
                        let found = self.store.find_app_by_name(name)?.map(|app| app.id);
                        self.apps.insert(lower, found);
                        found
                    }
                };
                match found {
                    Some(id) => id,
                    None => return Ok(None),
                }
            }
        };
        let Some(name) = env else {
            return Ok(Some(from));
        };
        let cache_key = (app_id, name.to_lowercase());
        if let Some(found) = self.env_names.get(&cache_key) {
            return Ok(*found);
        }
        let found = match self.store.find_environment(app_id, name) {
            Ok(env) => Some(self.register_env(env.app_id, env.id)),
            Err(StoreError::EnvironmentNotFound { .. } | StoreError::AppNotFound(_)) => None,
            Err(other) => return Err(other),
        };
        self.env_names.insert(cache_key, found);
        Ok(found)
    }

    /// The secret at (path, key) of an environment the caller may read, loading the
    /// environment's snapshot on first use.
    fn lookup(&mut self, env: usize, path: &str, key: &str) -> Result<Option<usize>, StoreError> {
        if !self.envs[env].readable {
            return Ok(None);
        }
        if self.envs[env].secrets.is_none() {
            let secrets = self
                .store
                .list_secrets(self.envs[env].env_id, &SecretFilter::default())?;
            let mut map = HashMap::with_capacity(secrets.len());
            for secret in secrets {
                map.insert((secret.path, secret.key), self.nodes.len());
                self.nodes.push(Node {
                    env,
                    id: secret.id,
                    value: secret.value,
                    edges: None,
                    index: UNVISITED,
                    low: UNVISITED,
                    on_stack: false,
                    group: None,
                    resolved: None,
                    read: false,
                });
            }
            self.envs[env].secrets = Some(map);
        }
        let Ok(path) = normalize_path(path) else {
            return Ok(None);
        };
        let map = self.envs[env].secrets.as_ref().expect("loaded above");
        Ok(map.get(&(path, key.to_ascii_uppercase())).copied())
    }

    /// The references of a value of environment `env` and the secrets they name.
    fn edges_of(&mut self, env: usize, value: &str) -> Result<Vec<Edge>, StoreError> {
        let mut edges = Vec::new();
        for reference in references(value) {
            let target = match self.named_env(env, reference.app, reference.env)? {
                Some(target_env) => self.lookup(target_env, reference.path, reference.key)?,
                None => None,
            };
            edges.push((reference.span, target));
        }
        Ok(edges)
    }

    fn visit(
        &mut self,
        node: usize,
        calls: &mut Vec<(usize, usize)>,
        stack: &mut Vec<usize>,
    ) -> Result<(), StoreError> {
        // The value is lent out while its references are looked up (which may add
        // nodes), and put back.
        let value = std::mem::take(&mut self.nodes[node].value);
        let edges = self.edges_of(self.nodes[node].env, &value);
        let n = &mut self.nodes[node];
        n.value = value;
        let edges = edges?;
        n.edges = Some(edges);
        n.index = self.next_index;
        n.low = self.next_index;
        n.on_stack = true;
        self.next_index += 1;
        stack.push(node);
        calls.push((node, 0));
        Ok(())
    }

    /// Resolves a node and everything it reaches: a depth-first search that finds the
    /// cycle groups (Tarjan's, without recursion: chains may be long), resolving each
    /// group once the groups it names are resolved.
    fn resolve_node(&mut self, start: usize) -> Result<(), StoreError> {
        if self.nodes[start].index != UNVISITED {
            return Ok(());
        }
        let mut calls: Vec<(usize, usize)> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        self.visit(start, &mut calls, &mut stack)?;
        while let Some(&(node, next)) = calls.last() {
            let edges = self.nodes[node].edges.as_ref().expect("visited");
            if let Some(&(_, target)) = edges.get(next) {
                calls.last_mut().expect("non-empty").1 += 1;
                let Some(target) = target else { continue };
                if self.nodes[target].index == UNVISITED {
                    self.visit(target, &mut calls, &mut stack)?;
                } else if self.nodes[target].on_stack {
                    let index = self.nodes[target].index;
                    let n = &mut self.nodes[node];
                    n.low = n.low.min(index);
                }
                continue;
            }
            calls.pop();
            let low = self.nodes[node].low;
            if let Some(&(caller, _)) = calls.last() {
                let c = &mut self.nodes[caller];
                c.low = c.low.min(low);
            }
            if low == self.nodes[node].index {
                let split = stack.iter().rposition(|&n| n == node).expect("on stack");
                let group = stack.split_off(split);
                self.resolve_group(&group);
            }
        }
        Ok(())
    }

    /// Resolves the members of one cycle group: references between members stay as
    /// written; every other secret they name is resolved already.
    fn resolve_group(&mut self, members: &[usize]) {
        let group = self.nodes[members[0]].index;
        for &member in members {
            let n = &mut self.nodes[member];
            n.on_stack = false;
            n.group = Some(group);
        }
        for &member in members {
            let edges = self.nodes[member].edges.take().expect("visited");
            let resolved = self.substitute(&self.nodes[member].value, &edges, |_, target| {
                target.group == Some(group)
            });
            self.nodes[member].resolved = Some(resolved);
        }
    }

    /// A value with each resolvable reference replaced: the target is resolved, not
    /// `excluded`, shallow enough, and fits.
    fn substitute(
        &self,
        value: &str,
        edges: &[Edge],
        excluded: impl Fn(usize, &Node) -> bool,
    ) -> Resolved {
        let mut out = String::new();
        let mut copied = 0;
        let mut depth = 0;
        let mut used = Vec::new();
        for (span, target) in edges {
            let Some(target) = *target else { continue };
            let node = &self.nodes[target];
            if excluded(target, node) {
                continue;
            }
            let Some(resolved) = &node.resolved else {
                continue;
            };
            let text = resolved.value.as_deref().unwrap_or(&node.value);
            if resolved.depth + 1 > MAX_REFERENCE_DEPTH
                || out.len() + (span.start - copied) + text.len() > MAX_RESOLVED_BYTES
            {
                continue;
            }
            out.push_str(&value[copied..span.start]);
            out.push_str(text);
            copied = span.end;
            depth = depth.max(resolved.depth + 1);
            if !used.contains(&target) {
                used.push(target);
            }
        }
        if used.is_empty() {
            return Resolved {
                value: None,
                depth: 0,
                used,
            };
        }
        out.push_str(&value[copied..]);
        Resolved {
            value: Some(out),
            depth,
            used,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Vec<(Option<&str>, Option<&str>, &str, &str)> {
        references(value)
            .into_iter()
            .map(|r| (r.app, r.env, r.path, r.key))
            .collect()
    }

    #[test]
    fn every_form() {
        assert_eq!(parse("${KEY}"), [(None, None, "", "KEY")]);
        assert_eq!(parse("${/db/KEY}"), [(None, None, "/db", "KEY")]);
        assert_eq!(parse("${prod.KEY}"), [(None, Some("prod"), "", "KEY")]);
        assert_eq!(
            parse("${prod./db/main/KEY}"),
            [(None, Some("prod"), "/db/main", "KEY")]
        );
        assert_eq!(
            parse("${shop::prod./db/KEY}"),
            [(Some("shop"), Some("prod"), "/db", "KEY")]
        );
        assert_eq!(
            parse("${shop::prod.KEY}"),
            [(Some("shop"), Some("prod"), "", "KEY")]
        );
    }

    #[test]
    fn spans_cover_the_braces_and_text_around_is_kept_out() {
        let value = "a ${X} b ${env.Y} c";
        let spans: Vec<_> = references(value).into_iter().map(|r| r.span).collect();
        assert_eq!(spans, [2..6, 9..17]);
        assert_eq!(&value[9..17], "${env.Y}");
    }

    #[test]
    fn double_braces_and_non_references_are_left_alone() {
        assert_eq!(parse("${{X}}"), []);
        assert_eq!(parse("${{env.X}}"), []);
        assert_eq!(parse("$X {X} $(X) ${} $ {X}"), []);
        assert_eq!(parse("${.X}"), []);
        assert_eq!(parse("${env.}"), []);
        assert_eq!(parse("${::env.X}"), []);
        assert_eq!(parse("${app::env}"), [(None, None, "", "app::env")]);
        assert_eq!(parse("${app::.}"), []);
    }

    #[test]
    fn unterminated_references_are_not_references() {
        assert_eq!(parse("${KEY"), []);
        assert_eq!(parse("abc ${"), []);
        assert_eq!(parse("${A ${B}"), [(None, None, "", "B")]);
        assert_eq!(parse("${A${B}"), [(None, None, "", "B")]);
    }

    #[test]
    fn nested_braces_name_the_inner_reference_only() {
        assert_eq!(parse("${X${Y}}"), [(None, None, "", "Y")]);
        assert_eq!(
            parse("${LOCAL}-${env.KEY}"),
            [(None, None, "", "LOCAL"), (None, Some("env"), "", "KEY")]
        );
    }

    #[test]
    fn keys_with_spaces_and_mixed_case_are_kept_as_written() {
        assert_eq!(parse("${My Key}"), [(None, None, "", "My Key")]);
        assert_eq!(
            parse("${Shop::Prod./Db/Key}"),
            [(Some("Shop"), Some("Prod"), "/Db", "Key")]
        );
    }

    #[test]
    fn dots_before_the_first_slash_name_an_environment() {
        // As Phase: the text before the first `.` is the environment.
        assert_eq!(parse("${/a.b/KEY}"), [(None, Some("/a"), "b", "KEY")]);
        assert_eq!(parse("${A.B.C}"), [(None, Some("A"), "", "B.C")]);
        assert_eq!(
            parse("${my.app::env.KEY}"),
            [(Some("my.app"), Some("env"), "", "KEY")]
        );
        assert_eq!(
            parse("${a::b::c.KEY}"),
            [(Some("a"), Some("b::c"), "", "KEY")]
        );
    }

    #[test]
    fn a_key_holding_a_closing_brace_cannot_be_named() {
        assert_eq!(parse("${A}B}"), [(None, None, "", "A")]);
    }

    #[test]
    fn multibyte_text_keeps_spans_on_char_boundaries() {
        let value = "é${ü.K}ö${ÿ}";
        for r in references(value) {
            assert!(value.is_char_boundary(r.span.start) && value.is_char_boundary(r.span.end));
        }
        assert_eq!(
            parse(value),
            [(None, Some("ü"), "", "K"), (None, None, "", "ÿ")]
        );
    }
}
