//! A secrets listing written out as it is sent: the JSON array is made a chunk at a
//! time from a page the store read whole, so a large environment costs about its
//! stored size plus a chunk, and a slow reader holds no thread and no lock. Chunks are
//! made on the blocking pool: decrypting a large listing never holds a worker (and so
//! never delays `/health` or other requests on it). References in values are resolved
//! there too, from one snapshot per environment they touch (see
//! [`coffer_store::Resolver`]); the reads through them are audited before the chunk
//! holding them is sent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::http::header::ContentType;
use actix_web::rt::task::{spawn_blocking, JoinHandle};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, HttpResponseBuilder};
use coffer_store::{Actor, ListedSecret, ReferencedReads, Resolver, SecretRead, Store};
use futures_core::Stream;

use crate::error::ApiError;
use crate::views::SecretView;

/// How much JSON one chunk holds before it is sent.
const CHUNK_BYTES: usize = 64 * 1024;

/// The JSON array of a page's secrets, opened one at a time.
#[derive(Debug)]
pub struct SecretsJson {
    store: Arc<Store>,
    entries: std::vec::IntoIter<ListedSecret>,
    /// Resolves the values' references; `None` writes values as stored.
    resolver: Option<Resolver>,
    /// Who reads, for the audit entries of reads through references.
    actor: Actor,
    started: bool,
    done: bool,
}

impl SecretsJson {
    /// The array of these entries, none written yet, read by `actor`.
    pub fn new(
        store: Arc<Store>,
        entries: Vec<ListedSecret>,
        resolver: Option<Resolver>,
        actor: Actor,
    ) -> Self {
        SecretsJson {
            store,
            entries: entries.into_iter(),
            resolver,
            actor,
            started: false,
            done: false,
        }
    }

    /// The secrets read through references by the chunks made so far and not yet
    /// taken, by environment.
    pub fn take_reads(&mut self) -> Vec<ReferencedReads> {
        self.resolver
            .as_mut()
            .map(Resolver::take_reads)
            .unwrap_or_default()
    }

    /// The next chunk, its reads through references already in the audit log (for
    /// chunks made after the answer's status was sent). Blocks.
    fn next_chunk_audited(&mut self) -> Result<Option<Bytes>, ApiError> {
        let chunk = self.next_chunk()?;
        let reads: Vec<SecretRead> = self
            .take_reads()
            .into_iter()
            .map(|read| SecretRead {
                actor: self.actor.clone(),
                app_id: read.app_id,
                env_id: read.env_id,
                secret_ids: read.secret_ids,
            })
            .collect();
        if !reads.is_empty() {
            self.store.record_reads(reads)?;
        }
        Ok(chunk)
    }

    /// The next chunk: `[`, then entries up to [`CHUNK_BYTES`], `]` after the last;
    /// `None` once `]` was written. Blocks (decrypts, resolves). The reads through
    /// references it made wait in [`SecretsJson::take_reads`].
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        if self.done {
            return Ok(None);
        }
        // Grown as it is written, not reserved: most answers are one small secret, and a
        // 64 KiB buffer per request is a large allocation that the allocator (set to
        // return freed pages at once) maps and unmaps each time: reads fell to 40 %.
        let mut json = Vec::with_capacity(1024);
        if !self.started {
            json.push(b'[');
        }
        while json.len() < CHUNK_BYTES {
            let Some(entry) = self.entries.next() else {
                json.push(b']');
                self.done = true;
                break;
            };
            if self.started {
                json.push(b',');
            }
            self.started = true;
            let mut secret = self.store.open_listed(entry)?;
            if let Some(resolver) = &mut self.resolver {
                secret.value = resolver.resolve(&secret)?;
            }
            serde_json::to_writer(&mut json, &SecretView::from(&secret))
                .expect("a secret view serializes into a Vec");
        }
        Ok(Some(Bytes::from(json)))
    }
}

type Made = (SecretsJson, Result<Option<Bytes>, ApiError>);

/// The array: its first chunk, already made, then the others, each made on the
/// blocking pool.
struct ArrayChunks {
    first: Option<Bytes>,
    idle: Option<SecretsJson>,
    making: Option<JoinHandle<Made>>,
}

impl Stream for ArrayChunks {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        let making = match (&mut this.making, this.idle.take()) {
            (Some(making), _) => making,
            (None, Some(mut body)) => this.making.insert(spawn_blocking(move || {
                let chunk = body.next_chunk_audited();
                (body, chunk)
            })),
            (None, None) => return Poll::Ready(None),
        };
        let made = match Pin::new(making).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(made) => made,
        };
        this.making = None;
        // A failure after the status was sent can only cut the answer short (the
        // client sees a truncated body); it is logged as any store failure.
        let chunk = match made {
            Ok((body, chunk)) => {
                this.idle = Some(body);
                chunk
            }
            Err(_) => {
                tracing::error!("a listing's chunk task failed");
                Err(ApiError::internal())
            }
        };
        Poll::Ready(chunk.map_err(Into::into).transpose())
    }
}

/// A 200 with a listing whose first chunk is made: with a length when that was all
/// of it (most answers), streamed otherwise.
pub fn secrets_response(
    mut response: HttpResponseBuilder,
    first: Bytes,
    rest: SecretsJson,
) -> HttpResponse {
    response.content_type(ContentType::json());
    if rest.done {
        return response.body(first);
    }
    response.streaming(ArrayChunks {
        first: Some(first),
        idle: Some(rest),
        making: None,
    })
}
