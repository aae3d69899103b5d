//! A copy of the audit chain outside the store (a JSON-lines file, say): every entry is
//! handed over in chain order as it is stored, and the copy is made durable with the
//! store's group commit, so an acknowledged write's entries are in it.

use std::io;

use crate::audit::AuditEntry;

/// Where entries are copied to. Both calls come from the store's write path: keep them
/// short, and never block on anything but the copy's own I/O.
pub trait AuditSink: Send + Sync {
    /// Takes entries just stored, in chain order (called with the chain's lock held, so
    /// calls never interleave). An error keeps them for the next call; it is reported
    /// by [`AuditSink::sync`].
    fn append(&self, entries: &[AuditEntry]);

    /// Makes everything appended so far durable, as the store's durability asks.
    /// Called after each group commit's flush, before the writes it covers return.
    fn sync(&self) -> io::Result<()>;
}

/// A sink shared with its owner (who may, say, reopen it).
impl<S: AuditSink + ?Sized> AuditSink for std::sync::Arc<S> {
    fn append(&self, entries: &[AuditEntry]) {
        (**self).append(entries)
    }

    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
}
