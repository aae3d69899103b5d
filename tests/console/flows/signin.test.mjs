// Signing in and out, and the headers the console is served with.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_TOKEN, BASE, assertNoConsoleProblems, launch, openPage, screenshot, signIn } from './harness.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('the console is served with a strict Content-Security-Policy', async () => {
  const page = await openPage(browser);
  const response = await page.goto(`${BASE}/console/`);
  const headers = response.headers();
  assert.equal(response.status(), 200);
  const csp = headers['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /style-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  assertNoConsoleProblems(page);
  await page.context().close();
});

test('a wrong token is refused with the server message and nothing is kept', async () => {
  const page = await openPage(browser);
  await signIn(page, 'f'.repeat(64));
  await page.getByText('Token expired or deleted').waitFor();
  assert.equal(await page.getByLabel('Token', { exact: true }).getAttribute('aria-invalid'), 'true');
  const stored = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length }));
  assert.deepEqual(stored, { session: 0, local: 0 });
  await page.context().close();
});

test('signing in keeps the token in session storage only, and signing out forgets it', async () => {
  const page = await openPage(browser);
  await signIn(page);
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
  assert.ok(page.url().endsWith('#/apps'), page.url());
  assert.ok(!page.url().includes(ADMIN_TOKEN));
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('coffer.session'),
    local: localStorage.length,
  }));
  assert.ok(stored.session.includes(ADMIN_TOKEN));
  assert.equal(stored.local, 0);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  await page.getByText('You are signed out.').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  await screenshot(page, 'sign-in');
  assertNoConsoleProblems(page);
  await page.context().close();
});
