// Webhooks are not a way into the network (SSRF): in production settings only https URLs at
// public addresses are registered, a name is resolved again when each attempt connects and every
// address it resolves to is checked, in IPv4, IPv6 and IPv4-mapped forms. The resolver is the
// test's, so a name can resolve to anything.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookPolicy } from '../src/app.js';
import { ConfigError, loadConfig, type WebhooksConfig } from '../src/config.js';
import { checkedAddress, parseWebhookUrl, refusedAddress, type Resolve } from '../src/webhooks/address-policy.js';
import { deliver } from '../src/webhooks/deliver.js';
import { startWebhookDispatcher, type WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { bearer, buildApp, newUser } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';
import { type Receiver, startReceiver } from './helpers/receiver.js';

/** What each name resolves to, changeable during a test (DNS rebinding). */
const dns = new Map<string, string[]>([
  ['public.example', ['93.184.216.34']],
  ['private.example', ['10.0.0.7']],
  ['metadata.example', ['169.254.169.254']],
  ['mixed.example', ['93.184.216.34', '192.168.1.1']],
  ['mapped.example', ['::ffff:127.0.0.1']],
  ['v6local.example', ['fd12:3456::1']],
  ['flip.example', ['93.184.216.34']],
]);
const resolve: Resolve = async (host) => {
  const found = dns.get(host);
  if (!found) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  return found;
};
/** What a refusal of a name says, whatever the address: never which one. */
const G = 'resolves to an address that is not public (loopback, private, link-local or reserved), which webhooks may not call';
const production: WebhooksConfig = { ...loadConfig({ NODE_ENV: 'test' }).webhooks, httpsOnly: true, allowedHosts: [], retrySchedule: [60] };

let database: TestDatabase;
let app: ReturnType<typeof buildApp>['app'];
let dispatcher: WebhookDispatcher;
let receiver: Receiver;
beforeAll(async () => {
  database = await createTestDatabase();
  dispatcher = startWebhookDispatcher(database.db, production, { policy: webhookPolicy(production, resolve), userAgent: 'test' });
  app = buildApp(database.db, { webhooks: production, resolve, written: () => dispatcher.poke() }).app;
  receiver = await startReceiver();
});
afterAll(async () => {
  await dispatcher.stop();
  await receiver.close();
  await database.drop();
});

describe('the addresses webhooks may call', () => {
  it('are public unicast only, in every form', () => {
    for (const address of [
      '127.0.0.1',
      '127.255.0.9',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '100.64.0.1',
      '255.255.255.255',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'fc00::5',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      '64:ff9b::a00:1',
      '2002:a00:1::',
      '::7f00:1',
      '::a00:1',
      '4000::1',
      '2001:db8::1',
      'fec0::1',
      '192.0.2.1',
    ]) {
      expect(refusedAddress(address), address).toBeDefined();
    }
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:93.184.216.34']) {
      expect(refusedAddress(address), address).toBeUndefined();
    }
    expect(refusedAddress('169.254.169.254')).toBe('169.254.169.254 is a link-local address, which webhooks may not call');
  });

  it('are checked by name at delivery time: every address the name resolves to, and the one used is the one checked', async () => {
    const policy = webhookPolicy(production, resolve);
    // Which address, or which kind, is not said for a name (it would map the server's network).
    await expect(checkedAddress(new URL('https://private.example/x'), policy)).rejects.toThrow(`private.example ${G}`);
    await expect(checkedAddress(new URL('https://mixed.example/x'), policy)).rejects.toThrow(`mixed.example ${G}`);
    await expect(checkedAddress(new URL('https://mapped.example/x'), policy)).rejects.toThrow(`mapped.example ${G}`);
    await expect(checkedAddress(new URL('https://nowhere.example/x'), policy)).rejects.toThrow('cannot resolve nowhere.example: ENOTFOUND');
    expect(await checkedAddress(new URL('https://public.example/x'), policy)).toEqual({ address: '93.184.216.34', family: 4 });

    // A name that resolves to the loopback receiver is refused before any connection is made.
    dns.set('rebind.example', ['127.0.0.1']);
    const before = receiver.received.length;
    const attempt = await deliver(
      { url: `http://rebind.example:${receiver.port}/hooks`, secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw1Xp8gWsyCqA='] },
      { messageId: 'msg_00000000000000000000000000000001', type: 'task.created', happenedAt: '2026-12-07T16:30:00.000000Z', data: {} },
      { policy: webhookPolicy({ ...production, httpsOnly: false }, resolve), timeoutMs: 2000, payloadMaxBytes: 65536, userAgent: 'test' },
    );
    expect(attempt).toMatchObject({ outcome: 'retry' });
    expect(attempt.error).toBe(`refused: rebind.example ${G}`);
    expect(receiver.received.length).toBe(before);
    // The same receiver, named as a host the development setting allows, gets it: the refusal above was the address.
    const allowed = await deliver(
      { url: receiver.url, secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw1Xp8gWsyCqA='] },
      { messageId: 'msg_00000000000000000000000000000001', type: 'task.created', happenedAt: '2026-12-07T16:30:00.000000Z', data: {} },
      {
        policy: webhookPolicy({ ...production, httpsOnly: false, allowedHosts: ['127.0.0.1'] }, resolve),
        timeoutMs: 2000,
        payloadMaxBytes: 65536,
        userAgent: 'test',
      },
    );
    expect(allowed).toMatchObject({ outcome: 'delivered', status: 204 });
    expect(receiver.received.length).toBe(before + 1);
  });

  it('parse forms that browsers normalise to the address they are', () => {
    const policy = { httpsOnly: false, allowedHosts: new Set<string>() };
    for (const url of [
      'http://2130706433/',
      'http://0x7f.1/',
      'http://017700000001/',
      'http://[::ffff:7f00:1]/',
      'http://localhost./',
      'http://a.localhost/',
    ]) {
      expect(() => parseWebhookUrl(url, policy), url).toThrow(/loopback/);
    }
    // Outside production the refusal says how to allow a receiver on this machine; in production it does not.
    expect(() => parseWebhookUrl('http://127.0.0.1:3001/', policy)).toThrow('start the server with WEBHOOK_ALLOWED_HOSTS=127.0.0.1');
    expect(() => parseWebhookUrl('https://127.0.0.1:3001/', { ...policy, httpsOnly: true })).toThrow(
      /^127\.0\.0\.1 is a loopback address, which webhooks may not call$/,
    );
  });

  it('WEBHOOK_ALLOWED_HOSTS is refused in production', () => {
    expect(() =>
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'Qw8rT2yU5iO9pA3sD6fG1hJ4kL7zX0cVbN3m', WEBHOOK_ALLOWED_HOSTS: 'localhost' }),
    ).toThrow(ConfigError);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'Qw8rT2yU5iO9pA3sD6fG1hJ4kL7zX0cVbN3m' }).webhooks.httpsOnly).toBe(true);
  });
});

