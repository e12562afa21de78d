// Exports of world wassette-examples:fetch/summariser (wit/summariser.wit).
import { fetch as fetchPage } from 'wassette-examples:fetch/fetcher@0.1.0';

export function summarise(url, maxWords) {
  let text;
  try {
    text = fetchPage(url);
  } catch (e) {
    // An imported function's `err` arrives as an exception with its payload.
    throw `the fetcher failed: ${e.payload ?? e}`;
  }
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const lines = text.split('\n').length;
  const shown = words.slice(0, maxWords ?? 20).join(' ');
  return `${words.length} words, ${lines} lines: ${shown}${words.length > (maxWords ?? 20) ? ' ...' : ''}`;
}

export async function fetchDirect(url) {
  let response;
  try {
    response = await globalThis.fetch(url);
  } catch (e) {
    throw `cannot fetch ${url}: ${e}`;
  }
  return `${response.status} ${await response.text()}`;
}
