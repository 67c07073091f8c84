// Configuration is checked at start; a bad value names its variable.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('has working defaults for a fresh machine', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ env: 'development', port: 8000, databaseUrl: undefined, migrateOnStart: true, validateResponses: true });
    expect(c.corsOrigins).toEqual(['http://localhost:3000']);
    expect(c.dataDir).toMatch(/data$/);
  });

  it('falls back from JWT_SECRET to BETTER_AUTH_SECRET', () => {
    expect(loadConfig({ BETTER_AUTH_SECRET: 'b' }).auth.secret).toBe('b');
    expect(loadConfig({ JWT_SECRET: 'j', BETTER_AUTH_SECRET: 'b' }).auth.secret).toBe('j');
  });

  it('derives JWKS URL, issuer and audience from BETTER_AUTH_URL, explicit values winning', () => {
    expect(loadConfig({ BETTER_AUTH_URL: 'https://app.example.com/' }).auth).toMatchObject({
      jwksUrl: 'https://app.example.com/api/auth/jwks',
      issuer: 'https://app.example.com',
      audience: 'https://app.example.com',
    });
    expect(
      loadConfig({ BETTER_AUTH_URL: 'https://app.example.com', JWKS_URL: 'https://keys.example.com/jwks', JWT_AUDIENCE: 'api' }).auth,
    ).toMatchObject({ jwksUrl: 'https://keys.example.com/jwks', issuer: 'https://app.example.com', audience: 'api' });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ DB_POOL_MAX: '0' }, /DB_POOL_MAX/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL/],
    [{ JWKS_URL: 'ftp://x/jwks' }, /JWKS_URL/],
    [{ MIGRATE_ON_START: 'maybe' }, /MIGRATE_ON_START/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV/],
    [{ NODE_ENV: 'production' }, /JWKS_URL or JWT_SECRET/],
  ])('refuses %o naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('turns response validation off in production unless asked for', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 's' }).validateResponses).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 's', VALIDATE_RESPONSES: 'true' }).validateResponses).toBe(true);
  });
});
