// Builds the HTML API reference from the bundled contract: one self-contained file (Redoc inlined,
// telemetry off), so /docs works offline and loads nothing from a CDN.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
export const defaultDocsFile = path.join(root, 'dist', 'docs', 'index.html');

export function buildDocs(output = defaultDocsFile) {
  execFileSync(
    path.join(root, 'node_modules', '.bin', 'redocly'),
    [
      'build-docs',
      path.join(root, 'generated', 'openapi.json'),
      '--output',
      output,
      '--inlineBundle',
      '--title',
      'Todo API reference',
    ],
    // Telemetry off, both for the build and in the page it produces (readers' browsers report nothing).
    { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, REDOCLY_TELEMETRY: 'off' } },
  );
  return output;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(`API reference built: ${path.relative(root, buildDocs())}`);
}
