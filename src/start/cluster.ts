// WORKERS > 1: this process migrates once, then runs and supervises the workers, which share the
// port (node:cluster). It serves nothing itself.
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import { openDatabase } from '../db/open.js';
import { createLogger } from '../logger.js';
import { printWelcome } from './banner.js';
import { assertPortFree, logConnectionBudget, migrateOnStart, resolveSecret } from './preflight.js';

// A worker that dies is replaced after a pause that doubles with each death in a row (up to 30 s);
// one that served for a minute resets the count. Workers that keep dying before they ever listen
// (a port taken, a database refused) stop the primary with their exit code instead of looping.
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;
const MAX_FAILED_STARTS = 5;

export async function superviseWorkers(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, config.logFormat);
  await assertPortFree(config);
  logConnectionBudget(config, logger);
  if (config.migrateOnStart) {
    const db = await openDatabase(config, logger);
    try {
      await migrateOnStart(config, db, logger);
    } finally {
      await db.close();
    }
  }
  const { secret, devSecretFile } = resolveSecret(config);
  let stopping = false;
  let deathsInARow = 0;
  let failedStarts = 0;
  const listening = new Set<number>();
  const startedAt = new Map<number, number>();
  const fork = () => {
    const worker = cluster.fork({ MIGRATE_ON_START: 'false' });
    startedAt.set(worker.id, Date.now());
  };
  let resolveBound: (bound: AddressInfo) => void;
  const firstBound = new Promise<AddressInfo>((resolve) => (resolveBound = resolve));
  // The worker says which port it serves on once its real server listens (a worker's start-up
  // warm-up listens on a private port of its own, which cluster's 'listening' event reports too).
  cluster.on('message', (worker, message: { type?: string } & Partial<AddressInfo>) => {
    if (message?.type !== 'listening' || typeof message.port !== 'number') return;
    listening.add(worker.id);
    failedStarts = 0;
    resolveBound({ port: message.port, address: message.address ?? '::', family: message.family ?? 'IPv6' });
  });
  cluster.on('exit', (worker, code, signal) => {
    const uptime = Date.now() - (startedAt.get(worker.id) ?? Date.now());
    const wasListening = listening.delete(worker.id);
    startedAt.delete(worker.id);
    if (stopping) return;
    deathsInARow = uptime > HEALTHY_AFTER_MS ? 1 : deathsInARow + 1;
    if (!wasListening && ++failedStarts >= MAX_FAILED_STARTS) {
      logger.fatal({ code, signal, failedStarts }, 'workers keep dying before they listen; stopping');
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      process.exitCode = typeof code === 'number' && code !== 0 ? code : 1;
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (deathsInARow - 1));
    logger.error({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died; starting another');
    setTimeout(() => !stopping && fork(), delay);
  });
  logger.info({ workers: config.workers }, 'starting workers');
  for (let i = 0; i < config.workers; i++) fork();
  const bound = await firstBound;
  logger.info({ address: bound.address, port: bound.port, workers: config.workers }, 'workers listening');
  if (config.env !== 'production') await printWelcome(config, bound, secret, devSecretFile);

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    if (workers.length === 0) process.exit(0);
    let failed = false;
    let left = workers.length;
    const timer = setTimeout(() => process.exit(1), config.shutdownGraceMs + 2000);
    for (const w of workers) {
      w.once('exit', (code) => {
        failed ||= code !== 0;
        if (--left === 0) {
          clearTimeout(timer);
          process.exit(failed ? 1 : 0);
        }
      });
      w.process.kill('SIGTERM');
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
