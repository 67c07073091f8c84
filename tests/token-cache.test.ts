// The verified-token cache: one signature check per token, never past its exp, bounded in size.
import { describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/mint-token.js';
import { cachedVerifier } from '../src/auth/token-cache.js';
import { createTokenVerifier, TokenError, type TokenVerifier } from '../src/auth/verify-token.js';
import { TEST_SECRET } from './helpers/app.js';

function counting(inner: TokenVerifier) {
  const calls = { n: 0 };
  return {
    calls,
    verifier: {
      algorithms: inner.algorithms,
      verify: (t: string) => {
        calls.n++;
        return inner.verify(t);
      },
    } satisfies TokenVerifier,
  };
}

const real = createTokenVerifier({ secret: TEST_SECRET, clockToleranceSec: 0 });

describe('cachedVerifier', () => {
  it('checks a reused token once', async () => {
    const { calls, verifier } = counting(real);
    const cached = cachedVerifier(verifier, { maxEntries: 10 });
    const token = await mintToken({ secret: TEST_SECRET, userId: 'u1' });
    for (let i = 0; i < 5; i++) expect((await cached.verify(token)).userId).toBe('u1');
    expect(calls.n).toBe(1);
  });

  it('never serves a token past its exp', async () => {
    let clock = Date.now();
    const { calls, verifier } = counting(real);
    const cached = cachedVerifier(verifier, { maxEntries: 10, now: () => clock });
    const token = await mintToken({ secret: TEST_SECRET, userId: 'u1', ttlSec: 60 });
    await cached.verify(token);
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;
    clock = exp * 1000 - 1;
    await cached.verify(token);
    expect(calls.n).toBe(1);
    clock = exp * 1000; // the cache lets go at exp; the verifier is asked again
    await cached.verify(token);
    expect(calls.n).toBe(2);
  });

  it('does not cache refusals', async () => {
    const { calls, verifier } = counting(real);
    const cached = cachedVerifier(verifier, { maxEntries: 10 });
    const bad = await mintToken({ secret: 'another-secret-another-secret-1234', userId: 'u' });
    await expect(cached.verify(bad)).rejects.toBeInstanceOf(TokenError);
    await expect(cached.verify(bad)).rejects.toBeInstanceOf(TokenError);
    expect(calls.n).toBe(2);
  });

  it('holds at most maxEntries, dropping the least recently used', async () => {
    const { calls, verifier } = counting(real);
    const cached = cachedVerifier(verifier, { maxEntries: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((u) => mintToken({ secret: TEST_SECRET, userId: u })));
    await cached.verify(a!);
    await cached.verify(b!);
    await cached.verify(a!); // a is now the most recent
    await cached.verify(c!); // evicts b
    expect(calls.n).toBe(3);
    await cached.verify(a!);
    expect(calls.n).toBe(3);
    await cached.verify(b!);
    expect(calls.n).toBe(4);
  });
});
