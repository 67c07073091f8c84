// Runs in every test file: after its tests, no line that any app logged may contain a token or a
// secret (JWTs are recognised by shape, so tokens minted anywhere in a test are caught too), and
// no response any app sent may break the contract.
import { afterAll, expect } from 'vitest';
import { allLogLines, TEST_SECRET } from './helpers/app.js';
import { contractViolations } from './helpers/shipped-responses.js';

const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/;

afterAll(() => {
  const leaks = allLogLines.filter((line) => JWT.test(line) || line.includes(TEST_SECRET) || /authorization"\s*:\s*"Bearer/i.test(line));
  expect(leaks, 'log lines containing a token or secret').toEqual([]);
});

afterAll(() => {
  expect(contractViolations, 'responses that break the contract').toEqual([]);
});
