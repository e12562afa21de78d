// Outgoing HTTP probe: one fetch per call, result as "<status> <body>".
export async function fetchUrl(url, method) {
  let response;
  try {
    response = await fetch(url, { method });
  } catch (e) {
    throw `fetch failed: ${e}`;
  }
  const body = await response.text();
  return `${response.status} ${body.slice(0, 65536)}`;
}
