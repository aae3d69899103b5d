// Apps, environments and the secrets table: create, duplicate, stale edit, search,
// tag filter, reveal one at a time, copy, .env paste, delete, and live refresh.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  BASE, adminApi, assertNoConsoleProblems, eventually, launch, openPage, screenshot, signIn,
} from './harness.mjs';

let browser;
let page;
/** Every URL the page asked for. */
const requested = [];
before(async () => {
  browser = await launch();
  page = await openPage(browser);
  page.on('request', (request) => requested.push(request.url()));
  await signIn(page);
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
});
after(() => browser?.close());

const appName = 'shop';
let appId;
let devId;

/** The row of the secrets table whose key cell is `key`. */
function row(key) {
  return page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: key, exact: true }) });
}

/** The text of the element describing `input` (its hint and error). */
async function description(input) {
  return input.evaluate((element) => element.getAttribute('aria-describedby').split(' ')
    .map((id) => document.getElementById(id).textContent).join(' '));
}

test('an app is created with its three environments', async () => {
  const create = page.getByRole('form', { name: 'Create app' });
  await create.getByLabel('Name').fill(appName);
  await create.getByRole('button', { name: 'Create app' }).click();
  await page.getByRole('heading', { name: appName, level: 1 }).waitFor();
  const envs = page.getByRole('table', { name: 'Environments' });
  for (const name of ['Development', 'Staging', 'Production']) {
    await envs.getByRole('link', { name }).waitFor();
  }
  appId = /#\/apps\/([\w-]+)/.exec(page.url())[1];
  const app = await adminApi('GET', `/apps/${appId}/`);
  assert.equal(app.name, appName);
  devId = (await adminApi('GET', '/environments/', { query: { app_id: appId } }))
    .data.find((env) => env.name === 'Development').id;
});

test('an app of the same name is refused at its name field', async () => {
  await page.getByRole('link', { name: 'Apps' }).first().click();
  const create = page.getByRole('form', { name: 'Create app' });
  await create.getByLabel('Name').fill(appName.toUpperCase());
  await create.getByRole('button', { name: 'Create app' }).click();
  const name = create.getByLabel('Name');
  await eventually(async () => (await name.getAttribute('aria-invalid')) === 'true', 'the name marked invalid');
  assert.match(await description(name), new RegExp(`An app named '${appName.toUpperCase()}' already exists.`));
  assert.equal(await create.getByLabel('Environments').inputValue(), 'Development, Staging, Production',
    'the form keeps its default environments');
  await page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: appName }).click();
  await page.getByRole('heading', { name: appName, level: 1 }).waitFor();
});

test('secrets are added, masked, and revealed one at a time', async () => {
  await page.getByRole('table', { name: 'Environments' }).getByRole('link', { name: 'Development' }).click();
  await page.getByRole('heading', { name: 'Development secrets' }).waitFor();
  for (const [key, value, tags] of [['db_url', 'postgres://db/shop', 'db'], ['API_KEY', 'k-123', 'api, external']]) {
    await page.getByRole('button', { name: 'Add secret' }).click();
    const dialog = page.getByRole('dialog', { name: 'Add a secret to Development' });
    await dialog.getByLabel('Key').fill(key);
    await dialog.getByLabel('Value').fill(value);
    await dialog.getByLabel('Tags').fill(tags);
    await dialog.getByRole('button', { name: 'Add secret' }).click();
    await dialog.waitFor({ state: 'detached' });
  }
  const table = page.getByRole('table', { name: 'Secrets in Development' });
  await row('DB_URL').waitFor();
  await row('API_KEY').waitFor();
  assert.ok(!(await table.innerText()).includes('postgres://db/shop'), 'a value is shown before it is asked for');
  await page.getByRole('button', { name: 'Reveal value of DB_URL' }).click();
  await row('DB_URL').getByText('postgres://db/shop').waitFor();
  await page.getByRole('button', { name: 'Reveal value of API_KEY' }).click();
  await row('API_KEY').getByText('k-123').waitFor();
  assert.ok(!(await table.innerText()).includes('postgres://db/shop'), 'revealing one hides the other');
  await page.getByRole('button', { name: 'Hide value of API_KEY' }).click();
  assert.ok(!(await table.innerText()).includes('k-123'));

  await page.getByRole('button', { name: 'Copy value of DB_URL' }).click();
  await eventually(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'postgres://db/shop',
    'the value on the clipboard');
});

