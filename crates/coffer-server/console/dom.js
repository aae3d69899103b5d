// Building the page: elements from data (text is always set as text, never parsed as
// HTML, and no inline style is ever written), labelled form fields with their error
// beside them, dialogs, and the polite announcer.

let nextId = 0;

/** A fresh element id. */
export function uid(prefix = 'id') {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * `h('button', {type: 'button', onclick}, 'Save')`. Props starting with `on` are
 * listeners; `value`, `checked` and `disabled` are set as properties (with their
 * defaults, for reset()); false or null
 * props are left out; children are nodes or strings (added as text).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else if (name === 'value') {
      // The default too, so a form's reset() comes back to it.
      if ('defaultValue' in element) element.defaultValue = value;
      element.value = value;
    } else if (name === 'checked') {
      element.defaultChecked = Boolean(value);
      element.checked = Boolean(value);
    } else if (name === 'disabled') {
      element.disabled = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `element`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Says `message` to screen readers (and shows nothing). */
export function announce(message) {
  const announcer = document.getElementById('announcer');
  announcer.textContent = '';
  // A change of text after a tick is announced even when it repeats.
  setTimeout(() => {
    announcer.textContent = message;
  }, 50);
}

/**
 * A labelled input with its error line: `{row, input, error}`. `spec`: label, name,
 * type (text, password, textarea, select, number, checkbox-group), value, hint,
 * options ([value, label] for select and checkbox-group), required, autocomplete.
 */
export function field(spec) {
  const id = uid(spec.name);
  const errorId = `${id}-error`;
  const hintId = spec.hint ? `${id}-hint` : null;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ');
  const error = h('p', { class: 'field-error', id: errorId });
  const hint = spec.hint ? h('p', { class: 'hint', id: hintId }, spec.hint) : null;
  let input;
  if (spec.type === 'checkbox-group') {
    const boxes = spec.options.map(([value, label, checked]) =>
      h('label', { class: 'check' },
        h('input', { type: 'checkbox', name: spec.name, value, checked: Boolean(checked) }), label));
    input = h('fieldset', { class: 'group', 'aria-describedby': describedBy },
      h('legend', {}, spec.label), boxes);
    input.values = () =>
      [...input.querySelectorAll('input:checked')].map((box) => box.value);
    return { row: h('div', { class: 'field' }, input, hint, error), input, error };
  }
  const common = {
    id,
    name: spec.name,
    required: spec.required,
    autocomplete: spec.autocomplete ?? 'off',
    spellcheck: 'false',
    'aria-describedby': describedBy,
  };
  if (spec.type === 'textarea') {
    input = h('textarea', { ...common, rows: spec.rows ?? 4, value: spec.value ?? '' });
  } else if (spec.type === 'select') {
    input = h('select', common,
      spec.options.map(([value, label]) => h('option', { value }, label)));
    if (spec.value !== undefined) input.value = spec.value;
  } else {
    input = h('input', {
      ...common,
      type: spec.type ?? 'text',
      value: spec.value ?? '',
      placeholder: spec.placeholder,
      min: spec.min,
    });
  }
  const row = h('div', { class: 'field' }, h('label', { for: id }, spec.label), input, hint, error);
  return { row, input, error };
}

/** Shows `message` beside the field (or clears it when empty). */
export function setFieldError(item, message) {
  item.error.textContent = message ?? '';
  if (message) item.input.setAttribute('aria-invalid', 'true');
  else item.input.removeAttribute('aria-invalid');
}

/**
 * A form of fields with one error line for what belongs to no field.
 * `onSubmit(values, form)` may throw an ApiError; `fieldOf(error)` names the field
 * the error concerns. Returns `{form, fields, setError, clearErrors}`.
 */
export function form({ label, fields, submit, onSubmit, fieldOf, extra = [] }) {
  const items = Object.fromEntries(fields.map((spec) => [spec.name, field(spec)]));
  const formError = h('p', { class: 'form-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'primary' }, submit);
  const element = h('form', { 'aria-label': label, novalidate: true },
    Object.values(items).map((item) => item.row), extra, formError, h('div', { class: 'actions' }, button));
  const clearErrors = () => {
    formError.textContent = '';
    for (const item of Object.values(items)) setFieldError(item, '');
  };
  const setError = (error) => {
    const name = fieldOf?.(error);
    const item = name && items[name];
    if (item) {
      setFieldError(item, error.message);
      (item.input.querySelector?.('input') ?? item.input).focus();
    } else {
      formError.textContent = error.message;
    }
  };
  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors();
    const values = Object.fromEntries(Object.entries(items).map(([name, item]) =>
      [name, item.input.values ? item.input.values() : item.input.value]));
    button.disabled = true;
    try {
      await onSubmit(values, element);
    } catch (error) {
      if (!error?.signedOut) setError(error);
    } finally {
      button.disabled = false;
    }
  });
  return { form: element, fields: items, setError, clearErrors, formError };
}

/**
 * A modal dialog titled `title` holding `content`; resolves when closed. `build(close)`
 * returns the content, so its buttons can close it.
 */
export function dialog(title, build) {
  return new Promise((resolve) => {
    const titleId = uid('dialog-title');
    const element = h('dialog', { 'aria-labelledby': titleId });
    const close = (result) => {
      element.close();
      element.remove();
      resolve(result);
    };
    element.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(undefined);
    });
    fill(element, h('h2', { id: titleId }, title), build(close));
    document.body.append(element);
    element.showModal();
  });
}

