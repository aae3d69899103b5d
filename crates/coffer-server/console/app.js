// The console's entry: hash routes (ids and names only, never a value) to views.
// Each view gets an AbortSignal that fires when the user navigates away, which ends
// its requests and its live updates.

import * as api from './api.js';
import * as session from './session.js';
import { fill, h } from './dom.js';
import { signIn } from './view-signin.js';
import { appList, appPage } from './view-apps.js';
import { secretsPage } from './view-secrets.js';
import { comparePage } from './view-compare.js';
import { historyPage } from './view-history.js';
import { auditPage } from './view-audit.js';
import { tokensPage } from './view-tokens.js';

const ROUTES = [
  [/^#\/signin$/, signIn],
  [/^#\/apps$/, appList],
  [/^#\/apps\/([\w-]+)$/, appPage],
  [/^#\/apps\/([\w-]+)\/compare$/, comparePage],
  [/^#\/apps\/([\w-]+)\/envs\/([\w-]+)$/, secretsPage],
  [/^#\/apps\/([\w-]+)\/envs\/([\w-]+)\/secrets\/([\w-]+)$/, historyPage],
  [/^#\/audit$/, auditPage],
  [/^#\/tokens$/, tokensPage],
];

let leaving = new AbortController();

function home() {
  const scope = session.current()?.scope;
  return scope ? `#/apps/${scope.appId}/envs/${scope.envId}` : '#/apps';
}

async function render() {
  leaving.abort();
  leaving = new AbortController();
  const signal = leaving.signal;
  const signedIn = session.current();
  const nav = document.getElementById('nav');
  nav.hidden = !signedIn;
  for (const link of nav.querySelectorAll('a')) {
    link.hidden = Boolean(signedIn?.scope);
    if (link.getAttribute('href') === location.hash.split('/').slice(0, 2).join('/')) {
      link.setAttribute('aria-current', 'page');
    } else {
      link.removeAttribute('aria-current');
    }
  }
  if (!signedIn && location.hash !== '#/signin') {
    location.replace('#/signin');
    return;
  }
  if (signedIn && (location.hash === '#/signin' || location.hash === '' || location.hash === '#')) {
    location.replace(home());
    return;
  }
  const main = document.getElementById('main');
  const route = ROUTES.find(([pattern]) => pattern.test(location.hash));
  // A Service token reaches only its environment's pages (the rest are User routes).
  const reachable = route && (!signedIn?.scope || route[1] === secretsPage || route[1] === historyPage);
  if (!reachable) {
    location.replace(signedIn ? home() : '#/signin');
    return;
  }
  const params = route[0].exec(location.hash).slice(1);
  fill(main);
  try {
    await route[1]({ main, params, signal });
  } catch (error) {
    if (signal.aborted || error?.signedOut) return;
    fill(main, h('p', { class: 'form-error', role: 'alert' }, error?.message ?? 'Something went wrong.'));
  }
  if (!signal.aborted) main.querySelector('h1')?.focus();
}

api.whenSignedOut(() => {
  if (location.hash === '#/signin') render();
  else location.hash = '#/signin';
});

document.getElementById('sign-out').addEventListener('click', () => {
  session.end('You are signed out.');
  location.hash = '#/signin';
});

// What a button's action could not do (its form shows its own errors): a refused
// call is shown above the page; after a 403 the sign-in page says why.
window.addEventListener('unhandledrejection', (event) => {
  if (!(event.reason instanceof api.ApiError)) return;
  event.preventDefault();
  if (!event.reason.signedOut) document.getElementById('problem').textContent = event.reason.message;
});

window.addEventListener('hashchange', () => {
  document.getElementById('problem').textContent = '';
  render();
});
render();
