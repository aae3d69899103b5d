// The secrets of one environment: a table by path and key with search and tag filter,
// values masked until revealed (one at a time) or copied, create, edit with the
// version shown (check-and-set), delete, bulk paste of a .env, and live refresh.

import * as api from './api.js';
import * as session from './session.js';
import { parseDotenv, DotenvError } from './dotenv.js';
import { deletedSecrets } from './deleted.js';
import { follow } from './live.js';
import {
  announce, confirmAction, copy, crumbs, dialog, field, fill, form, h, heading, keepFocus, table,
} from './dom.js';

const MASK = '••••••••';

function tagList(text) {
  return text.split(',').map((tag) => tag.trim()).filter(Boolean);
}

/** The conflict of a stale edit, in words, with the server's message after it. */
function conflictInWords(error, edited) {
  const current = /current (\d+)/.exec(error.message)?.[1];
  return new api.ApiError(error.status,
    `Someone changed this secret after you opened it: you edited version ${edited}, `
    + `it is now at version ${current ?? 'a newer one'}. Close this form and open the `
    + `secret again to see the latest value. (${error.message})`, error.code);
}

/** Where a secret's history is. */
export function historyHref(appId, envId, secretId) {
  return `#/apps/${appId}/envs/${envId}/secrets/${secretId}`;
}

/** Finds the environment `envId` of the app (by id), for its name. */
export async function environmentOf(appId, envId, signal) {
  if (session.current()?.scope) return { id: envId, name: envId };
  const { data: envs } = await api.call('GET', '/environments/', { query: { app_id: appId }, signal });
  const env = envs.find((item) => item.id === envId);
  if (!env) throw new api.ApiError(404, `Environment with ID ${envId} not found`);
  return env;
}

/** The add / edit form in a dialog; resolves to the saved secret, or undefined. */
function editDialog({ appId, env, secret }) {
  const editing = Boolean(secret);
  return dialog(editing ? `Edit ${secret.key}` : `Add a secret to ${env.name}`, (close) => {
    const built = form({
      label: editing ? 'Edit secret' : 'Add secret',
      submit: editing ? 'Save' : 'Add secret',
      fields: [
        { name: 'key', label: 'Key', value: secret?.key ?? '', required: true },
        { name: 'value', label: 'Value', type: 'textarea', value: secret?.value ?? '', rows: 3 },
        { name: 'path', label: 'Path', value: secret?.path ?? '/' },
        { name: 'tags', label: 'Tags', value: secret?.tags?.join(', ') ?? '', hint: 'Comma-separated.' },
        { name: 'comment', label: 'Comment', value: secret?.comment ?? '' },
      ],
      extra: editing ? [h('p', { class: 'version' }, `Editing version ${secret.version}`)] : [],
      fieldOf: api.fieldOf,
      onSubmit: async (values) => {
        const entry = {
          key: values.key,
          value: values.value,
          path: values.path || '/',
          tags: tagList(values.tags),
          comment: values.comment,
        };
        const query = { app_id: appId, env: env.id };
        try {
          const [saved] = editing
            ? await api.call('PUT', '/secrets/', {
              query, body: { secrets: [{ ...entry, id: secret.id, version: secret.version }] },
            })
            : await api.call('POST', '/secrets/', { query, body: { secrets: [entry] } });
          close(saved);
        } catch (error) {
          throw error.code === 'version_conflict' ? conflictInWords(error, secret.version) : error;
        }
      },
    });
    built.form.querySelector('.actions').append(
      h('button', { type: 'button', onclick: () => close(undefined) }, 'Cancel'));
    return built.form;
  });
}

/** The .env paste in a dialog; resolves to the number of secrets written. */
function pasteDialog({ appId, env, existing }) {
  return dialog(`Paste a .env into ${env.name}`, (close) => {
    const overwrite = h('input', { type: 'checkbox', name: 'upsert', id: 'paste-upsert' });
    const built = form({
      label: 'Paste .env',
      submit: 'Import',
      fields: [
        { name: 'dotenv', label: '.env contents', type: 'textarea', rows: 8, required: true, hint: 'KEY=value lines; # comments are kept as comments.' },
        { name: 'path', label: 'Path', value: '/' },
      ],
      extra: [h('div', { class: 'field' }, h('label', { class: 'check', for: 'paste-upsert' }, overwrite, 'Overwrite keys that exist'))],
      fieldOf: (error) => (error instanceof DotenvError || error.code === 'duplicate_secret'
        || error.code === 'invalid_key' || error.code === 'key_required' ? 'dotenv' : api.fieldOf(error)),
      onSubmit: async (values) => {
        const path = values.path || '/';
        const entries = parseDotenv(values.dotenv).map((entry) => ({ ...entry, path }));
        if (!entries.length) throw new DotenvError('Nothing to import: no KEY=value line.');
        if (!overwrite.checked) {
          const taken = entries.filter((entry) => existing.some((secret) =>
            secret.path === path && secret.key === entry.key.trim().toUpperCase()));
          if (taken.length) {
            throw new DotenvError(`Duplicate secret found: ${taken.map((entry) => entry.key).join(', ')} `
              + `already exist${taken.length === 1 ? 's' : ''} at ${path}. Tick "Overwrite keys that exist" to update them.`);
          }
        }
        const written = await api.call('POST', '/secrets/', {
          query: { app_id: appId, env: env.id, upsert: overwrite.checked ? 'true' : undefined },
          body: { secrets: entries },
        });
        close(written.length);
      },
    });
    built.form.querySelector('.actions').append(
      h('button', { type: 'button', onclick: () => close(undefined) }, 'Cancel'));
    return built.form;
  });
}

