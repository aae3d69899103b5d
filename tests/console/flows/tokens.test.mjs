// Tokens: created with the secret shown once and copyable, revoked; a revoked token's
// session goes back to sign-in with the server's message.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BASE, adminApi, assertNoConsoleProblems, eventually, launch, makeApp, openPage, screenshot, signIn,
} from './harness.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** Creates a token through the form; returns `{token, phaseToken}` as the page showed them. */
async function createToken(page, { name, type, appName }) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await page.getByRole('heading', { name: 'Tokens', level: 1 }).waitFor();
  const create = page.getByRole('form', { name: 'Create token' });
  await create.getByLabel('Name').fill(name);
  await create.getByLabel('Type').selectOption(type);
  if (appName) {
    await create.getByLabel('App').selectOption({ label: appName });
    await create.getByRole('group', { name: 'Environments' }).getByRole('checkbox', { name: 'Staging' }).waitFor();
    await create.getByRole('group', { name: 'Environments' }).getByRole('checkbox', { name: 'Production' }).uncheck();
    await create.getByRole('checkbox', { name: 'update' }).check();
  }
  await create.getByRole('button', { name: 'Create token' }).click();
  const shown = page.getByRole('region', { name: 'New token' });
  await shown.getByText('it is shown only this once').waitFor();
  return {
    shown,
    token: await shown.getByLabel('Token', { exact: true }).inputValue(),
    phaseToken: await shown.getByLabel('Phase token').inputValue(),
  };
}

test('a service token is created, shown once with copy buttons, and listed without its secret', async () => {
  const { app } = await makeApp('tokens');
  const page = await openPage(browser);
  await signIn(page);
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
  const { shown, token, phaseToken } = await createToken(page, { name: 'ci-deploy', type: 'service', appName: app.name });
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.ok(phaseToken.startsWith('pss_service:v2:'), phaseToken.slice(0, 16));
  await shown.getByRole('button', { name: 'Copy token' }).click();
  await eventually(async () => (await page.evaluate(() => navigator.clipboard.readText())) === token, 'the token copied');
  await shown.getByRole('button', { name: 'Copy phase token' }).click();
  await eventually(async () => (await page.evaluate(() => navigator.clipboard.readText())) === phaseToken, 'the Phase token copied');
  await screenshot(page, 'tokens');

  const row = page.getByRole('table', { name: 'Tokens' }).getByRole('row')
    .filter({ has: page.getByRole('rowheader', { name: 'ci-deploy' }) });
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /read, update/);
  assert.match(text, /Development, Staging/);
  assert.ok(!text.includes(token));
  const { data } = await adminApi('GET', '/tokens/');
  const made = data.find((item) => item.name === 'ci-deploy');
  assert.deepEqual(made.permissions.sort(), ['read', 'update']);
  assert.equal(made.environments.length, 2);

  const form = page.getByRole('form', { name: 'Create token' });
  assert.equal(await form.getByRole('checkbox', { name: 'read' }).isChecked(), true, 'the form is back to its defaults');
  await shown.getByRole('button', { name: 'Done' }).click();
  await shown.waitFor({ state: 'detached' });
  assert.equal(await page.getByText(token).count(), 0, 'the token is gone from the page');

  await row.getByRole('button', { name: 'Revoke ci-deploy' }).click();
  const dialog = page.getByRole('dialog', { name: 'Revoke ci-deploy?' });
  await dialog.getByText('stops working at once').waitFor();
  await dialog.getByRole('button', { name: 'Revoke ci-deploy' }).click();
  await eventually(async () => (await row.count()) === 0, 'the token gone from the list');
  assertNoConsoleProblems(page);
  await page.context().close();
});

test('revoking the token you are signed in with signs you out with the server message', async () => {
  const admin = await openPage(browser);
  await signIn(admin);
  await admin.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
  const { token } = await createToken(admin, { name: 'second-admin', type: 'user' });

  const page = await openPage(browser);
  await signIn(page, token);
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await page.getByRole('button', { name: 'Revoke second-admin' }).click();
  await page.getByRole('dialog', { name: 'Revoke second-admin?' })
    .getByRole('button', { name: 'Revoke second-admin' }).click();
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  await page.getByRole('alert').getByText('Token expired or deleted').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  assertNoConsoleProblems(page);
  await page.context().close();
  await admin.context().close();
});

test('a token revoked in another tab sends its open table to sign-in', async () => {
  const { app } = await makeApp('revoked');
  const made = await adminApi('POST', '/tokens/', { body: { name: 'watcher', type: 'user' } });
  const page = await openPage(browser);
  await signIn(page, made.token);
  await page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: app.name }).click();
  await page.getByRole('table', { name: 'Environments' }).getByRole('link', { name: 'Staging' }).click();
  await page.getByRole('heading', { name: 'Staging secrets' }).waitFor();

  const other = await openPage(browser);
  await signIn(other);
  await other.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).click();
  await other.getByRole('button', { name: 'Revoke watcher' }).click();
  await other.getByRole('dialog', { name: 'Revoke watcher?' }).getByRole('button', { name: 'Revoke watcher' }).click();
  await eventually(async () => (await other.getByRole('button', { name: 'Revoke watcher' }).count()) === 0, 'revoked');

  // The open table's next call (its live feed) is refused.
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor({ timeout: 15_000 });
  await page.getByRole('alert').getByText('Token expired or deleted').waitFor();
  assertNoConsoleProblems(page);
  assertNoConsoleProblems(other);
});

test('a Service token opens its environment, and a 403 for a missing permission signs it out', async () => {
  const { app } = await makeApp('scoped');
  await adminApi('POST', '/secrets/', { query: { app_id: app.id, env: 'Staging' }, body: { secrets: [{ key: 'VISIBLE', value: 'v' }] } });
  const made = await adminApi('POST', '/tokens/', {
    body: { name: 'reader', type: 'service', appId: app.id, environments: ['Staging'], permissions: ['read'] },
  });
  const page = await openPage(browser);
  await page.goto(`${BASE}/console/`);
  await page.getByLabel('Token type').selectOption('Service');
  await page.getByLabel('Token', { exact: true }).fill(made.token);
  await page.getByLabel('App ID').fill(app.id);
  await page.getByLabel('Environment').fill('Production');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const env = page.getByLabel('Environment');
  await eventually(async () => (await env.getAttribute('aria-invalid')) === 'true', 'the environment refused');
  assert.match(await env.evaluate((element) => document.getElementById(element.getAttribute('aria-describedby').split(' ').pop()).textContent),
    /Service token cannot access this environment/);

  await env.fill('Staging');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Staging secrets' }).waitFor();
  await page.getByRole('rowheader', { name: 'VISIBLE' }).waitFor();
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tokens' }).isVisible(), false);

  await page.getByRole('button', { name: 'Add secret' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a secret to Staging' });
  await dialog.getByLabel('Key').fill('NOT_ALLOWED');
  await dialog.getByRole('button', { name: 'Add secret' }).click();
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  await page.getByRole('alert').getByText("You don't have permission to create secrets in this environment.").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await page.context().close();
});
