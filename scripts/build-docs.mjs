// Builds the HTML API reference from the bundled contract: one self-contained file (Redoc inlined,
// telemetry off), so /docs works offline and loads nothing from a CDN.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
export const defaultDocsFile = path.join(root, 'dist', 'docs', 'index.html');

export function buildDocs(output = defaultDocsFile) {
  execFileSync(
    path.join(root, 'node_modules', '.bin', 'redocly'),
    ['build-docs', path.join(root, 'generated', 'openapi.json'), '--output', output, '--inlineBundle', '--title', 'Todo API reference'],
    // Telemetry off, both for the build and in the page it produces (readers' browsers report nothing).
    { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, REDOCLY_TELEMETRY: 'off' } },
  );
  // Redoc's footer shows Redocly's logo from their CDN, which the page's own CSP (and the promise
  // that nothing loads from elsewhere) refuses: an empty inline image stands in for it.
  const blank = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E";
  const html = readFileSync(output, 'utf8').replace(/https:\/\/cdn\.redoc\.ly\/redoc\/logo-mini(-full)?\.svg/g, blank);
  writeFileSync(output, html);
  // Compressed once here, so serving the page costs no CPU per request (server: src/system/docs.ts).
  writeFileSync(`${output}.gz`, gzipSync(html, { level: 9 }));
  writeFileSync(
    `${output}.br`,
    brotliCompressSync(html, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: html.length } }),
  );
  return output;
}

/** Whether the built page (and its compressed copies) is newer than the contract and this script. */
function upToDate(output = defaultDocsFile) {
  try {
    const built = Math.min(...[output, `${output}.gz`, `${output}.br`].map((f) => statSync(f).mtimeMs));
    const sources = [path.join(root, 'generated', 'openapi.json'), fileURLToPath(import.meta.url)].map((f) => statSync(f).mtimeMs);
    return built > Math.max(...sources);
  } catch {
    return false;
  }
}

/** Builds the page unless one built from this contract is there (`npm start` calls this first). */
export function buildDocsIfStale() {
  if (upToDate()) return;
  console.error('building the API reference (the contract changed since the last build)…');
  buildDocs();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(`API reference built: ${path.relative(root, buildDocs())}`);
