// This MCP server's resource identifier (RFC 8707/9728): MCP_RESOURCE_URL when set. Without it, in
// development only, the URL the request came to, built from Host and the protocol after checking
// both: a Host is attacker-controlled text, and it ends up in a URL parser, a header's quoted
// string and a JSON document. In production the identifier never comes from a request.
import type { Request } from 'express';
import type { McpConfig } from '../config.js';

export const MCP_PATH = '/mcp';
export const METADATA_PATH = '/.well-known/oauth-protected-resource';

/** /MCP, /Mcp/ and the like: not the endpoint, which answers at /mcp exactly. */
export const isMcpLookalike = (path: string) => path !== MCP_PATH && /^\/mcp\/*$/i.test(path);

// RFC 3986 authority without userinfo: a DNS name (LDH labels), an IPv4 address or a bracketed IPv6
// address, then an optional port. Anything else (a space, %, a quote, a comma, port 99999) is no
// authority this server answers for.
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const AUTHORITY = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*\\.?|\\[[0-9a-f:.]{2,45}\\])(?::(\\d{1,5}))?$`, 'i');

/** Host as a URL's authority, or undefined when it is not one. */
export function checkedHost(host: string | undefined): string | undefined {
  if (host === undefined || host.length > 260) return undefined;
  const m = AUTHORITY.exec(host);
  if (!m) return undefined;
  if (m[1] !== undefined && (Number(m[1]) < 1 || Number(m[1]) > 65_535)) return undefined;
  return host.toLowerCase();
}

/** A URL string only if WHATWG's parser takes it and gives it back unchanged in origin and path. */
function parsed(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/**
 * The resource identifier for this request, or undefined when there is none to give: production
 * without MCP_RESOURCE_URL, or a Host (or forwarded protocol) that names no URL.
 */
export function resourceOf(config: McpConfig, req: Request): URL | undefined {
  if (config.resourceUrl !== undefined) return new URL(config.resourceUrl);
  if (!config.resourceFromHost) return undefined;
  const protocol = req.protocol;
  if (protocol !== 'http' && protocol !== 'https') return undefined;
  const host = checkedHost(req.get('host'));
  return host === undefined ? undefined : parsed(`${protocol}://${host}${MCP_PATH}`);
}

/** RFC 9728 §3.1: /.well-known/oauth-protected-resource inserted between host and path. */
export function metadataUrlOf(resource: URL): string {
  return `${resource.origin}${METADATA_PATH}${resource.pathname === '/' ? '' : resource.pathname}`;
}
