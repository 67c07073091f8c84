// Refuses JSON nested deeper than a limit before it is parsed: deep nesting costs the parser (and
// everything after it) far more than its size suggests. One pass over the raw bytes.
import { problems } from './problem.js';

export const MAX_JSON_DEPTH = 32;

export function assertJsonDepth(raw: Buffer, max = MAX_JSON_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) {
        throw problems.invalidJson(`The request body is nested deeper than ${max} levels.`);
      }
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}
