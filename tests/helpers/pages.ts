// Following a list's pages as a client does: each page's `Link: <url>; rel="next"` to the next,
// until a page has none.
import type { Express } from 'express';
import request from 'supertest';
import { expect } from 'vitest';

/** The next page's URL, or undefined on the last page; a Link of any other form fails the test. */
export function nextPageUrl(res: request.Response): string | undefined {
  const link = res.headers.link as string | undefined;
  if (!link) return undefined;
  const m = /^<([^>]+)>; rel="next"$/.exec(link);
  expect(m, `Link header "${link}" is not <url>; rel="next"`).not.toBeNull();
  return m![1];
}

export interface WalkOptions {
  /** More pages than this fail the test (a Link that never ends). */
  maxPages?: number;
  /** Checks each page's response before its items are taken. */
  onPage?: (res: request.Response) => void;
}

/** Every item of every page from `firstUrl` on, as the caller with `authorization` sees them. */
export async function walkPages<T>(
  app: Express,
  authorization: string,
  firstUrl: string,
  opts: WalkOptions = {},
): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let pages = 0;
  for (let url: string | undefined = firstUrl; url; url = nextPageUrl(await page(url))) {}
  return { items, pages };

  async function page(url: string): Promise<request.Response> {
    expect(++pages, 'pages walked').toBeLessThanOrEqual(opts.maxPages ?? 500);
    const res = await request(app).get(url).set('Authorization', authorization);
    opts.onPage?.(res);
    expect(res.status, res.text).toBe(200);
    items.push(...(res.body as T[]));
    return res;
  }
}

/** POST /api/tasks as the caller, expecting 201; the created task. */
export async function createTask<T = Record<string, unknown>>(app: Express, authorization: string, body: object): Promise<T> {
  const res = await request(app).post('/api/tasks').set('Authorization', authorization).send(body);
  expect(res.status, res.text).toBe(201);
  return res.body as T;
}
