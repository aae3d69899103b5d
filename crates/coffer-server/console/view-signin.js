// Signing in with a token typed in. The token is checked against the API before the
// session starts; a User token opens the whole console, a Service token its scope.

import * as api from './api.js';
import * as session from './session.js';
import { fill, form, h, heading } from './dom.js';

/**
 * What a Service token opens: the app id and environment typed in, or where left empty,
 * its app and first environment from `/v1/tokens/self/`.
 */
async function serviceScope(typed) {
  let self = null;
  try {
    self = await api.call('GET', '/tokens/self/', { keepSession: true });
  } catch (error) {
    if (error.status === 403) throw error;
  }
  // What was typed wins; what is left empty comes from the token's own scope.
  const first = self?.environments?.[0];
  const scope = {
    appId: typed.appId.trim() || self?.appId || '',
    envId: typed.env.trim() || (first?.id ?? first ?? ''),
  };
  if (!scope.appId || !scope.envId) {
    throw new api.ApiError(400, 'A Service token needs its app id and environment.', 'scope_required');
  }
  // Reading the environment proves the token may (and the scope is right).
  await api.call('GET', '/secrets/', {
    query: { app_id: scope.appId, env: scope.envId, resolve: 'false' }, keepSession: true,
  });
  return scope;
}

/** The sign-in field each scope error concerns (any other error: the token). */
const SCOPE_FIELDS = {
  scope_required: 'appId',
  invalid_app_id: 'appId',
  app_not_found: 'appId',
  app_out_of_scope: 'appId',
  environment_not_found: 'env',
  environment_out_of_scope: 'env',
};

export async function signIn({ main }) {
  const notice = session.takeNotice();
  const { form: element, fields } = form({
    label: 'Sign in',
    submit: 'Sign in',
    fields: [
      {
        name: 'type', label: 'Token type', type: 'select', value: 'User',
        options: [['User', 'User'], ['Service', 'Service']],
      },
      {
        name: 'token', label: 'Token', type: 'password', required: true,
        hint: 'Kept in this tab only, and forgotten when you sign out or close it.',
      },
      { name: 'appId', label: 'App ID', hint: 'For a Service token: the app it belongs to.' },
      { name: 'env', label: 'Environment', hint: 'For a Service token: an environment it may read.' },
    ],
    fieldOf: (error) => SCOPE_FIELDS[error.code] ?? 'token',
    onSubmit: async ({ type, token, appId, env }) => {
      const typed = token.trim();
      if (!typed) throw new api.ApiError(400, 'Type a token.');
      session.start({ type, token: typed });
      try {
        try {
          await api.call('GET', '/apps/', { keepSession: true });
        } catch (error) {
          if (error.code !== 'user_token_required') throw error;
          session.start({ type, token: typed, scope: await serviceScope({ appId, env }) });
        }
      } catch (error) {
        session.end();
        throw error;
      }
      const { scope } = session.current();
      location.hash = scope ? `#/apps/${scope.appId}/envs/${scope.envId}` : '#/apps';
    },
  });
  const showScope = () => {
    const service = fields.type.input.value === 'Service';
    fields.appId.row.hidden = !service;
    fields.env.row.hidden = !service;
  };
  fields.type.input.addEventListener('change', showScope);
  showScope();
  fill(main, 
    h('section', { class: 'signin' },
      heading('Sign in to Coffer'),
      notice ? h('p', { class: 'notice', role: 'alert' }, notice) : null,
      h('p', {}, 'Paste a User token (or a Service token, for its environments).'),
      element),
  );
}
