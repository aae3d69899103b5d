// The versions of one secret, newest first, with rollback to any earlier one.

import * as api from './api.js';
import * as session from './session.js';
import { environmentOf } from './view-secrets.js';
import { announce, confirmAction, crumbs, fill, h, heading, keepFocus, table, when } from './dom.js';

const MASK = '••••••••';

function actorOf(actor) {
  if (!actor?.tokenId) return 'server';
  return `${actor.kind ?? 'token'} ${actor.tokenId.slice(0, 8)}`;
}

export async function historyPage({ main, params: [appId, envId, secretId], signal }) {
  const scoped = Boolean(session.current()?.scope);
  const [app, env] = await Promise.all([
    scoped ? { id: appId, name: 'App' } : api.call('GET', `/apps/${appId}/`, { signal }),
    environmentOf(appId, envId, signal),
  ]);
  const query = { app_id: appId, env: envId };
  const title = heading('History');
  const state = h('p', { class: 'summary', role: 'status' });
  const list = h('div');
  let revealed = null;
  let versions = [];

  const draw = () => {
    const [latest] = versions;
    const rows = versions.map((version) => {
      const isRevealed = revealed === version.version;
      return h('tr', {},
        h('th', { scope: 'row', class: 'num' }, String(version.version)),
        h('td', {}, version.action),
        h('td', { class: 'key' }, version.key),
        h('td', { class: 'path' }, version.path),
        h('td', { class: 'value' },
          isRevealed ? h('code', { class: 'revealed' }, version.value) : h('span', { class: 'masked', 'aria-label': 'hidden' }, MASK),
          h('button', {
            type: 'button',
            'aria-pressed': String(isRevealed),
            'aria-label': `${isRevealed ? 'Hide' : 'Reveal'} value of version ${version.version}`,
            onclick: () => {
              revealed = isRevealed ? null : version.version;
              draw();
            },
          }, isRevealed ? 'Hide' : 'Reveal')),
        h('td', {}, version.tags.join(', ') || '—'),
        h('td', {}, actorOf(version.actor)),
        h('td', {}, when(version.createdAt)),
        h('td', {}, version === latest || version.action === 'delete' ? '' : h('button', {
          type: 'button',
          onclick: () => rollBack(version, latest),
        }, `Roll back to version ${version.version}`)));
    });
    keepFocus(list, () => list.replaceChildren(table('Versions', ['Version', 'Change', 'Key', 'Path', 'Value', 'Tags', 'By', 'When', 'Rollback'], rows)));
  };

  const refresh = async () => {
    ({ data: versions } = await api.call('GET', `/secrets/${secretId}/history/`, { query, signal }));
    const [latest] = versions;
    title.textContent = `History of ${latest?.key ?? 'a secret'}`;
    state.textContent = latest?.action === 'delete'
      ? `Deleted at version ${latest.version}; roll back to bring it back.`
      : `Now at version ${latest?.version}.`;
    draw();
  };

  const rollBack = async (version, latest) => {
    const confirmed = await confirmAction({
      title: `Roll back ${version.key}?`,
      question: h('p', {}, `Roll ${version.key} back to version ${version.version}? This writes version `
        + `${latest.version + 1} with the key, path, value, tags and comment of version ${version.version}.`),
      confirm: `Roll back to version ${version.version}`,
      danger: false,
    });
    if (!confirmed) return;
    try {
      const secret = await api.call('POST', `/secrets/${secretId}/rollback/`, {
        query, body: { version: version.version, expectedVersion: latest.version },
      });
      announce(`Rolled back: ${secret.key} is now at version ${secret.version}.`);
    } catch (error) {
      if (error.signedOut) return;
      state.textContent = error.message;
    }
    await refresh();
  };

  fill(main, 
    scoped
      ? crumbs([env.name, `#/apps/${appId}/envs/${envId}`], ['History'])
      : crumbs(['Apps', '#/apps'], [app.name, `#/apps/${appId}`], [env.name, `#/apps/${appId}/envs/${envId}`], ['History']),
    title, state, list);
  await refresh();
}
