// Reading a pasted .env: `KEY=value` lines, `export` prefixes, `#` comments, single-
// and double-quoted values (double quotes may span lines and know \n, \t, \", \\).

/** An error on a line of the paste. */
export class DotenvError extends Error {}

const ESCAPES = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

/** `[{key, value, comment}]` in the order written; a repeated key is an error. */
export function parseDotenv(text) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const entries = [];
  const seen = new Map();
  for (let index = 0; index < lines.length; index += 1) {
    const lineNumber = index + 1;
    let line = lines[index].trim();
    if (!line || line.startsWith('#')) continue;
    line = line.replace(/^export\s+/, '');
    const equals = line.indexOf('=');
    if (equals <= 0) throw new DotenvError(`Line ${lineNumber}: expected KEY=value.`);
    const key = line.slice(0, equals).trim();
    let rest = line.slice(equals + 1).trim();
    let value;
    let comment = '';
    if (rest.startsWith('"')) {
      let body = rest.slice(1);
      let end = closingQuote(body);
      while (end === body.length) {
        index += 1;
        if (index >= lines.length) throw new DotenvError(`Line ${lineNumber}: the quote is never closed.`);
        body += `\n${lines[index]}`;
        end = closingQuote(body);
      }
      value = body.slice(0, end).replace(/\\(.)/g, (all, char) => ESCAPES[char] ?? all);
      comment = trailingComment(body.slice(end + 1), lineNumber);
    } else if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw new DotenvError(`Line ${lineNumber}: the quote is never closed.`);
      value = rest.slice(1, end);
      comment = trailingComment(rest.slice(end + 1), lineNumber);
    } else {
      const hash = rest.search(/\s#/);
      if (hash >= 0) {
        comment = rest.slice(hash).trim().replace(/^#\s*/, '');
        rest = rest.slice(0, hash);
      }
      value = rest.trim();
    }
    const upper = key.toUpperCase();
    if (seen.has(upper)) {
      throw new DotenvError(`Line ${lineNumber}: ${key} is already set on line ${seen.get(upper)}.`);
    }
    seen.set(upper, lineNumber);
    entries.push({ key, value, comment });
  }
  return entries;
}

function closingQuote(body) {
  for (let i = 0; i < body.length; i += 1) {
    if (body[i] === '\\') i += 1;
    else if (body[i] === '"') return i;
  }
  return body.length;
}

function trailingComment(after, lineNumber) {
  const rest = after.trim();
  if (!rest) return '';
  if (!rest.startsWith('#')) throw new DotenvError(`Line ${lineNumber}: text after the closing quote.`);
  return rest.replace(/^#\s*/, '');
}