describe(`registering a webhook in production settings (${dbKind})`, () => {
  it('refuses loopback, private, link-local, unique-local and unspecified addresses, plain http, and names resolving to them', async () => {
    const auth = await bearer(newUser());
    for (const [url, says] of [
      ['http://127.0.0.1/hook', 'loopback'],
      ['http://[::1]/hook', 'loopback'],
      ['http://169.254.169.254/latest/meta-data/', 'link-local'],
      ['http://10.0.0.1/hook', 'private'],
      ['https://127.0.0.1/hook', 'loopback'],
      ['https://[::ffff:127.0.0.1]/hook', 'loopback'],
      ['https://[::ffff:a9fe:a9fe]/hook', 'link-local'],
      ['https://0.0.0.0/hook', 'unspecified'],
      ['https://[::]/hook', 'unspecified'],
      ['https://[fd00::1]/hook', 'unique-local'],
      ['https://[fe80::1]/hook', 'link-local'],
      ['https://localhost/hook', 'loopback'],
      ['https://private.example/hook', `private.example ${G}`],
      ['https://metadata.example/hook', `metadata.example ${G}`],
      ['https://mixed.example/hook', `mixed.example ${G}`],
      ['https://mapped.example/hook', `mapped.example ${G}`],
      ['https://v6local.example/hook', `v6local.example ${G}`],
      ['http://public.example/hook', 'https'],
    ] as const) {
      const res = await request(app).post('/api/webhooks').set('Authorization', auth).send({ url });
      expect(res.status, url).toBe(422);
      expect(res.body.errors, url).toEqual([{ path: '/body/url', message: expect.stringContaining(says) }]);
    }
    expect((await request(app).get('/api/webhooks').set('Authorization', auth)).body).toEqual([]);
    const ok = await request(app).post('/api/webhooks').set('Authorization', auth).send({ url: 'https://public.example/hook' });
    expect(ok.status).toBe(201);
    // A change of URL is checked the same way.
    const moved = await request(app).patch(`/api/webhooks/${ok.body.id}`).set('Authorization', auth).send({ url: 'https://10.1.2.3/' });
    expect(moved.status).toBe(422);
  });

  it('checks the name again at delivery: one that resolves to a private address by then is refused, and the attempt says so', async () => {
    const auth = await bearer(newUser());
    dns.set('flip.example', ['93.184.216.34']);
    const endpoint = await request(app).post('/api/webhooks').set('Authorization', auth).send({ url: 'https://flip.example/hook' });
    expect(endpoint.status).toBe(201);
    dns.set('flip.example', ['169.254.169.254']);
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'exfiltrate' }).expect(201);
    const until = Date.now() + 20_000;
    let attempts: { status: number | null; error: string; message_state: string }[] = [];
    while (attempts.length === 0 && Date.now() < until) {
      attempts = (await request(app).get(`/api/webhooks/${endpoint.body.id}/attempts`).set('Authorization', auth)).body;
      if (attempts.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(attempts[0]).toMatchObject({
      status: null,
      error: `refused: flip.example ${G}`,
      message_state: 'pending',
    });
  });
});
