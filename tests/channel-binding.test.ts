// channel_binding=require against a server that skips SCRAM's proof: a man in the middle with any
// certificate (sslmode=require verifies none) offers SCRAM-SHA-256-PLUS, reads the client's first
// message and answers AuthenticationOk without the server-final message whose signature proves it
// knows the password's verifier. libpq refuses that server; so must this client, before it sends
// a single statement. The fake server here speaks just enough of the protocol over TLS.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../src/db/postgres.js';

const SSL_REQUEST = 80877103;

/** A self-signed certificate for localhost, made with openssl for this run. */
function certificate(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'todo-cb-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
      ].concat(['-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]),
      { stdio: 'ignore' },
    );
    return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const message = (type: string, body: Buffer) => {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

interface Fake {
  port: number;
  /** The types of the messages the client sent after authentication (a statement would be 'P' or 'Q'). */
  afterAuth: string[];
  /** The mechanism the client chose in its first SASL message. */
  mechanism: string | undefined;
  server: Server;
  sockets: Set<Socket>;
}

/**
 * Offers SCRAM-SHA-256-PLUS over TLS, then answers the client's first SASL message with
 * AuthenticationOk and ReadyForQuery: no server-first message, no server-final message, no proof.
 */
async function fakeServer(tls: { key: Buffer; cert: Buffer }): Promise<Fake> {
  const fake: Fake = { port: 0, afterAuth: [], mechanism: undefined, server: createServer(), sockets: new Set() };
  fake.server.on('connection', (raw: Socket) => {
    fake.sockets.add(raw);
    raw.on('close', () => fake.sockets.delete(raw));
    raw.on('error', () => {});
    raw.once('data', (first: Buffer) => {
      if (first.readInt32BE(4) !== SSL_REQUEST) return raw.destroy();
      raw.write('S');
      const secure = new TLSSocket(raw, { isServer: true, key: tls.key, cert: tls.cert });
      secure.on('error', () => {});
      let buffered = Buffer.alloc(0);
      let startup = true;
      let authenticated = false;
      secure.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          if (startup) {
            if (buffered.length < 4 || buffered.length < buffered.readInt32BE(0)) return;
            buffered = buffered.subarray(buffered.readInt32BE(0));
            startup = false;
            const mechanisms = Buffer.from('SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0', 'latin1');
            secure.write(message('R', Buffer.concat([int32(10), mechanisms])));
            continue;
          }
          if (buffered.length < 5 || buffered.length < 1 + buffered.readInt32BE(1)) return;
          const type = String.fromCharCode(buffered[0]!);
          const body = buffered.subarray(5, 1 + buffered.readInt32BE(1));
          buffered = buffered.subarray(1 + buffered.readInt32BE(1));
          if (authenticated) {
            fake.afterAuth.push(type);
          } else if (type === 'p') {
            fake.mechanism = body.subarray(0, body.indexOf(0)).toString('latin1');
            authenticated = true;
            // AuthenticationOk, a backend key, ReadyForQuery: "you are in", with nothing proven.
            secure.write(
              Buffer.concat([message('R', int32(0)), message('K', Buffer.concat([int32(1), int32(2)])), message('Z', Buffer.from('I'))]),
            );
          }
        }
      });
    });
  });
  await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
  fake.port = (fake.server.address() as AddressInfo).port;
  return fake;
}

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasOpenssl && process.env.CI === 'true') throw new Error('the channel-binding test needs openssl to make its certificate');

describe.skipIf(!hasOpenssl)('channel_binding=require against a server that never proves it knows the verifier', () => {
  let fake: Fake;
  beforeAll(async () => {
    fake = await fakeServer(certificate());
  });
  afterAll(async () => {
    for (const s of fake.sockets) s.destroy();
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });

  async function attempt(params: string): Promise<string> {
    const db = createPostgresDatabase({
      connectionString: `postgresql://app:secret@localhost:${fake.port}/neondb?${params}`,
      poolMax: 1,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 5000,
    });
    try {
      await db.query('SELECT 1');
      return 'connected';
    } catch (err) {
      return (err as Error).message;
    } finally {
      await db.close();
    }
  }

  it("is refused with libpq's words, and no statement is sent", async () => {
    fake.afterAuth.length = 0;
    expect(await attempt('sslmode=require&channel_binding=require')).toBe(
      'cannot connect to PostgreSQL: channel binding required, but server authenticated client without channel binding',
    );
    // The client did start the exchange with PLUS, and sent nothing once "let in".
    expect(fake.mechanism).toBe('SCRAM-SHA-256-PLUS');
    expect(fake.afterAuth.filter((t) => t !== 'X')).toEqual([]);
  });

  it('under channel_binding=prefer, is let in and sent statements, as libpq would: the reason require exists', async () => {
    fake.afterAuth.length = 0;
    // The fake never answers the statement; the client's own guard ends the wait.
    await attempt('sslmode=require&channel_binding=prefer');
    expect(fake.afterAuth.some((t) => t === 'P' || t === 'Q')).toBe(true);
  });
});
