// docs/nextjs.md, the browser side (lib/todo-client.ts in the app): the client components' SDK,
// with Better Auth's token fetched once and reused until shortly before it expires. Typechecked by
// CI in a fresh project (scripts/check-sdk-package.mjs); tests/nextjs-recipe.test.ts runs the same
// lines against a real Better Auth server. In the app, `authClient` is an import:
//   import { authClient } from '@/lib/auth-client';   // createAuthClient({ plugins: [jwtClient()] })
import { cachedToken, createTodoClient, TodoApiError } from '@todo-api/client';

// The part of Better Auth's client this uses (declared here so the check needs no Better Auth).
declare const authClient: {
  token(): Promise<{ data?: { token: string } | null }>;
  signOut(): Promise<unknown>;
};
declare const process: { env: Record<string, string | undefined> };

/** One token for this browser's user, reused until 30 s before its exp (Better Auth's last 15 min). */
export const todoToken = cachedToken(async () => (await authClient.token()).data?.token);

export const todos = createTodoClient({
  baseUrl: process.env.NEXT_PUBLIC_TODO_API_URL ?? 'http://localhost:8000',
  getToken: todoToken,
});

/** Signing out must forget the token too, or the next user of this tab would act as this one. */
export async function signOut(): Promise<void> {
  await authClient.signOut();
  todoToken.clear();
}

/** For a form: undefined when the task was added, or a message to show. */
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
