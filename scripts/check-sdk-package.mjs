// The SDK as a frontend gets it (run by CI): the SDK README's quick start run as written (pack
// beside the checkout, a fresh `npm init -y` project, its tsconfig, `npx tsc`, the program run
// against a live server with a token from `npm run token`); the same project as CommonJS
// (require(esm)); the tarball installed alone into a fresh project with no Node types, where
// packages/client/examples/*.ts are typechecked under moduleResolution bundler, node16 and nodenext
// (a @ts-expect-error wrong call included); consumer.ts bundled for the browser with esbuild (no
// Node built-in may be needed) and that bundle run against the live server. Nothing is left in
// the repository. Prints the sizes; exits non-zero on any failure.
//
// Usage: node scripts/check-sdk-package.mjs   (after `npm run build`; needs the npm registry for
// openapi-fetch, typescript and @types/node)
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

const run = (cmd, args, cwd, env = process.env) =>
  execFileSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const failed = (what, err) => new Error(`${what} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}${err.stdout ? '' : err.message}`);

/** The README's quick start: the one ```sh block between its quick-start markers, and the tsconfig it writes. */
function quickStart() {
  const readme = readFileSync(path.join(root, 'packages', 'client', 'README.md'), 'utf8');
  const block = /<!-- quick-start[^>]*-->\s*```sh\n([\s\S]*?)```\s*<!-- \/quick-start -->/.exec(readme)?.[1];
  if (!block) throw new Error('packages/client/README.md has no quick-start block between <!-- quick-start --> markers');
  const { version } = JSON.parse(readFileSync(path.join(root, 'packages', 'client', 'package.json'), 'utf8'));
  if (!block.includes(`todo-api-client-${version}.tgz`)) {
    throw new Error(`the README's quick start installs another version than the package's ${version}: update its tarball name`);
  }
  const tsconfig = /cat > tsconfig\.json <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(block)?.[1];
  if (!tsconfig) throw new Error("the README's quick start writes no tsconfig.json");
  return { script: block, tsconfig };
}

const secret = 'sdk-consumer-check-secret-5e1c9a7b3f2d4e6a8c0b';
const dataDir = path.join(work, 'data');
let server;

/** This checkout's server on a free port: embedded database, a shared secret. */
async function startServer() {
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
  return `http://127.0.0.1:${port}`;
}

