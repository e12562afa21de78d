// Exports of world test:time-server/time-server (wit/time-server.wit).
// WIT kebab-case names become camelCase; for a `result` return, returning a
// value gives ok(value) and throwing gives err(thrown value).

export function getCurrentTime() {
  return new Date().toISOString();
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

export function convertTime(iso, offsetMinutes) {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) {
    throw `cannot parse timestamp: ${JSON.stringify(iso)}`;
  }
  if (offsetMinutes < -720 || offsetMinutes > 840) {
    throw `offset out of range (-720..840 minutes): ${offsetMinutes}`;
  }
  // Shift the instant and read it back with the UTC getters: that gives the
  // wall-clock time at the requested offset without relying on Intl/tz data.
  const d = new Date(ms + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `.${pad(d.getUTCMilliseconds(), 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}
