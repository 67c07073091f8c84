// The SDK as a frontend gets it (run by CI): `npm pack` of packages/client, installed alone into a
// fresh project with no Node types; packages/client/examples/*.ts typechecked there under
// moduleResolution bundler, node16 and nodenext (a @ts-expect-error wrong call included); consumer.ts
// bundled for the browser with esbuild (no Node built-in may be needed); and that bundle run against
// a live server started from this checkout. Prints the sizes; exits non-zero on any failure.
//
// Usage: node scripts/check-sdk-package.mjs   (after `npm run build`; needs the npm registry for openapi-fetch)
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SignJWT } from 'jose';

const root = fileURLToPath(new URL('../', import.meta.url));
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
const work = mkdtempSync(path.join(tmpdir(), 'todo-sdk-consumer-'));
const SERVER_PACKAGES = [
  'express',
  'pg',
  '@electric-sql/pglite',
  'redis',
  'pino',
  'helmet',
  'prom-client',
  'postgrator',
  'express-openapi-validator',
  'jose',
  '@types/node',
];

function sizeOf(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? sizeOf(p) : statSync(p).size;
  }
  return total;
}

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

let server;
try {
  // 1. Pack (prepack builds dist/), and install only the tarball into an empty project.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--workspace', '@todo-api/client', '--pack-destination', work], root))[0];
  const tarball = path.join(work, packed.filename);
  console.log(
    `packed ${packed.filename}: ${(packed.size / 1024).toFixed(1)} KB, ${packed.entryCount} files (${packed.files.map((f) => f.path).join(', ')})`,
  );
  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }, null, 2));
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app);
  const modules = path.join(app, 'node_modules');
  const installed = readdirSync(modules).flatMap((d) =>
    d.startsWith('@') ? readdirSync(path.join(modules, d)).map((n) => `${d}/${n}`) : d.startsWith('.') ? [] : [d],
  );
  const bytes = sizeOf(modules);
  console.log(`installed: ${installed.join(', ')}; node_modules ${(bytes / 1024).toFixed(0)} KB`);
  const leaked = installed.filter((p) => SERVER_PACKAGES.includes(p));
  if (leaked.length) throw new Error(`server packages reached the frontend: ${leaked.join(', ')}`);
  if (bytes > 2 * 1024 * 1024) throw new Error(`the SDK adds ${bytes} bytes (limit 2 MB)`);

  // 2. Typecheck the examples as a browser project: no Node types, DOM library, each resolution mode.
  mkdirSync(path.join(app, 'src'));
  cpSync(path.join(root, 'packages', 'client', 'examples'), path.join(app, 'src'), { recursive: true });
  for (const [module, moduleResolution] of [
    ['ESNext', 'bundler'],
    ['Node16', 'node16'],
    ['NodeNext', 'nodenext'],
  ]) {
    const config = path.join(app, `tsconfig.${moduleResolution}.json`);
    writeFileSync(
      config,
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module,
          moduleResolution,
          lib: ['ES2022', 'DOM'],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        include: ['src'],
      }),
    );
    try {
      run(bin('tsc'), ['-p', config], app);
    } catch (err) {
      throw new Error(`typecheck (${moduleResolution}) failed:\n${err.stdout}${err.stderr}`);
    }
    console.log(`typechecked under moduleResolution ${moduleResolution}, no Node types`);
  }

  // 3. Bundle for the browser: esbuild refuses a Node built-in on platform=browser.
  const bundle = path.join(app, 'bundle.js');
  run(bin('esbuild'), ['src/consumer.ts', '--bundle', '--platform=browser', '--format=esm', '--minify', `--outfile=${bundle}`], app);
  const bundleBytes = statSync(bundle).size;
  console.log(`browser bundle of consumer.ts: ${(bundleBytes / 1024).toFixed(1)} KB minified`);
  if (bundleBytes > 30 * 1024) throw new Error(`the browser bundle is ${bundleBytes} bytes (limit 30 KB)`);

  // 4. Run it against a live server from this checkout (embedded database, a shared secret).
  const secret = 'sdk-consumer-check-secret-5e1c9a7b3f2d4e6a8c0b';
  const dataDir = path.join(work, 'data');
  server = spawn(process.execPath, [path.join(root, 'dist', 'server.js')], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      JWT_SECRET: secret,
      WARM_UP_REQUESTS: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    server.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
    server.stdout.on('data', (d) => {
      out += d;
      const m = /"port":(\d+),.*"msg":"listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('sdk-consumer')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret));
  const { run: consume } = await import(pathToFileURL(bundle).href);
  for (const line of await consume(`http://127.0.0.1:${port}`, token)) console.log(`live: ${line}`);
  console.log('the packed SDK works from a fresh project');
} finally {
  server?.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
