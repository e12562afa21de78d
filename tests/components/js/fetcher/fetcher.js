// Exports `wassette-examples:fetch/fetcher@0.1.0` (wit/fetcher.wit).
const httpFetch = globalThis.fetch;

export const fetcher = {
  async fetch(url) {
    let response;
    try {
      response = await httpFetch(url);
    } catch (e) {
      throw `cannot fetch ${url}: ${e}`;
    }
    if (!response.ok) {
      throw `${url}: HTTP ${response.status}`;
    }
    return await response.text();
  },
};
