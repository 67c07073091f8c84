// Fails when generated/ (or the user-scoped path files derived in openapi/paths/) is not what
// `npm run generate` makes from openapi/ (someone edited the contract without regenerating, or
// edited generated code by hand).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate, sdkTypes } from './generate.mjs';
import { userScopedPaths, userScopedPathsDir } from './user-scoped-paths.mjs';

const committed = fileURLToPath(new URL('../generated/', import.meta.url));
const fresh = mkdtempSync(path.join(tmpdir(), 'todo-generated-'));
try {
  await generate(fresh);
  const stale = readdirSync(fresh).filter((f) => {
    try {
      return readFileSync(path.join(fresh, f), 'utf8') !== readFileSync(path.join(committed, f), 'utf8');
    } catch {
      return true;
    }
  });
  if (readFileSync(path.join(fresh, 'openapi.d.ts'), 'utf8') !== readFileSync(sdkTypes, 'utf8'))
    stale.push('packages/client/src/openapi.d.ts');
  for (const [file, text] of Object.entries(userScopedPaths())) {
    if (readFileSync(path.join(userScopedPathsDir, file), 'utf8') !== text) stale.push(`openapi/paths/${file}`);
  }
  if (stale.length) {
    console.error(`generated code is stale: ${stale.join(', ')}. Run \`npm run generate\` and commit the result.`);
    process.exit(1);
  }
  console.log("generated/ and the SDK package's types match the contract");
} finally {
  rmSync(fresh, { recursive: true, force: true });
}
