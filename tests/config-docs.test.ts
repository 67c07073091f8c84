// One source for the environment: src/config.ts reads it; the README's configuration table and
// .env.example describe it. This fails when they drift: a variable read but not documented, or
// documented but no longer read.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from '../bench/node-flags.js';

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');

/** Every variable config.ts reads: its readers all take (env, 'NAME', …). */
const fromConfig = new Set([...read('src/config.ts').matchAll(/\(env, '([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!));

/** The first column of the README's "## Configuration" table: each `NAME` it names. */
function fromReadme(): Set<string> {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Configuration');
  const end = readme.indexOf('\n## ', start + 1);
  const rows = readme
    .slice(start, end === -1 ? undefined : end)
    .split('\n')
    .filter((l) => l.startsWith('| `'));
  return new Set(rows.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!)));
}

/** Each NAME= line of .env.example, set or commented out; the test runner's own are not the server's. */
const fromEnvExample = new Set(
  [...read('.env.example').matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!).filter((n) => !n.startsWith('TEST_')),
);

describe('the configuration, as read and as documented', () => {
  it('reads some variables (the pattern still finds them)', () => {
    expect(fromConfig.size).toBeGreaterThan(20);
    expect(fromConfig.has('DATABASE_URL')).toBe(true);
  });

  it("the README's table names exactly the variables config.ts reads", () => {
    expect([...fromReadme()].sort()).toEqual([...fromConfig].sort());
  });

  it('.env.example names exactly the variables config.ts reads', () => {
    expect([...fromEnvExample].sort()).toEqual([...fromConfig].sort());
  });
});

describe('the commands, as run and as documented', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

  it('starts the server with the V8 flags the benchmarks run it with, on the command line', () => {
    for (const script of ['start', 'serve']) expect(pkg.scripts[script]).toBe(`node ${SERVER_NODE_FLAGS.join(' ')} dist/server.js`);
    // No V8 flag is set at run time: nothing in src/ calls v8.setFlagsFromString.
    const sources = readdirSync(new URL('../src', import.meta.url), { recursive: true, encoding: 'utf8' }).filter((f) =>
      /\.[jt]s$/.test(f),
    );
    expect(sources.length).toBeGreaterThan(20);
    expect(sources.filter((f) => read(`src/${f}`).includes('setFlagsFromString'))).toEqual([]);
  });

  it('every `npm run X` the README names is a script of package.json', () => {
    const named = [...read('README.md').matchAll(/npm run (?:-s |--silent )?([a-z][a-z:-]*)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(5);
    for (const name of named) expect(Object.keys(pkg.scripts), name).toContain(name);
  });

  it('every file or folder the README links to exists', () => {
    const links = [...read('README.md').matchAll(/\]\(((?!https?:|#)[^)\s]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(3);
    for (const link of links) expect(existsSync(new URL(`../${link}`, import.meta.url)), link).toBe(true);
  });
});