try {
  const { script, tsconfig } = quickStart();
  const baseUrl = await startServer();
  // npm's own variables (set when this runs under `npm run`) must not steer the npm commands below.
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'TODO_TOKEN'));

  // 1. The README's quick start, as written, in a folder that holds a `todo-api` checkout (this one).
  //    Its token comes from `npm run token` in the checkout, so that run gets the server's secret.
  symlinkSync(root, path.join(work, 'todo-api'), 'dir');
  const quickEnv = { ...cleanEnv, TODO_API_URL: baseUrl, JWT_SECRET: secret, DATA_DIR: dataDir };
  let printed;
  try {
    printed = run('bash', ['-eo', 'pipefail', '-c', script], work, quickEnv);
  } catch (err) {
    throw failed("the README's quick start", err);
  }
  if (!/created #\d+ "Buy milk", completed: true; \d+ task\(s\) in all/.test(printed)) {
    throw new Error(`the quick start's program printed:\n${printed}`);
  }
  const demo = path.join(work, 'todo-demo');
  const tsVersion = run('npx', ['tsc', '--version'], demo).trim();
  console.log(`README quick start ran as written (${tsVersion}): ${printed.trim().split('\n').at(-1)}`);
  const leftovers = [root, path.join(root, 'packages', 'client')].flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.tgz')));
  if (leftovers.length) throw new Error(`packing left ${leftovers.join(', ')} in the repository`);

  // The tarball: what it holds, and the licence in it is the repository's.
  const tarball = path.join(
    work,
    readdirSync(work).find((f) => /^todo-api-client-.*\.tgz$/.test(f)),
  );
  const files = run('tar', ['-tzf', tarball], work).trim().split('\n');
  console.log(
    `packed ${path.basename(tarball)}: ${(statSync(tarball).size / 1024).toFixed(1)} KB, ${files.length} files (${files.map((f) => f.replace(/^package\//, '')).join(', ')})`,
  );
  for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/openapi.d.ts']) {
    if (!files.includes(`package/${f}`)) throw new Error(`the tarball lacks ${f}`);
  }
  if (run('tar', ['-xzOf', tarball, 'package/LICENSE'], work) !== readFileSync(path.join(root, 'LICENSE'), 'utf8')) {
    throw new Error("the package's LICENSE differs from the repository's: copy LICENSE to packages/client/");
  }

  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('sdk-consumer')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(secret));

  // 2. The same project as CommonJS: the README's tsconfig, `import` compiled to require(), which
  //    loads the ESM package (Node 20.19+); run with the quick start's TypeScript and this repository's.
  const cjs = path.join(demo, 'cjs');
  mkdirSync(cjs);
  writeFileSync(path.join(cjs, 'package.json'), JSON.stringify({ type: 'commonjs' }));
  writeFileSync(path.join(cjs, 'tsconfig.json'), tsconfig);
  writeFileSync(
    path.join(cjs, 'main.ts'),
    `import { createTodoClient, TodoApiError } from '@todo-api/client';

async function main(): Promise<void> {
  const todo = createTodoClient({ baseUrl: process.env.TODO_API_URL ?? '', getToken: () => process.env.TODO_TOKEN });
  const task = await todo.createTask({ title: 'From CommonJS' });
  const missing = await todo.getTask(task.id + 1_000_000).catch((err: unknown) => err);
  if (!(missing instanceof TodoApiError) || missing.code !== 'task_not_found') throw new Error(\`not a TodoApiError: \${missing}\`);
  console.log(\`created #\${task.id} from CommonJS; a missing task is a TodoApiError\`);
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
`,
  );
  for (const [name, tsc] of [
    [tsVersion, 'npx'],
    [run(bin('tsc'), ['--version'], root).trim(), bin('tsc')],
  ]) {
    try {
      run(tsc, tsc === 'npx' ? ['tsc', '-p', 'cjs'] : ['-p', 'cjs'], demo);
      if (!readFileSync(path.join(cjs, 'main.js'), 'utf8').includes('require("@todo-api/client")')) {
        throw new Error('tsc did not compile the CommonJS consumer to require()');
      }
      const out = run(process.execPath, ['cjs/main.js'], demo, { ...cleanEnv, TODO_API_URL: baseUrl, TODO_TOKEN: token });
      console.log(`CommonJS consumer (${name}): ${out.trim()}`);
    } catch (err) {
      throw err.stdout === undefined ? err : failed(`the CommonJS consumer (${name})`, err);
    }
  }

  // 3. Install only the tarball into an empty project.
  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }, null, 2));
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app, cleanEnv);
  const modules = path.join(app, 'node_modules');
  const installed = readdirSync(modules).flatMap((d) =>
    d.startsWith('@') ? readdirSync(path.join(modules, d)).map((n) => `${d}/${n}`) : d.startsWith('.') ? [] : [d],
  );
  const bytes = sizeOf(modules);
  console.log(`installed alone: ${installed.join(', ')}; node_modules ${(bytes / 1024).toFixed(0)} KB`);
  const leaked = installed.filter((p) => SERVER_PACKAGES.includes(p));
  if (leaked.length) throw new Error(`server packages reached the frontend: ${leaked.join(', ')}`);
  if (bytes > 2 * 1024 * 1024) throw new Error(`the SDK adds ${bytes} bytes (limit 2 MB)`);

  // 4. Typecheck the examples as a browser project: no Node types, DOM library, each resolution mode.
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
      throw failed(`typecheck (${moduleResolution})`, err);
    }
    console.log(`examples typechecked under moduleResolution ${moduleResolution}, no Node types`);
  }

  // 5. Bundle for the browser (esbuild refuses a Node built-in on platform=browser), and run the bundle live.
  const bundle = path.join(app, 'bundle.js');
  run(bin('esbuild'), ['src/consumer.ts', '--bundle', '--platform=browser', '--format=esm', '--minify', `--outfile=${bundle}`], app);
  const bundleBytes = statSync(bundle).size;
  console.log(`browser bundle of consumer.ts: ${(bundleBytes / 1024).toFixed(1)} KB minified`);
  if (bundleBytes > 30 * 1024) throw new Error(`the browser bundle is ${bundleBytes} bytes (limit 30 KB)`);
  const { run: consume } = await import(pathToFileURL(bundle).href);
  for (const line of await consume(baseUrl, token)) console.log(`live: ${line}`);
  console.log('the packed SDK works from a fresh project');
} finally {
  server?.kill('SIGTERM');
  // The checkout is linked into the work folder: unlink that first (rm never follows a link anyway).
  rmSync(path.join(work, 'todo-api'), { force: true });
  rmSync(work, { recursive: true, force: true });
}
