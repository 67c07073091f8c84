// The Node options the server runs with, as package.json's start script gives them (checked by
// tests/config-docs.test.ts), for every process the benchmarks start: the app, its bare baseline.
export const SERVER_NODE_FLAGS = ['--no-allocation-site-pretenuring'];
