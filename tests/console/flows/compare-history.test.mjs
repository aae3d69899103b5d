// Environments side by side, a secret's history with rollback, and the audit log.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BASE, adminApi, assertNoConsoleProblems, eventually, launch, makeApp, openPage, screenshot, signIn,
} from './harness.mjs';

let browser;
let page;
let app;
before(async () => {
  browser = await launch();
  page = await openPage(browser);
  ({ app } = await makeApp('billing'));
  const write = (env, secrets) => adminApi('POST', '/secrets/', { query: { app_id: app.id, env }, body: { secrets } });
  await write('Development', [
    { key: 'DB_URL', value: 'postgres://dev' }, { key: 'LOG_LEVEL', value: 'debug' }, { key: 'STRIPE_KEY', value: 'sk_test_1' },
  ]);
  await write('Staging', [{ key: 'DB_URL', value: 'postgres://staging' }, { key: 'LOG_LEVEL', value: 'debug' }]);
  await write('Production', [
    { key: 'DB_URL', value: 'postgres://prod' }, { key: 'LOG_LEVEL', value: 'debug' }, { key: 'STRIPE_KEY', value: 'sk_live_1' },
  ]);
  await signIn(page);
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
});
after(() => browser?.close());

function row(name) {
  return page.getByRole('row').filter({ has: page.getByRole('rowheader', { name }) });
}

test('environments side by side show what is missing and what differs, values hidden', async () => {
  await page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: app.name }).click();
  await page.getByRole('link', { name: 'Compare environments' }).click();
  await page.getByRole('heading', { name: `Compare environments of ${app.name}` }).waitFor();
  const table = page.getByRole('table', { name: 'Keys across environments' });
  const headers = await table.getByRole('columnheader').allInnerTexts();
  assert.deepEqual(headers, ['Key', 'Development', 'Staging', 'Production', 'Status', 'Values']);
  await row('STRIPE_KEY').getByRole('cell', { name: 'Missing in Staging; Values differ' }).waitFor();
  await row('LOG_LEVEL').getByRole('cell', { name: 'Same everywhere' }).waitFor();
  await row('DB_URL').getByRole('cell', { name: 'Values differ' }).waitFor();
  await row('STRIPE_KEY').getByRole('cell', { name: 'missing', exact: true }).waitFor();
  const text = await table.innerText();
  for (const value of ['postgres://dev', 'sk_live_1', 'debug']) assert.ok(!text.includes(value), `${value} shown unasked`);
  await screenshot(page, 'compare');

  await page.getByRole('button', { name: 'Reveal values of DB_URL' }).click();
  for (const value of ['postgres://dev', 'postgres://staging', 'postgres://prod']) {
    await row('DB_URL').getByText(value).waitFor();
  }
  assert.ok(!(await table.innerText()).includes('sk_live_1'), 'only the asked row is revealed');

  await page.getByRole('checkbox', { name: 'Staging' }).uncheck();
  await eventually(async () => (await table.getByRole('columnheader').allInnerTexts()).length === 5, 'Staging gone');
  await row('STRIPE_KEY').getByRole('cell', { name: 'Values differ', exact: true }).waitFor();
  await page.getByRole('checkbox', { name: 'Only keys with a difference' }).check();
  await eventually(async () => (await row('LOG_LEVEL').count()) === 0, 'LOG_LEVEL hidden as the same');

  await adminApi('POST', '/secrets/', { query: { app_id: app.id, env: 'Production' }, body: { secrets: [{ key: 'NEW_IN_PROD', value: 'p' }] } });
  await row('NEW_IN_PROD').getByRole('cell', { name: 'Missing in Development' }).waitFor({ timeout: 15_000 });
  assertNoConsoleProblems(page);
});

test('a secret is rolled back to an earlier version from its history', async () => {
  const [secret] = await adminApi('GET', '/secrets/', { query: { app_id: app.id, env: 'Production', key: 'DB_URL' } });
  for (const value of ['postgres://prod-2', 'postgres://prod-3']) {
    await adminApi('PUT', '/secrets/', { query: { app_id: app.id, env: 'Production' }, body: { secrets: [{ id: secret.id, value }] } });
  }
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: app.name }).click();
  await page.getByRole('table', { name: 'Environments' }).getByRole('link', { name: 'Production' }).click();
  await page.getByRole('link', { name: 'History of DB_URL' }).click();
  await page.getByRole('heading', { name: 'History of DB_URL' }).waitFor();
  const versions = page.getByRole('table', { name: 'Versions' });
  await page.getByText('Now at version 3.', { exact: true }).waitFor();
  assert.deepEqual(await versions.getByRole('rowheader').allInnerTexts(), ['3', '2', '1']);
  assert.ok(!(await versions.innerText()).includes('postgres://prod'), 'values hidden until asked');
  await page.getByRole('button', { name: 'Reveal value of version 1' }).click();
  await versions.getByText('postgres://prod', { exact: true }).waitFor();
  await screenshot(page, 'history');

  await page.getByRole('button', { name: 'Roll back to version 1' }).click();
  const dialog = page.getByRole('dialog', { name: 'Roll back DB_URL?' });
  await dialog.getByText('This writes version 4').waitFor();
  await dialog.getByRole('button', { name: 'Roll back to version 1' }).click();
  await page.getByText('Now at version 4.', { exact: true }).waitFor();
  assert.deepEqual(await versions.getByRole('rowheader').allInnerTexts(), ['4', '3', '2', '1']);
  const [now] = await adminApi('GET', '/secrets/', { query: { app_id: app.id, env: 'Production', key: 'DB_URL' } });
  assert.equal(now.value, 'postgres://prod');
  assert.equal(now.version, 4);
  assertNoConsoleProblems(page);
});

test('the audit log is filtered by app, environment, action and first entry', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  const filters = page.getByRole('form', { name: 'Audit filters' });
  await filters.getByLabel('App').selectOption({ label: app.name });
  await eventually(async () => (await filters.getByLabel('Environment').locator('option').count()) === 4, 'environments listed');
  await filters.getByLabel('Environment').selectOption({ label: 'Production' });
  await filters.getByLabel('Action').selectOption('secret.update');
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  const entries = page.getByRole('table', { name: 'Audit entries' });
  await page.getByText(/^\d+ entr(y|ies) shown/).waitFor();
  await eventually(async () => (await entries.getByRole('row').count()) === 4, 'three updates and the header');
  const actions = await entries.locator('tbody tr td:nth-child(3)').allInnerTexts();
  assert.deepEqual(actions, ['secret.update', 'secret.update', 'secret.update']);
  const environments = await entries.locator('tbody tr td:nth-child(6)').allInnerTexts();
  assert.deepEqual(environments, ['Production', 'Production', 'Production']);
  await screenshot(page, 'audit');

  const seqs = (await entries.getByRole('rowheader').allInnerTexts()).map(Number);
  await filters.getByLabel('From entry number').fill(String(seqs[1] + 1));
  await filters.getByRole('button', { name: 'Apply filters' }).click();
  await eventually(async () => (await entries.getByRole('rowheader').allInnerTexts()).length === 1, 'only the last');
  assert.deepEqual((await entries.getByRole('rowheader').allInnerTexts()).map(Number), [seqs[2]]);
  assert.ok(page.url().startsWith(`${BASE}/console/`));
  assertNoConsoleProblems(page);
});