test('a duplicate key is refused with the message at the key field', async () => {
  await page.getByRole('button', { name: 'Add secret' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a secret to Development' });
  await dialog.getByLabel('Key').fill('Db_Url');
  await dialog.getByLabel('Value').fill('other');
  await dialog.getByRole('button', { name: 'Add secret' }).click();
  const key = dialog.getByLabel('Key');
  await eventually(async () => (await key.getAttribute('aria-invalid')) === 'true', 'the key marked invalid');
  assert.match(await description(key), /Duplicate secret found/);
  assert.ok(await key.evaluate((element) => element === document.activeElement), 'the key field has the focus');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  const secrets = await adminApi('GET', '/secrets/', { query: { app_id: appId, env: 'Development' } });
  assert.equal(secrets.length, 2);
});

test('a stale edit is answered with the version conflict in words', async () => {
  await page.getByRole('button', { name: 'Edit DB_URL' }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit DB_URL' });
  await dialog.getByText('Editing version 1').waitFor();
  const [secret] = await adminApi('GET', '/secrets/', { query: { app_id: appId, env: 'Development', key: 'DB_URL' } });
  await adminApi('PUT', '/secrets/', {
    query: { app_id: appId, env: 'Development' },
    body: { secrets: [{ id: secret.id, value: 'postgres://db/changed-elsewhere' }] },
  });
  await dialog.getByLabel('Value').fill('postgres://db/mine');
  await dialog.getByRole('button', { name: 'Save' }).click();
  const alert = dialog.getByRole('alert');
  await alert.getByText('you edited version 1, it is now at version 2').waitFor();
  assert.match(await alert.innerText(), /Secret version conflict: expected 1, current 2/);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  const [after] = await adminApi('GET', '/secrets/', { query: { app_id: appId, env: 'Development', key: 'DB_URL' } });
  assert.equal(after.value, 'postgres://db/changed-elsewhere');

  await page.getByRole('button', { name: 'Edit DB_URL' }).click();
  const fresh = page.getByRole('dialog', { name: 'Edit DB_URL' });
  await fresh.getByText('Editing version 2').waitFor();
  await fresh.getByLabel('Value').fill('postgres://db/mine');
  await fresh.getByRole('button', { name: 'Save' }).click();
  await fresh.waitFor({ state: 'detached' });
  await row('DB_URL').getByRole('cell', { name: '3', exact: true }).waitFor();
});

test('search and the tag filter narrow the table', async () => {
  await page.getByRole('searchbox', { name: 'Search' }).fill('api');
  await eventually(async () => (await row('DB_URL').count()) === 0, 'DB_URL filtered out');
  await row('API_KEY').waitFor();
  await page.getByRole('searchbox', { name: 'Search' }).fill('');
  await page.getByLabel('Tag').selectOption('db');
  await eventually(async () => (await row('API_KEY').count()) === 0, 'API_KEY filtered out');
  await row('DB_URL').waitFor();
  await page.getByLabel('Tag').selectOption('');
  await row('API_KEY').waitFor();
});

test('a pasted .env is imported in one batch, and one naming a taken key is refused', async () => {
  await page.getByRole('button', { name: 'Paste .env' }).click();
  let dialog = page.getByRole('dialog', { name: 'Paste a .env into Development' });
  await dialog.getByLabel('.env contents').fill('# from the old server\nexport REDIS_URL=redis://cache:6379\nFEATURE_X="on" # rollout\n');
  await dialog.getByRole('button', { name: 'Import' }).click();
  await dialog.waitFor({ state: 'detached' });
  await row('REDIS_URL').waitFor();
  await row('FEATURE_X').waitFor();

  await page.getByRole('button', { name: 'Paste .env' }).click();
  dialog = page.getByRole('dialog', { name: 'Paste a .env into Development' });
  const contents = dialog.getByLabel('.env contents');
  await contents.fill('NEW_ONE=1\nREDIS_URL=redis://other\n');
  await dialog.getByRole('button', { name: 'Import' }).click();
  await eventually(async () => (await contents.getAttribute('aria-invalid')) === 'true', 'the paste marked invalid');
  assert.match(await description(contents), /Duplicate secret found: REDIS_URL already exists at \//);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  const secrets = await adminApi('GET', '/secrets/', { query: { app_id: appId, env: 'Development' } });
  assert.deepEqual(secrets.map((secret) => secret.key).sort(), ['API_KEY', 'DB_URL', 'FEATURE_X', 'REDIS_URL']);
});

test('a write by another client shows up in the open table', async () => {
  await adminApi('POST', '/secrets/', {
    query: { app_id: appId, env: 'Development' },
    body: { secrets: [{ key: 'WRITTEN_ELSEWHERE', value: 'x' }] },
  });
  await row('WRITTEN_ELSEWHERE').waitFor({ timeout: 15_000 });
  await screenshot(page, 'secrets');
});

test('a secret is deleted after a confirmation naming it', async () => {
  await page.getByRole('button', { name: 'Delete WRITTEN_ELSEWHERE' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete WRITTEN_ELSEWHERE?' });
  await dialog.getByText('from Development').waitFor();
  await dialog.getByRole('button', { name: 'Delete WRITTEN_ELSEWHERE' }).click();
  await eventually(async () => (await row('WRITTEN_ELSEWHERE').count()) === 0, 'the row gone');
  assert.equal(devId.length, 36);
  assertNoConsoleProblems(page);
});

test('a deleted secret is found under Deleted secrets and brought back by a rollback', async () => {
  await page.getByText('Deleted secrets', { exact: true }).click();
  await page.getByRole('link', { name: 'History of deleted WRITTEN_ELSEWHERE' }).click();
  await page.getByRole('heading', { name: 'History of WRITTEN_ELSEWHERE' }).waitFor();
  await page.getByText('Deleted at version 2; roll back to bring it back.').waitFor();
  await page.getByRole('button', { name: 'Roll back to version 1' }).click();
  await page.getByRole('dialog', { name: 'Roll back WRITTEN_ELSEWHERE?' })
    .getByRole('button', { name: 'Roll back to version 1' }).click();
  await page.getByText('Now at version 3.', { exact: true }).waitFor();
  await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Development' }).click();
  await row('WRITTEN_ELSEWHERE').waitFor();
  assertNoConsoleProblems(page);
});

test('no value ever appears in a URL the page asked for, nor in local storage; no other origin is asked', async () => {
  assert.ok(requested.some((url) => url.includes('/v1/secrets/')), 'the flows above read secrets');
  for (const value of ['postgres://db/shop', 'postgres://db/mine', 'k-123', 'redis://cache:6379']) {
    for (const spelling of [value, encodeURIComponent(value)]) {
      assert.ok(!requested.some((url) => url.includes(spelling)), `${value} in a URL`);
    }
  }
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.deepEqual(requested.filter((url) => !url.startsWith(`${BASE}/`)), [], 'a request to another origin');
});

test('environments are added, renamed and deleted; the app is deleted naming what goes with it', async () => {
  await page.goto(page.url().replace(/\/envs\/.*$/, ''));
  await page.getByRole('heading', { name: appName, level: 1 }).waitFor();
  const add = page.getByRole('form', { name: 'Add environment' });
  await add.getByLabel('Environment name').fill('qa');
  await add.getByRole('button', { name: 'Add environment' }).click();
  const envs = page.getByRole('table', { name: 'Environments' });
  await envs.getByRole('link', { name: 'qa', exact: true }).waitFor();
  await page.getByRole('button', { name: 'Rename qa' }).click();
  const rename = page.getByRole('dialog', { name: 'Rename qa' });
  await rename.getByLabel('Name', { exact: true }).fill('Development');
  await rename.getByRole('button', { name: 'Save' }).click();
  const nameField = rename.getByLabel('Name', { exact: true });
  await eventually(async () => (await nameField.getAttribute('aria-invalid')) === 'true', 'the rename refused');
  assert.match(await description(nameField), /An environment named 'Development' already exists in this app./);
  await nameField.fill('Preview');
  await rename.getByRole('button', { name: 'Save' }).click();
  await envs.getByRole('link', { name: 'Preview' }).waitFor();
  await page.getByRole('button', { name: 'Delete Preview' }).click();
  const confirmEnv = page.getByRole('dialog', { name: 'Delete Preview?' });
  await confirmEnv.getByText('also deletes every secret in it').waitFor();
  await confirmEnv.getByRole('button', { name: 'Delete Preview' }).click();
  await eventually(async () => (await envs.getByRole('link', { name: 'Preview' }).count()) === 0, 'Preview gone');

  await page.getByRole('link', { name: 'Apps' }).first().click();
  await page.getByRole('button', { name: `Delete ${appName}` }).click();
  const confirmApp = page.getByRole('dialog', { name: `Delete ${appName}?` });
  await confirmApp.getByText('its 3 environments: Development, Staging, Production').waitFor();
  await confirmApp.getByText('every service token scoped to it').waitFor();
  await confirmApp.getByRole('button', { name: `Delete ${appName}` }).click();
  const apps = page.getByRole('table', { name: 'Apps' });
  await eventually(async () => (await apps.getByRole('link', { name: appName }).count()) === 0, 'the app gone');
  const { data } = await adminApi('GET', '/apps/');
  assert.ok(!data.some((app) => app.id === appId));
  assertNoConsoleProblems(page);
});
