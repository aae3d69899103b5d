// The deleted secrets of an environment, found in the audit log, each linking to its
// history (where a rollback brings it back). Read only when the list is opened.

import * as api from './api.js';
import { h } from './dom.js';

const MAX_READS = 10;
const SHOWN = 20;

/** Ids of secrets deleted from the environment, most recent first. */
async function deletedIds(appId, envId, signal) {
  const ids = [];
  let since;
  for (let reads = 0; reads < MAX_READS; reads += 1) {
    const answer = await api.call('GET', '/audit/', {
      query: { app_id: appId, env: envId, action: 'secret.delete', since, limit: 1000 }, signal,
    });
    for (const entry of answer.data) {
      if (entry.action === 'secret.delete') ids.push(...entry.secretIds);
    }
    if (!answer.next) break;
    since = answer.next;
  }
  return [...new Set(ids.reverse())];
}

/**
 * A disclosure "Deleted secrets" for the environment; `isLive(id)` tells a secret that
 * came back; `historyHref(id)` is where its history is.
 */
export function deletedSecrets({ appId, envId, signal, isLive, historyHref }) {
  const body = h('div');
  const details = h('details', { class: 'deleted' }, h('summary', {}, 'Deleted secrets'), body);
  details.addEventListener('toggle', async () => {
    if (!details.open) return;
    body.replaceChildren(h('p', { class: 'summary' }, 'Looking in the audit log…'));
    try {
      const ids = (await deletedIds(appId, envId, signal)).filter((id) => !isLive(id)).slice(0, SHOWN);
      const found = await Promise.all(ids.map(async (id) => {
        const { data } = await api.call('GET', `/secrets/${id}/history/`, { query: { app_id: appId, env: envId }, signal });
        return { id, latest: data[0] };
      }));
      const gone = found.filter(({ latest }) => latest?.action === 'delete');
      body.replaceChildren(gone.length
        ? h('ul', {}, gone.map(({ id, latest }) => h('li', {},
          h('a', { href: historyHref(id), 'aria-label': `History of deleted ${latest.key}` }, latest.key),
          ` at ${latest.path}, deleted as version ${latest.version}`)))
        : h('p', { class: 'summary' }, 'No deleted secret.'));
    } catch (error) {
      if (!error.signedOut) body.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, error.message));
    }
  });
  return details;
}
