// `npm start` runs this first: it compiles the server and builds the API reference only when their
// sources changed since the last build, so a second start goes straight to the server (a no-op
// `tsc` still takes about 2 s; this check, a few milliseconds).
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDocsIfStale } from './build-docs.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const stamp = path.join(root, 'dist', '.built');

function newest(entry) {
  const stat = statSync(entry, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(entry).map((name) => newest(path.join(entry, name))));
}

const sources = ['src', 'generated/openapi.d.ts', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
const built = statSync(stamp, { throwIfNoEntry: false })?.mtimeMs ?? 0;
if (Math.max(...sources.map((s) => newest(path.join(root, s)))) >= built) {
  console.error('compiling the server (src/ changed since the last build)…');
  execFileSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: ['ignore', process.stderr, process.stderr],
  });
  // tsc leaves its own build info untouched when nothing changed, so the stamp is a file of ours.
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
buildDocsIfStale();
