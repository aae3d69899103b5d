// The signed-in token, kept in this tab's session storage only (never local storage,
// never a cookie, never the URL), and the notice shown on the sign-in page.

const KEY = 'coffer.session';
let notice = '';

/** The current session `{type, token, scope}`, or null when signed out. */
export function current() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

export function start(session) {
  sessionStorage.setItem(KEY, JSON.stringify(session));
  notice = '';
}

/** Forgets the token; `message` is shown on the sign-in page. */
export function end(message = '') {
  sessionStorage.removeItem(KEY);
  notice = message;
}

/** The message left by the last sign-out, read once. */
export function takeNotice() {
  const message = notice;
  notice = '';
  return message;
}
