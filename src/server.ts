// The process's entry point: read the configuration, then serve, or supervise workers that do.
// Started as `npm start` runs it: `node --no-allocation-site-pretenuring dist/server.js`, a V8
// flag on the command line, where Node documents V8 options (docs/performance.md says what it
// buys); cluster workers inherit it.
import 'dotenv/config';
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { superviseWorkers } from './start/cluster.js';
import { serve } from './start/serve.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

const config = configOrExit();
(config.workers > 1 && cluster.isPrimary ? superviseWorkers(config) : serve(config)).catch((err: unknown) => {
  console.error('Failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
