// tsc compiles src/ to dist/ but never copies a hand-placed .d.ts: the contract's generated types
// (src/openapi.d.ts, written by the repository's `npm run generate`) go next to the code that
// imports them, so the published package carries them and needs nothing of the server.
import { copyFileSync } from 'node:fs';

copyFileSync(new URL('../src/openapi.d.ts', import.meta.url), new URL('../dist/openapi.d.ts', import.meta.url));
