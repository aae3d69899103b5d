// Tokens: list, create (the secret shown once, with copy buttons), revoke.

import * as api from './api.js';
import { announce, confirmAction, copy, field, fill, form, h, heading, table, when } from './dom.js';

const PERMISSIONS = ['read', 'create', 'update', 'delete'];

/** The new token's two forms, shown once, each with its copy button. */
function shownOnce(created, onDone) {
  const part = (label, value) => {
    const item = field({ name: label.toLowerCase().replace(/\s/g, '-'), label, value });
    item.input.readOnly = true;
    item.row.append(h('button', { type: 'button', onclick: () => copy(value, `the ${label.toLowerCase()}`) }, `Copy ${label.toLowerCase()}`));
    return item.row;
  };
  const region = h('section', { class: 'card once', role: 'region', 'aria-label': 'New token' },
    h('h2', {}, `Token ${created.name} created`),
    h('p', { role: 'alert' }, 'Copy it now: it is shown only this once.'),
    part('Token', created.token),
    part('Phase token', created.phaseToken),
    h('button', { type: 'button', class: 'primary', onclick: () => onDone(region) }, 'Done'));
  return region;
}

export async function tokensPage({ main, signal }) {
  const { data: apps } = await api.call('GET', '/apps/', { signal });
  const appNames = new Map(apps.map((app) => [app.id, app.name]));
  const list = h('div');
  const created = h('div');

  const refresh = async () => {
    const { data: tokens } = await api.call('GET', '/tokens/', { signal });
    const scopedApps = [...new Set(tokens.map((token) => token.appId).filter((id) => id && appNames.has(id)))];
    const envNames = new Map();
    await Promise.all(scopedApps.map(async (appId) => {
      const { data: envs } = await api.call('GET', '/environments/', { query: { app_id: appId }, signal });
      for (const env of envs) envNames.set(env.id, env.name);
    }));
    const envName = (env) => env.name ?? envNames.get(env) ?? env;
    const rows = tokens.filter((token) => !token.revoked).map((token) => h('tr', {},
      h('th', { scope: 'row' }, token.name),
      h('td', {}, token.type),
      h('td', {}, token.appId ? appNames.get(token.appId) ?? token.appId.slice(0, 8) : 'all'),
      h('td', {}, token.environments.map(envName).join(', ') || '—'),
      h('td', {}, token.permissions.join(', ')),
      h('td', {}, when(token.expiresAt)),
      h('td', {}, when(token.lastUsedAt)),
      h('td', {}, h('button', {
        type: 'button', class: 'danger', 'aria-label': `Revoke ${token.name}`, onclick: () => revoke(token),
      }, 'Revoke'))));
    list.replaceChildren(table('Tokens', ['Name', 'Type', 'App', 'Environments', 'Permissions', 'Expires', 'Last used', 'Actions'], rows));
  };

  const revoke = async (token) => {
    const confirmed = await confirmAction({
      title: `Revoke ${token.name}?`,
      question: h('p', {}, `Revoke the ${token.type} token ${token.name}? Everything using it stops working at once; if you signed in with it, you are signed out.`),
      confirm: `Revoke ${token.name}`,
    });
    if (!confirmed) return;
    await api.call('DELETE', `/tokens/${token.id}/`);
    announce(`Revoked ${token.name}.`);
    await refresh();
  };

  const envChoices = h('div', { class: 'env-choices' });
  const built = form({
    label: 'Create token',
    submit: 'Create token',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', type: 'select', value: 'service', options: [['service', 'Service'], ['user', 'User (administrator)']] },
      { name: 'appId', label: 'App', type: 'select', options: [['', 'Choose an app'], ...apps.map((app) => [app.id, app.name])] },
      { name: 'permissions', label: 'Permissions', type: 'checkbox-group', options: PERMISSIONS.map((name) => [name, name, name === 'read']) },
      { name: 'expiresAt', label: 'Expires', type: 'datetime-local', hint: 'Empty: never.' },
      { name: 'allowedIps', label: 'Allowed IPs', hint: 'Comma-separated addresses or CIDR ranges; empty: any.' },
    ],
    extra: [envChoices],
    fieldOf: (error) => (error.code === 'service_token_scope_required' ? 'appId' : api.fieldOf(error)),
    onSubmit: async (values, element) => {
      const service = values.type === 'service';
      const body = {
        name: values.name.trim(),
        type: values.type,
        allowedIps: values.allowedIps.split(',').map((ip) => ip.trim()).filter(Boolean),
      };
      if (values.expiresAt) body.expiresAt = new Date(values.expiresAt).toISOString();
      if (service) {
        Object.assign(body, {
          appId: values.appId || undefined,
          environments: [...envChoices.querySelectorAll('input:checked')].map((box) => box.value),
          permissions: values.permissions,
        });
      }
      const token = await api.call('POST', '/tokens/', { body });
      element.reset();
      showScope();
      created.replaceChildren(shownOnce(token, (region) => {
        region.remove();
        built.fields.name.input.focus();
      }));
      created.querySelector('input').focus();
      await refresh();
    },
  });
  const showScope = async () => {
    const service = built.fields.type.input.value === 'service';
    built.fields.appId.row.hidden = !service;
    built.fields.permissions.row.hidden = !service;
    envChoices.replaceChildren();
    const appId = built.fields.appId.input.value;
    if (!service || !appId) return;
    const { data: envs } = await api.call('GET', '/environments/', { query: { app_id: appId }, signal });
    envChoices.replaceChildren(h('fieldset', { class: 'group' }, h('legend', {}, 'Environments'),
      envs.map((env) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: env.id, checked: true }), env.name))));
  };
  built.fields.type.input.addEventListener('change', showScope);
  built.fields.appId.input.addEventListener('change', showScope);
  built.fields.permissions.row.after(envChoices);
  fill(main, heading('Tokens'), created, h('section', { class: 'card' }, h('h2', {}, 'New token'), built.form), list);
  await refresh();
}
