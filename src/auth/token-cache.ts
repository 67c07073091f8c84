// Verified tokens, remembered until their own `exp` (or JWT_MAX_AGE, when sooner) and never beyond, so a frontend that reuses one
// token for many calls pays for the signature check once. Bounded: the least recently used entry
// goes first. Only successes are cached; a refused token is checked again every time.
import type { TokenVerifier, VerifiedToken } from './verify-token.js';

export function cachedVerifier(inner: TokenVerifier, opts: { maxEntries: number; now?: () => number }): TokenVerifier {
  if (opts.maxEntries <= 0) return inner;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, { value: VerifiedToken; expiresAtMs: number }>();

  return {
    algorithms: inner.algorithms,
    async verify(token: string): Promise<VerifiedToken> {
      const hit = entries.get(token);
      if (hit) {
        entries.delete(token);
        if (now() < hit.expiresAtMs) {
          entries.set(token, hit); // most recently used goes last
          return hit.value;
        }
      }
      const value = await inner.verify(token);
      // The verifier requires a finite exp; without one there is nothing safe to cache against.
      if (Number.isFinite(value.validUntil)) {
        entries.set(token, { value, expiresAtMs: value.validUntil * 1000 });
        if (entries.size > opts.maxEntries) entries.delete(entries.keys().next().value as string);
      }
      return value;
    },
  };
}
