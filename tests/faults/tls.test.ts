// DATABASE_URL's sslmode, sslrootcert and channel_binding mean what libpq documents, against a real
// TLS-only PostgreSQL with a private CA (tls-cluster.ts): require encrypts without verifying,
// verify-ca and verify-full verify (with sslrootcert for the private CA), channel_binding=require
// connects with SCRAM-SHA-256-PLUS and refuses an MD5 role; every refusal is one line naming its
// cause; and the server started with Neon's URL shape says no SECURITY WARNING.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../../src/db/postgres.js';
import { dbKind } from '../helpers/db.js';
import { startServer } from './process.js';
import { startTlsCluster, tlsClusterUnavailable, type TlsCluster } from './tls-cluster.js';

const unavailable = dbKind === 'postgres' ? tlsClusterUnavailable() : 'a PostgreSQL-mode test';
// CI must run it: there, a missing prerequisite is a failure, not a skip.
if (unavailable && process.env.CI === 'true' && dbKind === 'postgres') throw new Error(`the TLS test cannot run: ${unavailable}`);

describe.skipIf(unavailable)(`a TLS-only PostgreSQL with a private CA${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let cluster: TlsCluster;
  beforeAll(async () => {
    cluster = await startTlsCluster();
  }, 120_000);
  afterAll(() => cluster?.stop());

  const url = (params: string, user = 'app', host = 'localhost', database = 'neondb', password?: string) =>
    `postgresql://${user}:${password ?? cluster.password}@${host}:${cluster.port}/${database}?${params}`;

  /** Connects and asks whether the session is encrypted; the error message when it cannot. */
  async function attempt(connectionString: string): Promise<{ ssl: boolean } | { error: string }> {
    const db = createPostgresDatabase({ connectionString, poolMax: 1, statementTimeoutMs: 5000, connectTimeoutMs: 5000 });
    try {
      const { rows } = await db.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return { ssl: rows[0]!.ssl };
    } catch (err) {
      return { error: (err as Error).message };
    } finally {
      await db.close();
    }
  }

  it('sslmode=require encrypts without verifying the certificate; prefer (and no sslmode) use TLS when offered', async () => {
    expect(await attempt(url('sslmode=require'))).toEqual({ ssl: true });
    expect(await attempt(url('sslmode=prefer'))).toEqual({ ssl: true });
    expect(await attempt(url(''))).toEqual({ ssl: true });
  });

  it('verify-full and verify-ca check the chain against sslrootcert; verify-full also the host name', async () => {
    const untrusted = await attempt(url('sslmode=verify-full'));
    expect(untrusted).toEqual({ error: expect.stringMatching(/not signed by a trusted CA: add sslrootcert=/) });
    expect(await attempt(url(`sslmode=verify-full&sslrootcert=${cluster.caFile}`))).toEqual({ ssl: true });
    // The certificate names localhost, not 127.0.0.1: verify-full refuses, verify-ca does not.
    expect(await attempt(url(`sslmode=verify-full&sslrootcert=${cluster.caFile}`, 'app', '127.0.0.1'))).toEqual({
      error: expect.stringMatching(/not for this host name/),
    });
    expect(await attempt(url(`sslmode=verify-ca&sslrootcert=${cluster.caFile}`, 'app', '127.0.0.1'))).toEqual({ ssl: true });
    // libpq: require with a root certificate verifies the chain as verify-ca does.
    expect(await attempt(url(`sslmode=require&sslrootcert=${cluster.caFile}`, 'app', '127.0.0.1'))).toEqual({ ssl: true });
  });

  it('channel_binding=require connects with SCRAM-SHA-256-PLUS and refuses an MD5 role; prefer lets the MD5 role in', async () => {
    expect(await attempt(url('sslmode=require&channel_binding=require'))).toEqual({ ssl: true });
    expect(await attempt(url('sslmode=require&channel_binding=require', 'legacy'))).toEqual({
      error: 'cannot connect to PostgreSQL: channel binding required, but server authenticated client without channel binding',
    });
    expect(await attempt(url('sslmode=require&channel_binding=prefer', 'legacy'))).toEqual({ ssl: true });
  });

  it('a wrong password, a missing database and TLS refused each fail in one line naming the cause', async () => {
    const failures = [
      await attempt(url('sslmode=require', 'app', 'localhost', 'neondb', 'wrong')),
      await attempt(url('sslmode=require', 'app', 'localhost', 'no_such_db')),
      await attempt(url('sslmode=disable')),
    ].map((r) => ('error' in r ? r.error : 'connected'));
    expect(failures[0]).toMatch(/password authentication failed: check the user and password in DATABASE_URL/);
    expect(failures[1]).toMatch(/database "no_such_db" does not exist: check the database name/);
    expect(failures[2]).toMatch(/refused this connection: .*no encryption/);
    for (const f of failures) expect(f).not.toContain('\n');
  });

  it("the server started with Neon's URL shape serves over TLS with channel binding, and says no SECURITY WARNING", {
    timeout: 90_000,
  }, async () => {
    const server = await startServer({ DATABASE_URL: url('sslmode=require&channel_binding=require') });
    try {
      const ready = await fetch(`${server.base}/ready`);
      expect(ready.status).toBe(200);
      expect(server.output()).not.toMatch(/SECURITY WARNING|sslmode/);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    // With the MD5 role it does not start, and says why in one line.
    const refused = await startServer({ DATABASE_URL: url('sslmode=require&channel_binding=require', 'legacy') }).then(
      () => 'started',
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/Failed to start: cannot connect to PostgreSQL: channel binding required/);
  });
});
