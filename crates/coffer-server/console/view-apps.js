// Apps and their environments: list, create, rename, delete.

import * as api from './api.js';
import { announce, confirmAction, crumbs, dialog, fill, form, h, heading, table, when } from './dom.js';

const DEFAULT_ENVIRONMENTS = 'Development, Staging, Production';

function names(list) {
  return list.split(',').map((name) => name.trim()).filter(Boolean);
}

/** A dialog with one form; resolves once the form succeeded or was cancelled. */
function formDialog(title, spec) {
  return dialog(title, (close) => {
    const built = form({
      ...spec,
      onSubmit: async (values) => close(await spec.onSubmit(values)),
    });
    built.form.append(h('button', { type: 'button', class: 'cancel', onclick: () => close(undefined) }, 'Cancel'));
    return built.form;
  });
}

export async function appList({ main, signal }) {
  const list = h('div');
  const refresh = async () => {
    const { data: apps } = await api.call('GET', '/apps/', { signal });
    const rows = apps.map((app) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/apps/${app.id}` }, app.name)),
      h('td', {}, app.description || '—'),
      h('td', {}, when(app.createdAt)),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', 'aria-label': `Rename ${app.name}`, onclick: () => rename(app) }, 'Rename'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${app.name}`, onclick: () => remove(app) }, 'Delete'))));
    list.replaceChildren(table('Apps', ['Name', 'Description', 'Created', 'Actions'], rows,
      'No app yet: create one above.'));
  };
  const rename = async (app) => {
    const renamed = await formDialog(`Rename ${app.name}`, {
      label: 'Rename app',
      submit: 'Save',
      fields: [
        { name: 'name', label: 'Name', value: app.name, required: true },
        { name: 'description', label: 'Description', value: app.description },
      ],
      fieldOf: api.fieldOf,
      onSubmit: (values) => api.call('PUT', `/apps/${app.id}/`, { body: values }),
    });
    if (renamed) {
      announce(`Saved app ${renamed.name}.`);
      await refresh();
    }
  };
  const remove = async (app) => {
    const { data: envs } = await api.call('GET', '/environments/', { query: { app_id: app.id } });
    const confirmed = await confirmAction({
      title: `Delete ${app.name}?`,
      question: [
        h('p', {}, `Deleting the app ${app.name} also deletes:`),
        h('ul', {},
          h('li', {}, `its ${envs.length} environment${envs.length === 1 ? '' : 's'}: ${envs.map((env) => env.name).join(', ') || 'none'}`),
          h('li', {}, 'every secret in them, with their history'),
          h('li', {}, 'every service token scoped to it')),
        h('p', {}, 'This cannot be undone.'),
      ],
      confirm: `Delete ${app.name}`,
    });
    if (!confirmed) return;
    await api.call('DELETE', `/apps/${app.id}/`);
    announce(`Deleted app ${app.name}.`);
    await refresh();
  };
  const create = form({
    label: 'Create app',
    submit: 'Create app',
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'description', label: 'Description' },
      { name: 'environments', label: 'Environments', value: DEFAULT_ENVIRONMENTS, hint: 'Comma-separated names.' },
    ],
    fieldOf: (error) => (error.code?.startsWith('environment') || error.code === 'duplicate_environment_name'
      ? 'environments' : api.fieldOf(error)),
    onSubmit: async (values, element) => {
      const app = await api.call('POST', '/apps/', {
        body: { name: values.name.trim(), description: values.description, environments: names(values.environments) },
      });
      element.reset();
      announce(`Created app ${app.name}.`);
      location.hash = `#/apps/${app.id}`;
    },
  });
  fill(main, heading('Apps'), h('section', { class: 'card' }, h('h2', {}, 'New app'), create.form), list);
  await refresh();
}

export async function appPage({ main, params: [appId], signal }) {
  let app = await api.call('GET', `/apps/${appId}/`, { signal });
  const title = heading(app.name);
  const list = h('div');
  const refresh = async () => {
    const { data: envs } = await api.call('GET', '/environments/', { query: { app_id: appId }, signal });
    const rows = envs.map((env) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/apps/${appId}/envs/${env.id}` }, env.name)),
      h('td', {}, env.envType),
      h('td', {}, when(env.createdAt)),
      h('td', { class: 'row-actions' },
        h('button', { type: 'button', 'aria-label': `Rename ${env.name}`, onclick: () => rename(env) }, 'Rename'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${env.name}`, onclick: () => remove(env) }, 'Delete'))));
    list.replaceChildren(table('Environments', ['Name', 'Type', 'Created', 'Actions'], rows));
  };
  const rename = async (env) => {
    const renamed = await formDialog(`Rename ${env.name}`, {
      label: 'Rename environment',
      submit: 'Save',
      fields: [{ name: 'name', label: 'Name', value: env.name, required: true }],
      fieldOf: api.fieldOf,
      onSubmit: (values) => api.call('PUT', `/environments/${env.id}/`, { body: { name: values.name.trim() } }),
    });
    if (renamed) {
      announce(`Renamed environment to ${renamed.name}.`);
      await refresh();
    }
  };
  const remove = async (env) => {
    const confirmed = await confirmAction({
      title: `Delete ${env.name}?`,
      question: [
        h('p', {}, `Deleting the environment ${env.name} of ${app.name} also deletes every secret in it, with their history.`),
        h('p', {}, 'Service tokens keep their other environments. This cannot be undone.'),
      ],
      confirm: `Delete ${env.name}`,
    });
    if (!confirmed) return;
    await api.call('DELETE', `/environments/${env.id}/`);
    announce(`Deleted environment ${env.name}.`);
    await refresh();
  };
  const add = form({
    label: 'Add environment',
    submit: 'Add environment',
    fields: [{ name: 'name', label: 'Environment name', required: true, hint: 'Letters, digits, - and _.' }],
    fieldOf: api.fieldOf,
    onSubmit: async (values, element) => {
      const env = await api.call('POST', '/environments/', { query: { app_id: appId }, body: { name: values.name.trim() } });
      element.reset();
      announce(`Added environment ${env.name}.`);
      await refresh();
    },
  });
  const renameApp = h('button', {
    type: 'button',
    onclick: async () => {
      const renamed = await formDialog(`Rename ${app.name}`, {
        label: 'Rename app',
        submit: 'Save',
        fields: [
          { name: 'name', label: 'Name', value: app.name, required: true },
          { name: 'description', label: 'Description', value: app.description },
        ],
        fieldOf: api.fieldOf,
        onSubmit: (values) => api.call('PUT', `/apps/${app.id}/`, { body: values }),
      });
      if (renamed) {
        app = renamed;
        title.textContent = app.name;
        announce(`Saved app ${app.name}.`);
      }
    },
  }, 'Rename app');
  fill(main, 
    crumbs(['Apps', '#/apps'], [app.name]),
    title,
    app.description ? h('p', {}, app.description) : null,
    h('div', { class: 'toolbar' },
      h('a', { class: 'button', href: `#/apps/${appId}/compare` }, 'Compare environments'),
      renameApp),
    list,
    h('section', { class: 'card' }, h('h2', {}, 'New environment'), add.form),
  );
  await refresh();
}