/** Asks to confirm `question` (nodes or text); resolves true when confirmed. */
export function confirmAction({ title, question, confirm, danger = true }) {
  return dialog(title, (close) => [
    h('div', { class: 'question' }, question),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => close(false) }, 'Cancel'),
      h('button', { type: 'button', class: danger ? 'danger' : 'primary', onclick: () => close(true) }, confirm)),
  ]).then(Boolean);
}

/** Copies `text` to the clipboard; announces `what` was copied (never the text). */
export async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    announce(`Copied ${what}.`);
    return true;
  } catch {
    announce(`Could not copy ${what}: the browser refused the clipboard.`);
    return false;
  }
}

/** A timestamp as a short local date and time. */
export function when(timestamp) {
  if (!timestamp) return '—';
  const date = new Date(timestamp);
  return h('time', { datetime: timestamp }, date.toLocaleString(undefined, {
    dateStyle: 'medium', timeStyle: 'short',
  }));
}

/** A table with a caption, header cells and rows, scrolling sideways on narrow screens. */
export function table(caption, headers, rows, empty = 'Nothing here yet.') {
  const body = rows.length
    ? rows
    : [h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, empty))];
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((title) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, body)));
}

/** The page title (focused after each navigation, for keyboards and screen readers). */
export function heading(text) {
  return h('h1', { tabindex: '-1' }, text);
}

/** "Apps › shop › Development" */
export function crumbs(...links) {
  return h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' },
    h('ol', {}, links.map(([label, href]) =>
      h('li', {}, href ? h('a', { href }, label) : h('span', { 'aria-current': 'page' }, label)))));
}

/**
 * Runs `redraw` (which replaces what `container` holds) and puts the focus back on the
 * control of the same accessible name, so a keyboard user keeps their place when a
 * table is redrawn.
 */
export function keepFocus(container, redraw) {
  const focused = document.activeElement;
  const name = container.contains(focused) ? focused.getAttribute('aria-label') : null;
  redraw();
  if (!name) return;
  const again = [...container.querySelectorAll('[aria-label]')]
    .find((element) => element.getAttribute('aria-label') === name
      || element.getAttribute('aria-label') === name.replace(/^(Reveal|Hide)/, (word) => (word === 'Reveal' ? 'Hide' : 'Reveal')));
  again?.focus();
}
