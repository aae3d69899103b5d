// The audit log, oldest first, filtered by app, environment, action and starting entry.

import * as api from './api.js';
import { field, fill, h, heading, table, when } from './dom.js';

const ACTIONS = [
  'secret.read', 'secret.create', 'secret.update', 'secret.delete',
  'app.create', 'app.update', 'app.delete', 'env.create', 'env.update', 'env.delete',
  'token.create', 'token.revoke', 'store.rekey', 'store.backup',
];
const PAGE = 100;
const MAX_PAGE = 1000;
const MAX_READS = 10;

export async function auditPage({ main, signal }) {
  const { data: apps } = await api.call('GET', '/apps/', { signal });
  const appNames = new Map(apps.map((app) => [app.id, app.name]));
  const envNames = new Map();
  const appField = field({
    name: 'app', label: 'App', type: 'select',
    options: [['', 'All apps'], ...apps.map((app) => [app.id, app.name])],
  });
  const envField = field({ name: 'env', label: 'Environment', type: 'select', options: [['', 'All environments']] });
  envField.input.disabled = true;
  const actionField = field({
    name: 'action', label: 'Action', type: 'select',
    options: [['', 'All actions'], ...ACTIONS.map((action) => [action, action])],
  });
  const sinceField = field({ name: 'since', label: 'From entry number', type: 'number', min: '1', placeholder: '1' });
  const status = h('p', { class: 'summary', role: 'status' });
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  let next = null;
  let shown = 0;

  const rowOf = (entry) => h('tr', {},
    h('th', { scope: 'row', class: 'num' }, String(entry.seq)),
    h('td', {}, when(entry.time)),
    h('td', {}, entry.action),
    h('td', {}, entry.actor?.tokenId ? `${entry.actor.kind} ${entry.actor.tokenId.slice(0, 8)}` : 'server'),
    h('td', {}, entry.appId ? appNames.get(entry.appId) ?? entry.appId.slice(0, 8) : '—'),
    h('td', {}, entry.envId ? envNames.get(entry.envId) ?? entry.envId.slice(0, 8) : '—'),
    h('td', {}, entry.secretIds.length ? String(entry.secretIds.length) : '—'),
    h('td', {}, entry.ip ?? '—'));

  // The action is also filtered here: a server that ignores `action=` still answers
  // entries of every action, so pages are read on until one screenful matches.
  const load = async (fresh) => {
    const action = actionField.input.value;
    const query = {
      app_id: appField.input.value,
      env: envField.input.value,
      action,
      since: fresh ? sinceField.input.value : next,
      limit: action ? MAX_PAGE : PAGE,
    };
    const found = [];
    let answer;
    for (let reads = 0; reads < MAX_READS; reads += 1) {
      answer = await api.call('GET', '/audit/', { query, signal });
      found.push(...answer.data.filter((entry) => !action || entry.action === action));
      if (!answer.next || found.length >= PAGE) break;
      query.since = answer.next;
    }
    if (fresh) {
      body.replaceChildren();
      shown = 0;
    }
    body.append(...found.map(rowOf));
    shown += found.length;
    next = answer.next;
    more.hidden = !next;
    status.textContent = `${shown} entr${shown === 1 ? 'y' : 'ies'} shown${next ? '; more after them.' : '.'}`;
    if (!shown) body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No entry matches.')));
  };

  const filters = h('form', { 'aria-label': 'Audit filters', class: 'filters' },
    appField.row, envField.row, actionField.row, sinceField.row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply filters')));
  const filterError = h('p', { class: 'form-error', role: 'alert' });
  filters.addEventListener('submit', async (event) => {
    event.preventDefault();
    filterError.textContent = '';
    try {
      await load(true);
    } catch (error) {
      if (!error.signedOut) filterError.textContent = error.message;
    }
  });
  appField.input.addEventListener('change', async () => {
    const appId = appField.input.value;
    envField.input.replaceChildren(h('option', { value: '' }, 'All environments'));
    envField.input.disabled = !appId;
    if (!appId) return;
    const { data: envs } = await api.call('GET', '/environments/', { query: { app_id: appId }, signal });
    for (const env of envs) {
      envNames.set(env.id, env.name);
      envField.input.append(h('option', { value: env.id }, env.name));
    }
  });
  more.addEventListener('click', () => load(false));
  const wrap = table('Audit entries', ['#', 'When', 'Action', 'By', 'App', 'Environment', 'Secrets', 'IP'], []);
  wrap.querySelector('tbody').replaceWith(body);
  fill(main, heading('Audit log'), filters, filterError, status, wrap, more);
  await load(true);
}
