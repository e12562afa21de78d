// Exports of world example:fetch/fetch (wit/fetch.wit).
//
// The export is called `fetch`, which would hide the global `fetch` inside
// this module, so the global is taken from `globalThis`.

const httpFetch = globalThis.fetch;

export async function fetch(url, maxChars) {
  let target;
  try {
    target = new URL(url);
  } catch {
    throw `not a valid URL: ${JSON.stringify(url)}`;
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw `only http and https URLs can be fetched, not ${target.protocol}`;
  }
  let response;
  try {
    response = await httpFetch(target.href, { headers: { accept: 'text/html, application/json, text/*' } });
  } catch (e) {
    throw `cannot fetch ${target.origin}: ${e}`;
  }
  if (!response.ok) {
    throw `${target.href}: HTTP ${response.status}`;
  }
  const type = (response.headers.get('content-type') || 'text/plain').toLowerCase();
  const body = await response.text();
  let text;
  if (type.includes('html')) {
    text = htmlToMarkdown(body, target);
  } else if (type.includes('json')) {
    try {
      text = JSON.stringify(JSON.parse(body), null, 2);
    } catch {
      text = body;
    }
  } else if (type.startsWith('text/') || type.includes('xml')) {
    text = body;
  } else {
    throw `${target.href}: cannot show content of type ${type}`;
  }
  const limit = maxChars == null ? Infinity : maxChars;
  return text.length > limit ? `${text.slice(0, limit)}\n\n[... ${text.length - limit} more characters]` : text;
}

// -- HTML to Markdown: a small converter for readable text, not a full parser.

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', mdash: '—', ndash: '–', hellip: '…', copy: '©' };

function decode(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

function attr(attrs, name) {
  const m = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(attrs);
  return m ? decode(m[2] ?? m[3] ?? m[4] ?? '') : '';
}

function resolve(href, base) {
  try {
    return new URL(href, base).href;
  } catch {
    return href;
  }
}

const BLOCK = new Set(['p', 'div', 'section', 'article', 'main', 'header', 'footer', 'nav', 'aside', 'table', 'tr', 'form', 'figure', 'ul', 'ol', 'dl']);

export function htmlToMarkdown(html, base) {
  const titleMatch = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  const title = titleMatch ? decode(titleMatch[1]).replace(/\s+/g, ' ').trim() : '';
  const cleaned = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<![^>]*>/g, '')
    .replace(/<(script|style|noscript|template|svg|head)\b[\s\S]*?<\/\1\s*>/gi, '');

  const out = [];
  const links = []; // open <a>: [href, index in out where its text starts]
  const lists = []; // open lists: 'ul' | 'ol', with item counters
  let pre = 0;
  const emit = (s) => out.push(s);
  const token = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)([^>]*)>|([^<]+)|</g;
  let m;
  while ((m = token.exec(cleaned)) !== null) {
    if (m[4] !== undefined || m[0] === '<') {
      const text = decode(m[4] ?? '<');
      emit(pre ? text : text.replace(/\s+/g, ' '));
      continue;
    }
    const closing = m[1] === '/';
    const tag = m[2].toLowerCase();
    const attrs = m[3];
    if (/^h[1-6]$/.test(tag)) {
      emit(closing ? '\n\n' : `\n\n${'#'.repeat(Number(tag[1]))} `);
    } else if (tag === 'br') {
      emit('  \n');
    } else if (tag === 'hr') {
      emit('\n\n---\n\n');
    } else if (tag === 'pre') {
      pre += closing ? -1 : 1;
      emit(closing ? '\n```\n\n' : '\n\n```\n');
    } else if (tag === 'code' && !pre) {
      emit('`');
    } else if (tag === 'strong' || tag === 'b') {
      emit('**');
    } else if (tag === 'em' || tag === 'i') {
      emit('*');
    } else if (tag === 'blockquote') {
      emit(closing ? '\n\n' : '\n\n> ');
    } else if (tag === 'ul' || tag === 'ol') {
      if (closing) lists.pop();
      else lists.push({ tag, n: 0 });
      emit('\n');
    } else if (tag === 'li' && !closing) {
      const list = lists[lists.length - 1] || { tag: 'ul', n: 0 };
      list.n += 1;
      const indent = '  '.repeat(Math.max(0, lists.length - 1));
      emit(`\n${indent}${list.tag === 'ol' ? `${list.n}.` : '-'} `);
    } else if (tag === 'a') {
      if (!closing) {
        links.push([attr(attrs, 'href'), out.length]);
      } else if (links.length) {
        const [href, start] = links.pop();
        const text = out.splice(start).join('').trim();
        if (href && !href.startsWith('javascript:')) emit(`[${text || href}](${resolve(href, base)})`);
        else emit(text);
      }
    } else if (tag === 'img' && !closing) {
      const src = attr(attrs, 'src');
      if (src) emit(`![${attr(attrs, 'alt')}](${resolve(src, base)})`);
    } else if (tag === 'td' || tag === 'th') {
      if (!closing) emit(' | ');
    } else if (BLOCK.has(tag)) {
      emit('\n\n');
    }
  }
  const body = out
    .join('')
    .split('\n')
    .map((line) => (line.startsWith('```') ? line : line.replace(/[ \t]+$/g, '').replace(/^ (?=\S)/, '')))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  // The page's <title> heads the text, unless the page has a top heading of its own.
  return title && !/^# /m.test(body) ? `# ${title}\n\n${body}` : body;
}
