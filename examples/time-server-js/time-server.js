// Exports of world example:time-server/time-server (wit/time-server.wit).
//
// jco turns WIT kebab-case names into camelCase: `get-current-time` is
// `getCurrentTime`. For a function returning `result<T, E>`, a returned value
// is `ok(value)` and a thrown value is `err(value)`.
//
// StarlingMonkey (the JS engine jco uses) has no Intl time-zone database, so
// zones are given as UTC offsets.

export function getCurrentTime() {
  return new Date().toISOString();
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

function offsetMinutes(text) {
  const t = text.trim().toUpperCase();
  if (t === 'Z' || t === 'UTC' || t === 'GMT') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(t);
  if (!m) throw `cannot parse UTC offset ${JSON.stringify(text)} (use +05:30, -08:00 or Z)`;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  if (Number(m[3]) > 59 || minutes > 14 * 60) throw `UTC offset out of range: ${text}`;
  return m[1] === '-' ? -minutes : minutes;
}

export function convertTime(timestamp, utcOffset) {
  const ms = Date.parse(timestamp);
  if (Number.isNaN(ms)) throw `cannot parse timestamp ${JSON.stringify(timestamp)} (use ISO 8601)`;
  const offset = offsetMinutes(utcOffset);
  // Shift the instant, then read it with the UTC getters: that is the wall
  // clock at the requested offset.
  const d = new Date(ms + offset * 60_000);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `.${pad(d.getUTCMilliseconds(), 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}
