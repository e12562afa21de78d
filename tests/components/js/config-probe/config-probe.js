// Configuration through wasi:config/store (get / get-all).
import { get, getAll } from 'wasi:config/store@0.2.0-draft';

export function getConfig(key) {
  return get(key);
}

export function configKeys() {
  return getAll().map(([k]) => k).sort();
}