export async function secretsPage({ main, params: [appId, envId], signal }) {
  const scoped = Boolean(session.current()?.scope);
  const [app, env] = await Promise.all([
    scoped ? { id: appId, name: 'App' } : api.call('GET', `/apps/${appId}/`, { signal }),
    environmentOf(appId, envId, signal),
  ]);
  let secrets = [];
  let revealed = null;
  const search = field({ name: 'search', label: 'Search', type: 'search', placeholder: 'Key or path' });
  const tagFilter = field({ name: 'tag', label: 'Tag', type: 'select', options: [['', 'All tags']] });
  const summary = h('p', { class: 'summary', role: 'status' });
  const list = h('div');

  const draw = () => {
    const words = search.input.value.trim().toLowerCase();
    const tag = tagFilter.input.value;
    const shown = secrets.filter((secret) =>
      (!words || secret.key.toLowerCase().includes(words) || secret.path.toLowerCase().includes(words))
      && (!tag || secret.tags.includes(tag)));
    const rows = shown.map((secret) => {
      const isRevealed = revealed === secret.id;
      return h('tr', {},
        h('td', { class: 'path' }, secret.path),
        h('th', { scope: 'row', class: 'key' }, secret.key),
        h('td', { class: 'value' },
          isRevealed
            ? h('code', { class: 'revealed' }, secret.value)
            : h('span', { class: 'masked', 'aria-label': 'hidden' }, MASK),
          h('span', { class: 'cell-actions' },
            h('button', {
              type: 'button',
              'aria-pressed': String(isRevealed),
              'aria-label': `${isRevealed ? 'Hide' : 'Reveal'} value of ${secret.key}`,
              onclick: () => {
                revealed = isRevealed ? null : secret.id;
                draw();
              },
            }, isRevealed ? 'Hide' : 'Reveal'),
            h('button', {
              type: 'button',
              'aria-label': `Copy value of ${secret.key}`,
              onclick: () => copy(secret.value, `the value of ${secret.key}`),
            }, 'Copy'))),
        h('td', {}, secret.tags.length ? h('ul', { class: 'tags' }, secret.tags.map((name) => h('li', {}, name))) : '—'),
        h('td', { class: 'num' }, String(secret.version)),
        h('td', { class: 'row-actions' },
          h('button', { type: 'button', 'aria-label': `Edit ${secret.key}`, onclick: () => edit(secret) }, 'Edit'),
          h('a', { class: 'button', href: historyHref(appId, envId, secret.id), 'aria-label': `History of ${secret.key}` }, 'History'),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${secret.key}`, onclick: () => remove(secret) }, 'Delete')));
    });
    summary.textContent = `${shown.length} of ${secrets.length} secret${secrets.length === 1 ? '' : 's'} shown.`;
    keepFocus(list, () => list.replaceChildren(table(`Secrets in ${env.name}`, ['Path', 'Key', 'Value', 'Tags', 'Version', 'Actions'], rows,
      secrets.length ? 'No secret matches.' : 'No secret yet.')));
  };

  const refresh = async () => {
    secrets = await api.secrets(appId, envId, signal);
    if (revealed && !secrets.some((secret) => secret.id === revealed)) revealed = null;
    const tags = [...new Set(secrets.flatMap((secret) => secret.tags))].sort();
    const chosen = tagFilter.input.value;
    tagFilter.input.replaceChildren(
      h('option', { value: '' }, 'All tags'), ...tags.map((tag) => h('option', { value: tag }, tag)));
    tagFilter.input.value = tags.includes(chosen) ? chosen : '';
    draw();
  };

  const edit = async (secret) => {
    const saved = await editDialog({ appId, env, secret });
    if (saved) {
      announce(`Saved ${saved.key}, now at version ${saved.version}.`);
      await refresh();
    }
  };
  const remove = async (secret) => {
    const confirmed = await confirmAction({
      title: `Delete ${secret.key}?`,
      question: h('p', {}, `Delete ${secret.key} at ${secret.path} from ${env.name}? Its history stays: Deleted secrets, below the table, leads to it, and a rollback brings it back.`),
      confirm: `Delete ${secret.key}`,
    });
    if (!confirmed) return;
    await api.call('DELETE', '/secrets/', { query: { app_id: appId, env: envId }, body: { secrets: [secret.id] } });
    announce(`Deleted ${secret.key}.`);
    await refresh();
  };

  search.input.addEventListener('input', draw);
  tagFilter.input.addEventListener('change', draw);
  fill(main, 
    scoped ? null : crumbs(['Apps', '#/apps'], [app.name, `#/apps/${appId}`], [env.name]),
    heading(`${env.name} secrets`),
    h('div', { class: 'toolbar' },
      h('button', {
        type: 'button',
        class: 'primary',
        onclick: async () => {
          const saved = await editDialog({ appId, env });
          if (saved) {
            announce(`Added ${saved.key}.`);
            await refresh();
          }
        },
      }, 'Add secret'),
      h('button', {
        type: 'button',
        onclick: async () => {
          const count = await pasteDialog({ appId, env, existing: secrets });
          if (count !== undefined) {
            announce(`Imported ${count} secret${count === 1 ? '' : 's'}.`);
            await refresh();
          }
        },
      }, 'Paste .env'),
      scoped ? null : h('a', { class: 'button', href: `#/apps/${appId}/compare` }, 'Compare environments')),
    h('div', { class: 'filters', role: 'search' }, search.row, tagFilter.row),
    summary,
    list,
    scoped ? null : deletedSecrets({
      appId,
      envId,
      signal,
      isLive: (id) => secrets.some((secret) => secret.id === id),
      historyHref: (id) => historyHref(appId, envId, id),
    }),
  );
  await refresh();
  follow({
    appId,
    env: envId,
    signal,
    onChange: async () => {
      await refresh();
      announce(`${env.name} changed; the table shows the latest.`);
    },
  });
}
