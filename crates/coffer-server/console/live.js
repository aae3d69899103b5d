// Live tables: follows the changes feed (`GET /v1/changes/?wait=`) and calls
// `onChange` after each write, until `signal` fires.

import * as api from './api.js';

const WAIT_SECONDS = 25;
const RETRY_MS = 3000;

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Follows the writes of one environment (`env`), or of every environment of the app. */
export async function follow({ appId, env, signal, onChange }) {
  let since = null;
  while (!signal.aborted) {
    try {
      const query = { app_id: appId, env };
      if (since !== null) Object.assign(query, { since, wait: WAIT_SECONDS });
      const answer = await api.call('GET', '/changes/', { query, signal });
      const changed = since !== null && answer.data.length > 0;
      since = answer.next;
      if (changed) await onChange(answer.data);
    } catch (error) {
      if (signal.aborted || error.signedOut) return;
      // A cursor past retention starts over from now; anything else is retried.
      if (error.status === 410) since = null;
      await pause(RETRY_MS, signal);
    }
  }
}
