// Signing in with a token typed in. The token is checked against the API before the
// session starts; a User token opens the whole console, a Service token its scope.

import * as api from './api.js';
import * as session from './session.js';
import { form, h, heading, fill } from './dom.js';

/** What a Service token may open: its app and first environment, from `/v1/tokens/self/`. */
async function serviceScope() {
  const self = await api.call('GET', '/tokens/self/', { keepSession: true });
  const first = self?.environments?.[0];
  const envId = first?.id ?? first;
  if (!self?.appId || !envId) throw new api.ApiError(403, 'This token reaches no environment.');
  return { appId: self.appId, envId };
}

export async function signIn({ main }) {
  const notice = session.takeNotice();
  const { form: element } = form({
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
    ],
    fieldOf: () => 'token',
    onSubmit: async ({ type, token }) => {
      const typed = token.trim();
      if (!typed) throw new api.ApiError(400, 'Type a token.');
      session.start({ type, token: typed });
      try {
        try {
          await api.call('GET', '/apps/', { keepSession: true });
        } catch (error) {
          if (error.code !== 'user_token_required') throw error;
          session.start({ type, token: typed, scope: await serviceScope() });
        }
      } catch (error) {
        session.end();
        throw error;
      }
      location.hash = '#/apps';
    },
  });
  fill(main, 
    h('section', { class: 'signin' },
      heading('Sign in to Coffer'),
      notice ? h('p', { class: 'notice', role: 'alert' }, notice) : null,
      h('p', {}, 'Paste a User token (or a Service token, for its environments).'),
      element),
  );
}
