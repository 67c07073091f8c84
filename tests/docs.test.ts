// /docs in a real headless browser (Debian's chromium via playwright-core): the reference renders
// every operation. Skips, saying why, on a machine without chromium; .ci/run installs it.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`docs.test: skipping the browser check, no chromium at ${CHROMIUM} (apt-get install chromium)`);

const spec = JSON.parse(readFileSync(new URL('../generated/openapi.json', import.meta.url), 'utf8')) as {
  info: { version: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, { summary?: string }>>;
};
const summaries = Object.values(spec.paths).flatMap((item) =>
  Object.values(item).flatMap((op) => (op && typeof op === 'object' && op.summary ? [op.summary] : [])),
);

let database: TestDatabase;
let server: Server;
let base: string;
let app: ReturnType<typeof buildApp>['app'];

beforeAll(async () => {
  const docsFile = inject('docsFile');
  database = await createTestDatabase();
  ({ app, server } = buildApp(database.db, { docsFile }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await database.drop();
});

describe('/docs', () => {
  it('is one self-contained HTML page that loads nothing from a CDN', async () => {
    const res = await request(app).get('/docs');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).not.toMatch(/<script[^>]+src=["']https?:/);
    expect(res.text).not.toMatch(/<link[^>]+href=["']https?:[^>]+(stylesheet|modulepreload)/);
  });

  it.skipIf(!haveChromium)('renders every operation in Chromium', async () => {
    expect(summaries.length).toBeGreaterThanOrEqual(17);
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const consoleErrors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
      // As if offline: anything not from this server is refused. Scripts and styles must not need it.
      const external: { url: string; type: string }[] = [];
      await page.route(
        (url) => !url.href.startsWith(base),
        (route) => {
          external.push({ url: route.request().url(), type: route.request().resourceType() });
          return route.abort();
        },
      );
      await page.goto(`${base}/docs`, { waitUntil: 'load' });
      await page.getByText(`Todo API (${spec.info.version})`).waitFor({ timeout: 20_000 });
      // The sidebar lists each tag's operations once the tag is opened; open every tag.
      let text = '';
      for (const tag of spec.tags.map((t) => t.name)) {
        await page.locator('body').getByText(tag, { exact: true }).first().click();
        await page.waitForTimeout(300);
        text += await page.locator('body').textContent();
      }
      const missing = summaries.filter((s) => !text.includes(s));
      expect(missing).toEqual([]);
      // Nothing at all: not a script, a style or a font, and not an image either (Redoc's logo
      // used to come from its CDN, which the page's own CSP then refused).
      expect(external).toEqual([]);
      expect(consoleErrors).toEqual([]);
      mkdirSync('test-results', { recursive: true });
      await page.screenshot({ path: 'test-results/docs.png' });
    } finally {
      await browser?.close();
    }
  });
});
