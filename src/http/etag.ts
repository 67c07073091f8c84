// Entity tags for tasks (RFC 9110 §8.8.3) and the two preconditions this API honours.
// A task's ETag is its version, a counter the database bumps on every real change: strong, since
// the same version always has the same representation.

export const etagOf = (version: number): string => `"${version}"`;

/** Parses an If-Match / If-None-Match value: `*`, or the entity tags listed in it. */
function parse(header: string): { any: true } | { tags: { weak: boolean; opaque: string }[] } {
  if (header.trim() === '*') return { any: true };
  const tags = [...header.matchAll(/(W\/)?"([^"]*)"/g)].map((m) => ({ weak: m[1] !== undefined, opaque: m[2]! }));
  return { tags };
}

// Versions are PostgreSQL integers: a tag beyond that range names no version, so it matches none.
const MAX_VERSION = 2_147_483_647;
const versionIn = (opaque: string): number[] => (/^[1-9]\d{0,9}$/.test(opaque) && Number(opaque) <= MAX_VERSION ? [Number(opaque)] : []);

/**
 * The versions an If-Match allows a write to apply to: undefined when there is no condition (or
 * `*`, which any existing task meets). Strong comparison: weak tags never match, and a header
 * with nothing usable in it matches no version.
 */
export function ifMatchVersions(header: string | undefined): number[] | undefined {
  if (header === undefined) return undefined;
  const parsed = parse(header);
  if ('any' in parsed) return undefined;
  return parsed.tags.filter((t) => !t.weak).flatMap((t) => versionIn(t.opaque));
}

/** Whether If-None-Match names the current version (weak comparison), so a GET may answer 304. */
export function noneMatchHits(header: string | undefined, version: number | string): boolean {
  if (header === undefined) return false;
  const parsed = parse(header);
  if ('any' in parsed) return true;
  return parsed.tags.some((t) => t.opaque === String(version));
}
