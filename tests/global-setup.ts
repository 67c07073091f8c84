// Once per run, before any test file: the server compiled as `npm start` runs it (when src/
// changed since the last build), for the tests that start it as a process; and an empty PGlite cluster dumped to a tarball, from which each
// file's in-memory database starts (tests/helpers/db.ts). Creating a cluster runs initdb in
// WebAssembly, about 2 s; loading the dump, about 0.3 s. Kept between runs, per PGlite version.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
    /** The API reference page as `npm start` serves it, built from the current contract. */
    docsFile: string;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  execFileSync(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: path.resolve(import.meta.dirname, '..'), stdio: 'inherit' });
  const modules = path.resolve(import.meta.dirname, '..', 'node_modules');
  const { version } = JSON.parse(readFileSync(path.join(modules, '@electric-sql', 'pglite', 'package.json'), 'utf8')) as {
    version: string;
  };
  const dir = path.join(modules, '.cache', 'todo-api');
  const template = path.join(dir, `pglite-${version}-empty.tar`);
  if (!existsSync(template)) {
    mkdirSync(dir, { recursive: true });
    const db = await PGlite.create();
    const dump = await db.dumpDataDir('none');
    await db.close();
    // Written aside and renamed: a run beside this one never reads half a file.
    const partial = `${template}.${process.pid}`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, template);
  }
  project.provide('pgliteTemplate', template);
  project.provide('docsFile', path.resolve(import.meta.dirname, '..', 'dist', 'docs', 'index.html'));
}
