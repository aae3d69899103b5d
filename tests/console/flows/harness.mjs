// What every flow shares: Debian's Chromium started headless, the server's address and
// admin token (from run.sh), API calls made beside the page (as another client would),
// a watch on the page's console, and screenshots of the main screens.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const BASE = process.env.COFFER_URL;
export const ADMIN_TOKEN = process.env.COFFER_ADMIN_TOKEN;
if (!BASE || !ADMIN_TOKEN) throw new Error('run through tests/console/run.sh');

const SCREENSHOTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'console');

/** Chromium as the CI machine has it; fails (never skips) when it cannot start. */
export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 60_000,
  });
}

/**
 * A fresh page (its own context, so its own session storage) that records what its
 * console reports. `problems()` lists page errors and console errors other than the
 * network lines Chromium prints for the API's expected 4xx answers.
 */
export async function openPage(browser, { width = 1280, height = 900, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({
    viewport: { width, height },
    colorScheme,
    permissions: ['clipboard-read', 'clipboard-write'],
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const seen = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') seen.push(message.text());
  });
  page.on('pageerror', (error) => seen.push(`page error: ${error.message}`));
  page.problems = () => seen.filter((text) =>
    !/^Failed to load resource: the server responded with a status of (403|404|409|400)/.test(text));
  return page;
}

/** Asserts the page logged no error (a CSP violation is logged as one). */
export function assertNoConsoleProblems(page) {
  assert.deepEqual(page.problems(), [], 'the page logged errors');
}

/** Calls the API as the admin, from outside the page. */
export async function adminApi(method, path, { query, body } = {}) {
  const url = new URL(`/v1${path}`, BASE);
  for (const [name, value] of Object.entries(query ?? {})) url.searchParams.set(name, value);
  const response = await fetch(url, {
    method,
    headers: {
      Authorization: `Bearer User ${ADMIN_TOKEN}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return data;
}

/**
 * An app made through the API; `{app, envs}`. Each run.sh starts on an empty data
 * directory, so plain names are free (and the screenshots the same from run to run).
 */
export async function makeApp(name) {
  const app = await adminApi('POST', '/apps/', { body: { name } });
  return { app, envs: Object.fromEntries(app.environments.map((env) => [env.name, env])) };
}

/** Signs in through the form with `token` (the admin's by default). */
export async function signIn(page, token = ADMIN_TOKEN, type = 'User') {
  await page.goto(`${BASE}/console/`);
  await page.getByRole('heading', { name: 'Sign in to Coffer' }).waitFor();
  await page.getByLabel('Token type').selectOption(type);
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Writes `docs/console/<name>.png`. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Waits until `check()` holds (the page updates on its own). */
export async function eventually(check, what, timeout = 10_000) {
  const until = Date.now() + timeout;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
