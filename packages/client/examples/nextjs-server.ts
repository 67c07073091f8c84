// docs/nextjs.md, the server side (lib/todo-server.ts in the app): Server Components, route
// handlers and server actions get a client whose token Better Auth's server API signs for the
// request's session cookie, fetched once however many calls the request makes. Typechecked by CI
// in a fresh project (scripts/check-sdk-package.mjs); tests/nextjs-recipe.test.ts runs the same
// lines against a real Better Auth server. In the app, the declared names are imports:
//   import 'server-only';
//   import { headers } from 'next/headers';
//   import { cache } from 'react';
//   import { auth } from '@/lib/auth';   // betterAuth({ ..., plugins: [jwt(), nextCookies()] })
import { cachedToken, createTodoClient } from '@todo-api/client';

// The parts of Next.js, React and Better Auth this uses (declared so the check needs none of them).
declare const headers: () => Promise<Headers>;
declare const cache: <F extends (...args: never[]) => unknown>(fn: F) => F;
declare const auth: { api: { getToken(context: { headers: Headers }): Promise<{ token: string }> } };
declare const process: { env: Record<string, string | undefined> };

/**
 * This request's client. React's `cache` makes it one per request, so a page's several calls share
 * one token; never keep one in a module variable, which every user's requests would share.
 */
export const getTodos = cache(async () => {
  const requestHeaders = await headers();
  return createTodoClient({
    baseUrl: process.env.TODO_API_URL ?? 'http://localhost:8000',
    getToken: cachedToken(async () => (await auth.api.getToken({ headers: requestHeaders })).token),
  });
});

/** What a Server Component renders from: the pending tasks and the counts, fetched in parallel. */
export async function loadDashboard() {
  const todos = await getTodos();
  const [{ tasks }, stats] = await Promise.all([todos.listTasks({ status: 'pending', sort: 'due_at' }), todos.getTaskStats()]);
  return { tasks, stats };
}
