// GET /problems/{code}: the page a problem's `type` links to. Each page is made, once at start,
// from the contract's own list of codes (`Problem.code`: its enum, and its description's entry
// for each code: status, meaning, what to do), so a code cannot be added without its page, nor a
// page say other than the contract. A list that names a code the enum lacks, or lacks one it
// has, stops the start: the pages and the contract would have drifted.
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { RequestHandler } from 'express';
import { problems } from '../http/problem.js';

export interface ProblemType {
  code: string;
  status: number;
  /** What the code means, as the contract says it (Markdown: `code` spans). */
  meaning: string;
  /** What to do about it, where the contract says. */
  todo: string | undefined;
}

interface CodeSchema {
  enum?: string[];
  description?: string;
}

/** One entry of the list: "- `code` (status): meaning. *What to do:* advice", continued on indented lines. */
const ENTRY = /^- `([a-z0-9_]+)` \((\d{3})\): (.*)$/s;
const TODO = /\s*\*What to do:\*\s*/;

/** The contract's problem types, in its order, from `components.schemas.Problem.properties.code`. */
export function problemTypes(document: Record<string, unknown>): ProblemType[] {
  const schemas = (document.components as { schemas?: Record<string, { properties?: Record<string, CodeSchema> }> } | undefined)?.schemas;
  const code = schemas?.Problem?.properties?.code;
  if (!code?.enum || !code.description) throw new Error('the contract has no list of problem codes (Problem.code)');
  // Each entry starts with "- `"; the lines after it that are indented continue it.
  const entries: string[] = [];
  for (const line of code.description.split('\n')) {
    if (line.startsWith('- `')) entries.push(line);
    else if (/^\s+\S/.test(line) && entries.length) entries[entries.length - 1] += ` ${line.trim()}`;
  }
  const described = new Map<string, ProblemType>();
  for (const entry of entries) {
    const m = ENTRY.exec(entry);
    if (!m) throw new Error(`Problem.code's list has an entry that is not "- \`code\` (status): meaning": ${entry}`);
    const [meaning = '', todo] = m[3]!.split(TODO);
    described.set(m[1]!, { code: m[1]!, status: Number(m[2]), meaning: meaning.trim(), todo: todo?.trim() || undefined });
  }
  const unlisted = code.enum.filter((c) => !described.has(c));
  const unknown = [...described.keys()].filter((c) => !code.enum!.includes(c));
  if (unlisted.length || unknown.length) {
    throw new Error(
      `Problem.code's enum and its description's list differ: not described ${JSON.stringify(unlisted)}, not in the enum ${JSON.stringify(unknown)}`,
    );
  }
  return code.enum.map((c) => described.get(c)!);
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** The contract's Markdown, as far as the list uses it: `code` spans; everything else is text. */
const inline = (markdown: string) => escapeHtml(markdown).replace(/`([^`]+)`/g, '<code>$1</code>');
const sentence = (s: string) => {
  const text = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
};

// The page's one stylesheet, allowed by its hash: the page runs no script and loads nothing.
const STYLE =
  'body{font:16px/1.5 system-ui,sans-serif;max-width:42em;margin:2em auto;padding:0 1em;color:#1a1a1a}' +
  'code{font:0.95em ui-monospace,monospace;background:#f2f2f2;padding:0 0.2em}h1 code{background:none;padding:0}' +
  '.status{color:#555}';
const CSP =
  `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; ` +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function page(type: ProblemType, api: string): string {
  const status = `${type.status} ${STATUS_CODES[type.status] ?? ''}`.trim();
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${type.code} (${type.status}) · ${escapeHtml(api)}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1><code>${type.code}</code></h1>`,
    `<p class="status">${escapeHtml(api)} problem type · HTTP ${status}</p>`,
    '<h2>What it means</h2>',
    `<p>${inline(sentence(type.meaning))}</p>`,
    ...(type.todo ? ['<h2>What to do</h2>', `<p>${inline(sentence(type.todo))}</p>`] : []),
    '<h2>About problems</h2>',
    `<p>This API answers every error with an RFC 9457 problem document (<code>application/problem+json</code>): its <code>code</code> is <code>${type.code}</code>, its <code>detail</code> says what went wrong with that request, and its <code>instance</code> is the request's id, to quote when reporting it. Every code is listed in the <a href="/docs">API reference</a>.</p>`,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** The handler for /problems/:code: a page per code of the contract, worked out once; any other code is a 404 problem. */
export function problemPagesHandler(document: Record<string, unknown>): RequestHandler {
  const api = (document.info as { title?: string } | undefined)?.title ?? 'API';
  const pages = new Map(problemTypes(document).map((t) => [t.code, Buffer.from(page(t, api))]));
  return (req, res) => {
    const code = String(req.params.code);
    const html = pages.get(code);
    if (!html) {
      throw problems.notFound(`There is no problem type ${JSON.stringify(code.slice(0, 64))}; the API reference (/docs) lists every code.`);
    }
    res.set({
      'Content-Security-Policy': CSP,
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'public, max-age=300',
    });
    res.send(html);
  };
}
