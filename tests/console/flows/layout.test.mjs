// The console at 360 px and on a desktop, light and dark from the system, and driven
// by the keyboard alone.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, BASE, adminApi, assertNoConsoleProblems, launch, makeApp, openPage, screenshot, signIn,
} from './harness.mjs';

let browser;
let app;
before(async () => {
  browser = await launch();
  ({ app } = await makeApp('phone'));
  await adminApi('POST', '/secrets/', {
    query: { app_id: app.id, env: 'Development' },
    body: { secrets: [{ key: 'A_RATHER_LONG_SECRET_KEY_NAME', value: 'x'.repeat(80), tags: ['one', 'two'] }] },
  });
});
after(() => browser?.close());

/** Whether the page itself scrolls sideways (a table may, inside its own box). */
function overflowsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth);
}

test('at 360 px wide, in dark mode, the secrets table fits and a secret can be added', async () => {
  const page = await openPage(browser, { width: 360, height: 740, colorScheme: 'dark' });
  await signIn(page);
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
  assert.equal(await overflowsSideways(page), false, 'the apps page scrolls sideways');
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, 'rgb(19, 22, 21)', 'dark colours follow the system');
  await page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: app.name }).click();
  await page.getByRole('table', { name: 'Environments' }).getByRole('link', { name: 'Development' }).click();
  await page.getByRole('heading', { name: 'Development secrets' }).waitFor();
  assert.equal(await overflowsSideways(page), false, 'the secrets page scrolls sideways');
  await page.getByRole('button', { name: 'Add secret' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add a secret to Development' });
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 360, `the dialog fits: ${JSON.stringify(box)}`);
  await dialog.getByLabel('Key').fill('FROM_A_PHONE');
  await dialog.getByLabel('Value').fill('small');
  await dialog.getByRole('button', { name: 'Add secret' }).click();
  await page.getByRole('rowheader', { name: 'FROM_A_PHONE' }).waitFor();
  await screenshot(page, 'phone-dark');
  assertNoConsoleProblems(page);
  await page.context().close();
});

test('light colours on a desktop follow the system too', async () => {
  const page = await openPage(browser, { colorScheme: 'light' });
  await page.goto(`${BASE}/console/`);
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, 'rgb(247, 247, 245)');
  await page.context().close();
});

// The router focuses a page's title once the route has rendered whole, after its
// requests: the heading can be on screen a moment before it has the focus.
async function assertTitleFocused(page, message) {
  await page
    .waitForFunction(() => document.activeElement?.tagName === 'H1', null, { timeout: 5000 })
    .catch(() => {});
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', message);
}

test('signing in and opening an app work from the keyboard alone', async () => {
  const page = await openPage(browser);
  await page.goto(`${BASE}/console/`);
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  await assertTitleFocused(page, 'the page title has the focus');
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement.labels?.[0]?.textContent);
  assert.equal(focused, 'Token type');
  await page.keyboard.press('Tab');
  await page.keyboard.type(ADMIN_TOKEN);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
  await assertTitleFocused(page, 'the new page title has the focus');
  const link = page.getByRole('table', { name: 'Apps' }).getByRole('link', { name: app.name });
  for (let presses = 0; presses < 40 && !(await link.evaluate((element) => element === document.activeElement)); presses += 1) {
    await page.keyboard.press('Tab');
  }
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: app.name, level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Rename app' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: `Rename ${app.name}` });
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assertNoConsoleProblems(page);
  await page.context().close();
});
