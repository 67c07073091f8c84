// Breaking-change guard: compares the contract as last released (openapi/released.json) with the
// current bundle. Removed operations, removed or retyped response fields, and new required request
// fields or parameters are failures unless info.version's major number went up.
// Usage: node scripts/check-breaking.mjs [released.json] [current.json]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

function resolver(spec) {
  const deref = (node, seen = new Set()) => {
    let n = node;
    while (n && typeof n.$ref === 'string') {
      if (seen.has(n.$ref)) return {};
      seen.add(n.$ref);
      n = n.$ref
        .slice(2)
        .split('/')
        .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((acc, k) => acc?.[k], spec);
    }
    return n ?? {};
  };
  return deref;
}

const typeOf = (s) => (s.type ?? (s.properties ? 'object' : s.items ? 'array' : 'any')) + (s.nullable ? '|null' : '');

/** Response shapes may grow, never shrink or change. */
function compareResponse(where, oldS, newS, derefOld, derefNew, out, depth = 0) {
  const o = derefOld(oldS);
  const n = derefNew(newS);
  if (depth > 20) return;
  if (typeOf(o) !== typeOf(n) && !(o.nullable && !n.nullable && o.type === n.type)) {
    out.push(`${where}: type changed from ${typeOf(o)} to ${typeOf(n)}`);
    return;
  }
  for (const [name, prop] of Object.entries(o.properties ?? {})) {
    if (!n.properties?.[name]) out.push(`${where}.${name}: removed from the response`);
    else compareResponse(`${where}.${name}`, prop, n.properties[name], derefOld, derefNew, out, depth + 1);
  }
  if (o.items && n.items) compareResponse(`${where}[]`, o.items, n.items, derefOld, derefNew, out, depth + 1);
}

export function findBreakingChanges(oldSpec, newSpec) {
  const derefOld = resolver(oldSpec);
  const derefNew = resolver(newSpec);
  const out = [];
  for (const [path, oldItem] of Object.entries(oldSpec.paths ?? {})) {
    for (const method of METHODS.filter((m) => oldItem[m])) {
      const name = `${method.toUpperCase()} ${path}`;
      const oldOp = oldItem[method];
      const newOp = newSpec.paths?.[path]?.[method];
      if (!newOp) {
        out.push(`${name}: operation removed`);
        continue;
      }
      for (const [status, oldRes] of Object.entries(oldOp.responses ?? {})) {
        const newRes = newOp.responses?.[status];
        if (!newRes) {
          if (/^2/.test(status)) out.push(`${name} ${status}: success response removed`);
          continue;
        }
        for (const [media, oldMedia] of Object.entries(derefOld(oldRes).content ?? {})) {
          const newMedia = derefNew(newRes).content?.[media];
          if (!newMedia) out.push(`${name} ${status} ${media}: media type removed`);
          else if (oldMedia.schema && newMedia.schema)
            compareResponse(`${name} ${status} body`, oldMedia.schema, newMedia.schema, derefOld, derefNew, out);
        }
      }
      const oldBody = derefOld(derefOld(oldOp.requestBody ?? {}).content?.['application/json']?.schema ?? {});
      const newBody = derefNew(derefNew(newOp.requestBody ?? {}).content?.['application/json']?.schema ?? {});
      for (const field of newBody.required ?? []) {
        if (!(oldBody.required ?? []).includes(field)) out.push(`${name}: request field "${field}" is newly required`);
      }
      if (!oldOp.requestBody?.required && derefNew(newOp.requestBody ?? {}).required && oldOp.requestBody)
        out.push(`${name}: request body is newly required`);
      const params = (item, op, deref) =>
        [...(item.parameters ?? []), ...(op.parameters ?? [])].map((p) => deref(p)).filter((p) => p.required);
      const oldRequired = new Set(params(oldItem, oldOp, derefOld).map((p) => `${p.in}:${p.name}`));
      for (const p of params(newSpec.paths[path], newOp, derefNew)) {
        if (!oldRequired.has(`${p.in}:${p.name}`)) out.push(`${name}: ${p.in} parameter "${p.name}" is newly required`);
      }
    }
  }
  return out;
}

const major = (spec) => Number(String(spec.info?.version ?? '0').split('.')[0]);

/** The changes that fail the check: all of them, unless the major version was bumped. */
export function checkBreaking(oldSpec, newSpec) {
  const changes = findBreakingChanges(oldSpec, newSpec);
  return { changes, allowed: major(newSpec) > major(oldSpec) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [releasedPath = 'openapi/released.json', currentPath = 'generated/openapi.json'] = process.argv.slice(2);
  const released = JSON.parse(readFileSync(releasedPath, 'utf8'));
  const current = JSON.parse(readFileSync(currentPath, 'utf8'));
  const { changes, allowed } = checkBreaking(released, current);
  if (changes.length === 0) {
    console.log(`No breaking changes since ${released.info.version} (now ${current.info.version}).`);
  } else if (allowed) {
    console.log(
      `Breaking changes since ${released.info.version}, allowed by the major bump to ${current.info.version}:\n  ${changes.join('\n  ')}`,
    );
  } else {
    console.error(
      `Breaking changes since ${released.info.version} without a major version bump (now ${current.info.version}):\n  ${changes.join('\n  ')}`,
    );
    process.exit(1);
  }
}
