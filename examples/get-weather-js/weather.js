// Exports of world example:get-weather/get-weather (wit/get-weather.wit).
//
// Environment variables come from `wasi:cli/environment`, which the sandbox
// fills with exactly the variables the component's policy grants. `fetch`
// goes through the sandbox's network gate: a host the policy does not grant
// is refused before any packet leaves the machine.
import { getEnvironment } from 'wasi:cli/environment@0.2.12';

const DEFAULT_BASE = 'https://api.openweathermap.org';

function env(name) {
  const pair = getEnvironment().find(([key]) => key === name);
  return pair ? pair[1] : undefined;
}

async function getJson(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    // The URL carries the API key: name only where the request went.
    throw `cannot reach ${new URL(url).origin} for ${what}: ${e}`;
  }
  if (!response.ok) {
    throw `${what} failed: HTTP ${response.status}`;
  }
  return response.json();
}

export async function getWeather(city) {
  const key = env('OPENWEATHER_API_KEY');
  if (!key) {
    throw (
      'OPENWEATHER_API_KEY is not visible to this component: grant it with ' +
      '`wassette permission grant environment-variable get-weather-js OPENWEATHER_API_KEY` ' +
      '(and set it in the server environment or with --env), or store it with ' +
      '`wassette secret set get-weather-js OPENWEATHER_API_KEY=...`'
    );
  }
  if (!city.trim()) throw 'city must not be empty';
  const base = (env('OPENWEATHER_API_BASE') || DEFAULT_BASE).replace(/\/+$/, '');
  const q = encodeURIComponent(city.trim());
  const appid = encodeURIComponent(key);

  const places = await getJson(`${base}/geo/1.0/direct?q=${q}&limit=1&appid=${appid}`, 'the city lookup');
  if (!Array.isArray(places) || places.length === 0) throw `unknown city: ${city}`;
  const { lat, lon, name, country } = places[0];

  const data = await getJson(
    `${base}/data/2.5/weather?lat=${lat}&lon=${lon}&units=metric&appid=${appid}`,
    'the weather request',
  );
  return {
    city: name,
    country: country || '',
    temperatureCelsius: Number(data.main.temp),
    conditions: (data.weather && data.weather[0] && data.weather[0].description) || '',
    humidityPercent: Math.max(0, Math.min(100, Math.round(Number(data.main.humidity) || 0))),
    windSpeedMps: Number((data.wind && data.wind.speed) || 0),
  };
}
