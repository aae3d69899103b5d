// The one way the console talks to the REST API. A 403 ends the session: the
// server's message is shown on the sign-in page.

import * as session from './session.js';

/** An unsuccessful answer: the server's `error` message and `code`. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onSignedOut = () => {};

/** Called after a 403 has ended the session. */
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

/**
 * Calls `/v1{path}`. `query` holds only names and ids (never a value); `body` is sent
 * as JSON. Resolves to the parsed body (null for 204).
 */
export async function call(method, path, { query, body, signal, keepSession = false } = {}) {
  const signedIn = session.current();
  const url = new URL(`/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const headers = { Accept: 'application/json' };
  if (signedIn) headers.Authorization = `Bearer ${signedIn.type} ${signedIn.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const error = new ApiError(
    response.status,
    data?.error ?? `The server answered ${response.status}.`,
    data?.code,
  );
  if (response.status === 403 && !keepSession) {
    error.signedOut = true;
    session.end(error.message);
    onSignedOut();
  }
  throw error;
}

/** The secrets of one environment, values as stored (references unresolved). */
export function secrets(appId, env, signal) {
  return call('GET', '/secrets/', { query: { app_id: appId, env, resolve: 'false' }, signal });
}

/** The form field an error concerns, from its code (null: the form as a whole). */
export function fieldOf(error) {
  switch (error?.code) {
    case 'duplicate_secret':
    case 'invalid_key':
    case 'key_required':
      return 'key';
    case 'invalid_path':
      return 'path';
    case 'tag_too_long':
    case 'too_many_tags':
    case 'invalid_tags':
      return 'tags';
    case 'value_required':
      return 'value';
    case 'field_too_large':
      return /^'(\w+)'/.exec(error.message)?.[1] ?? null;
    case 'app_exists':
    case 'invalid_app_name':
    case 'environment_exists':
    case 'invalid_environment_name':
    case 'invalid_token_name':
      return 'name';
    case 'description_too_long':
      return 'description';
    case 'invalid_cidr':
      return 'allowedIps';
    case 'invalid_expiry':
      return 'expiresAt';
    case 'service_token_scope_required':
      return 'environments';
    case 'invalid_permission':
      return 'permissions';
    default:
      return null;
  }
}
