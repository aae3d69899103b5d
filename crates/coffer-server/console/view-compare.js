// Environments side by side: one row per (path, key) across the chosen environments,
// saying where a key is missing or its value differs. Values stay hidden until a row
// is revealed.

import * as api from './api.js';
import { follow } from './live.js';
import { announce, crumbs, fill, h, heading, keepFocus, table } from './dom.js';

const MASK = '••••••••';

/** Rows by path then key: `{path, key, values: Map(envId → secret)}`. */
function rowsOf(envs, secretsByEnv) {
  const rows = new Map();
  envs.forEach((env, index) => {
    for (const secret of secretsByEnv[index]) {
      const id = `${secret.path}\u0000${secret.key}`;
      if (!rows.has(id)) rows.set(id, { path: secret.path, key: secret.key, values: new Map() });
      rows.get(id).values.set(env.id, secret);
    }
  });
  return [...rows.values()].sort((a, b) => a.path.localeCompare(b.path) || a.key.localeCompare(b.key));
}

/** "Same", "Missing in Staging", "Differs", "Missing in X; differs". */
function statusOf(row, envs) {
  const missing = envs.filter((env) => !row.values.has(env.id)).map((env) => env.name);
  const distinct = new Set([...row.values.values()].map((secret) => secret.value));
  const parts = [];
  if (missing.length) parts.push(`Missing in ${missing.join(', ')}`);
  if (distinct.size > 1) parts.push('Values differ');
  return { text: parts.join('; ') || 'Same everywhere', same: parts.length === 0 };
}

/** For each environment's value, the name of the first environment holding the same. */
function sameAs(row, envs) {
  const first = new Map();
  const names = new Map();
  for (const env of envs) {
    const secret = row.values.get(env.id);
    if (!secret) continue;
    if (!first.has(secret.value)) first.set(secret.value, env.name);
    names.set(env.id, first.get(secret.value));
  }
  return names;
}

export async function comparePage({ main, params: [appId], signal }) {
  const [app, { data: envs }] = await Promise.all([
    api.call('GET', `/apps/${appId}/`, { signal }),
    api.call('GET', '/environments/', { query: { app_id: appId }, signal }),
  ]);
  const revealed = new Set();
  let rows = [];
  let chosenEnvs = envs;
  const boxes = envs.map((env) => h('input', { type: 'checkbox', value: env.id, checked: true }));
  const onlyDifferences = h('input', { type: 'checkbox', id: 'only-differences' });
  const picker = h('fieldset', { class: 'group' },
    h('legend', {}, 'Environments'),
    envs.map((env, index) => h('label', { class: 'check' }, boxes[index], env.name)));
  const summary = h('p', { class: 'summary', role: 'status' });
  const list = h('div');

  const draw = () => {
    const shown = rows
      .map((row) => ({ row, status: statusOf(row, chosenEnvs) }))
      .filter(({ row, status }) => row.values.size > 0 && !(onlyDifferences.checked && status.same));
    const rowNodes = shown.map(({ row, status }) => {
      const id = `${row.path}\u0000${row.key}`;
      const isRevealed = revealed.has(id);
      const groups = sameAs(row, chosenEnvs);
      const label = row.path === '/' ? row.key : `${row.path}/${row.key}`;
      return h('tr', { class: status.same ? '' : 'differs' },
        h('th', { scope: 'row' }, h('span', { class: 'path' }, row.path), ' ', h('span', { class: 'key' }, row.key)),
        chosenEnvs.map((env) => {
          const secret = row.values.get(env.id);
          if (!secret) return h('td', { class: 'missing' }, 'missing');
          const group = groups.get(env.id);
          return h('td', {},
            isRevealed ? h('code', { class: 'revealed' }, secret.value) : h('span', { class: 'masked', 'aria-label': 'hidden' }, MASK),
            group !== env.name ? h('span', { class: 'same-as' }, ` same as ${group}`) : null);
        }),
        h('td', { class: status.same ? 'status same' : 'status' }, status.text),
        h('td', {}, h('button', {
          type: 'button',
          'aria-pressed': String(isRevealed),
          'aria-label': `${isRevealed ? 'Hide' : 'Reveal'} values of ${label}`,
          onclick: () => {
            if (isRevealed) revealed.delete(id);
            else revealed.add(id);
            draw();
          },
        }, isRevealed ? 'Hide' : 'Reveal')));
    });
    const differing = shown.filter(({ status }) => !status.same).length;
    summary.textContent = `${rows.length} key${rows.length === 1 ? '' : 's'}, ${differing} with a difference.`;
    keepFocus(list, () => list.replaceChildren(table('Keys across environments',
      ['Key', ...chosenEnvs.map((env) => env.name), 'Status', 'Values'], rowNodes,
      'No key in these environments.')));
  };

  const refresh = async () => {
    chosenEnvs = envs.filter((_, index) => boxes[index].checked);
    const secretsByEnv = await Promise.all(chosenEnvs.map((env) => api.secrets(appId, env.id, signal)));
    rows = rowsOf(chosenEnvs, secretsByEnv);
    draw();
  };
  for (const box of boxes) box.addEventListener('change', refresh);
  onlyDifferences.addEventListener('change', draw);
  fill(main, 
    crumbs(['Apps', '#/apps'], [app.name, `#/apps/${appId}`], ['Compare']),
    heading(`Compare environments of ${app.name}`),
    h('div', { class: 'filters' }, picker,
      h('label', { class: 'check', for: 'only-differences' }, onlyDifferences, 'Only keys with a difference')),
    summary,
    list,
  );
  await refresh();
  follow({
    appId,
    signal,
    onChange: async () => {
      await refresh();
      announce('A secret changed; the comparison shows the latest.');
    },
  });
}
