// Every undocumented internal of a dependency that src/ relies on, each with its exact pin and a
// check of the shape it relies on, so that an upgrade that changes one fails here, by name, rather
// than somewhere else or not at all. Why each is kept, and what it buys: docs/performance.md,
// "Private internals". The behaviour built on each is tested elsewhere (named beside each).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PGlite } from '@electric-sql/pglite';
import express from 'express';
import pg from 'pg';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { createHttpServer } from '../src/http/graceful-server.js';
import { compileValidatorRoutesOnce } from '../src/http/route-matchers.js';
import { securityHeaders } from '../src/http/security-headers.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>;
  overrides: Record<string, string>;
};
const require = createRequire(import.meta.url);
// The hoisted copy, the only one the lock file has of each.
const installed = (name: string) =>
  (JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;

describe('dependencies whose internals src/ uses are pinned to the version checked here', () => {
  it.each([
    ['pg', pkg.dependencies.pg],
    ['express-openapi-validator', pkg.dependencies['express-openapi-validator']],
    ['@electric-sql/pglite', pkg.dependencies['@electric-sql/pglite']],
    ['helmet', pkg.dependencies.helmet],
    ['pg-pool', pkg.overrides['pg-pool']],
    ['path-to-regexp', pkg.overrides['path-to-regexp']],
  ])('%s is pinned exactly, and installed at that version', (name, pinned) => {
    expect(pinned, `${name} in package.json`).toMatch(/^\d+\.\d+\.\d+$/);
    expect(installed(name)).toBe(pinned);
  });
});

describe("node-postgres's Query and Client internals", () => {
  it('Query.prepare, hasBeenParsed and the connection record of parsed statements (src/db/preluded-query.ts; tests/database.test.ts)', () => {
    const query = new pg.Query('SELECT 1') as unknown as Record<string, unknown>;
    expect(typeof query.prepare).toBe('function');
    expect(typeof query.hasBeenParsed).toBe('function');
    expect(typeof query.requiresPreparation).toBe('function');
    const Connection = require('pg/lib/connection.js') as new () => Record<string, unknown>;
    const connection = new Connection();
    expect(connection.parsedStatements).toEqual({});
    for (const m of ['parse', 'bind', 'describe', 'execute']) expect(typeof connection[m], m).toBe('function');
  });

  it('the authentication handlers and saslSession (src/db/channel-binding.ts; tests/channel-binding.test.ts)', () => {
    const proto = pg.Client.prototype as unknown as Record<string, unknown>;
    for (const m of [
      '_handleAuthCleartextPassword',
      '_handleAuthMD5Password',
      '_handleAuthSASL',
      '_handleAuthSASLFinal',
      '_handleReadyForQuery',
    ]) {
      expect(typeof proto[m], m).toBe('function');
    }
    // The final message's handler clears the session only once the server's signature verified.
    expect(String(proto._handleAuthSASLFinal)).toMatch(/finalizeSession\(this\.saslSession[\s\S]*this\.saslSession = null/);
  });

  it("pg-pool's options, read for each new connection (the TLS fallback of src/db/postgres.ts; tests/faults/tls.test.ts)", () => {
    const pool = new pg.Pool({ ssl: false, max: 1 });
    const options = (pool as unknown as { options: pg.PoolConfig }).options;
    expect(options.ssl).toBe(false);
    expect(String(pool.connect)).toContain('newClient');
    expect(String((pool as unknown as { newClient: unknown }).newClient)).toContain('this.options');
  });
});

describe("express-openapi-validator's internals", () => {
  it('its own path-to-regexp, whose pathToRegexp export is memoized (src/http/route-matchers.ts)', () => {
    compileValidatorRoutesOnce();
    const fromValidator = createRequire(require.resolve('express-openapi-validator'))('path-to-regexp') as {
      pathToRegexp: { memoized?: true };
    };
    expect(fromValidator.pathToRegexp.memoized).toBe(true);
    const metadata = readFileSync(require.resolve('express-openapi-validator/dist/middlewares/openapi.metadata.js'), 'utf8');
    expect(metadata).toMatch(/path_to_regexp_1\.pathToRegexp\)\(expressRoute, pathOpts\)/);
  });
});

describe("Node's http constructors, called on objects of the app's prototypes (src/http/express-born.ts)", () => {
  it('requests and responses are born with the app prototypes and served as usual', async () => {
    const app = express();
    app.get('/born', (req, res) => {
      res.json({ request: Object.getPrototypeOf(req) === app.request, response: Object.getPrototypeOf(res) === app.response });
    });
    const server = createHttpServer(app, { headersMs: 5000, requestMs: 10_000, keepAliveMs: 1000 });
    const res = await request(server).get('/born');
    expect(res.body).toEqual({ request: true, response: true });
  });
});

describe("helmet's middleware, run once at start against a response that only records headers (src/http/security-headers.ts)", () => {
  it('sets its headers synchronously through setHeader alone, and they are what a response gets', async () => {
    const app = express();
    app.use(securityHeaders());
    app.get('/h', (_req, res) => {
      res.json({});
    });
    const res = await request(app).get('/h');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    // securityHeaders() throws at start when helmet does not finish synchronously on the recorder.
    expect(() => securityHeaders()).not.toThrow();
  });
});

describe("PGlite's exclusive runners (src/db/pglite-named.js, which falls back to query() without them)", () => {
  it('_runExclusiveQuery and _runExclusiveTransaction exist', () => {
    const proto = PGlite.prototype as unknown as Record<string, unknown>;
    expect(typeof proto._runExclusiveQuery).toBe('function');
    expect(typeof proto._runExclusiveTransaction).toBe('function');
  });
});
