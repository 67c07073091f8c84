// express-openapi-validator 5.6 finds a request's operation by compiling every documented route's
// path-to-regexp matcher anew, on every request (its middlewares/openapi.metadata.js; the open
// upstream PR cdimascio/express-openapi-validator#1217 caches them). A matcher depends on nothing
// but its route and two routing settings, so the validator's copy of path-to-regexp is given a
// pathToRegexp that compiles each of those once. Nothing else changes: the validator still scans
// the same routes in the same order.
import { createRequire } from 'node:module';

interface Compiled {
  regexp: RegExp;
  keys: unknown[];
}
type PathToRegexp = ((path: unknown, options?: Record<string, unknown>) => Compiled) & { memoized?: true };

const SETTINGS = new Set(['sensitive', 'strict']);

export function compileValidatorRoutesOnce(): void {
  const validatorRequire = createRequire(createRequire(import.meta.url).resolve('express-openapi-validator'));
  const pathToRegexp = validatorRequire('path-to-regexp') as { pathToRegexp: PathToRegexp };
  const compile = pathToRegexp.pathToRegexp;
  if (compile.memoized) return;
  const compiled = new Map<string, Compiled>();
  const memoized: PathToRegexp = (path, options = {}) => {
    // Only the validator's own call shape is remembered; anything else compiles as before.
    if (typeof path !== 'string' || !Object.keys(options).every((k) => SETTINGS.has(k))) return compile(path, options);
    const key = `${options.sensitive ? 's' : '-'}${options.strict ? 's' : '-'}${path}`;
    let hit = compiled.get(key);
    if (!hit) {
      hit = compile(path, options);
      compiled.set(key, hit);
    }
    return hit;
  };
  memoized.memoized = true;
  pathToRegexp.pathToRegexp = memoized;
}
