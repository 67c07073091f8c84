// The README's Next.js + Better Auth snippet, typechecked by CI in the same fresh project as
// consumer.ts. In an app, `authClient` is Better Auth's client with the jwt plugin:
//   import { createAuthClient } from 'better-auth/react';
//   import { jwtClient } from 'better-auth/client/plugins';
//   export const authClient = createAuthClient({ plugins: [jwtClient()] });
import { createTodoClient, TodoApiError } from '@todo-api/client';

// The part of Better Auth's client this uses (declared here so the check needs no Better Auth).
declare const authClient: { token(): Promise<{ data?: { token: string } | null }> };
declare const process: { env: Record<string, string | undefined> };

export const todos = createTodoClient({
  baseUrl: process.env.NEXT_PUBLIC_TODO_API_URL ?? 'http://localhost:8000',
  getToken: async () => (await authClient.token()).data?.token,
});

export async function addTask(title: string): Promise<string | undefined> {
  try {
    await todos.createTask({ title }, { idempotencyKey: crypto.randomUUID() });
    return undefined;
  } catch (err) {
    if (err instanceof TodoApiError) {
      switch (err.code) {
        case 'validation_failed':
          return err.errors.map((e) => e.message).join('\n');
        case 'quota_exceeded':
        case 'rate_limited':
          return err.detail;
        case 'token_expired':
        case 'token_missing':
          return 'Please sign in again.';
        default:
          return `Something went wrong (${err.requestId ?? err.status}).`;
      }
    }
    throw err;
  }
}
