// The MCP endpoint: POST /mcp, Streamable HTTP without sessions (every request carries its bearer
// token), JSON responses. An OAuth 2.1 protected resource as the MCP authorization spec asks: a
// request without a valid token gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"`,
// and the metadata (RFC 9728) names the authorization server and this resource. Tools are the
// contract's task operations (src/mcp/tools.ts), each call dispatched into the REST app.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { corsPolicy } from '../http/cors.js';
import { type RequestHandler, Router } from 'express';
import { composeMiddleware } from '../http/compose.js';
import { authenticate } from '../auth/authenticate.js';
import type { TokenVerifier } from '../auth/verify-token.js';
import type { McpConfig } from '../config.js';
import type { Json } from '../http/contract.js';
import type { SecurityLog } from '../http/security-log.js';
import { problems } from '../http/problem.js';
import { callTool } from './call-tool.js';
import { MCP_PATH, METADATA_PATH, metadataUrlOf, resourceOf } from './resource.js';
import type { Dispatch } from './self-dispatch.js';
import { loadTools } from './tools.js';

export { MCP_PATH } from './resource.js';

const INSTRUCTIONS =
  "Manage the signed-in user's own tasks (a to-do list): list, create, read, update, complete and delete them. " +
  'Every call acts for the user of the bearer token; there is no way, and no need, to name a user. ' +
  "Task ids come from list_tasks or create_task; pass a result's etag as if_match to change a task only if it is unchanged.";

export interface McpDeps {
  config: McpConfig;
  /** The REST app itself, into which tool calls are dispatched. */
  dispatch: Dispatch;
  version: string;
}

export interface McpGateDeps {
  verifier: TokenVerifier;
  security: SecurityLog;
  config: McpConfig;
  /** The per-user limit, the same budget REST requests spend. */
  userLimit: RequestHandler;
}

/**
 * POST /mcp's authentication and per-user limit, mounted before any body is read (as /api's are):
 * a caller without a valid token costs no parsing, and every MCP request, whatever its JSON-RPC
 * method, spends one request of the user's budget. The path is matched exactly, as the route is.
 */
export function mcpGate({ verifier, security, config, userLimit }: McpGateDeps): RequestHandler {
  const auth = authenticate(verifier, security, {
    challenge: (req) => {
      const resource = resourceOf(config, req);
      return resource ? `resource_metadata="${metadataUrlOf(resource)}"` : undefined;
    },
  });
  const gate = composeMiddleware([auth, userLimit]);
  return (req, res, next) => (req.method === 'POST' && req.path === MCP_PATH ? gate(req, res, next) : next());
}

/** A JSON-RPC tools/call whose params are not {name: string, arguments?: object}, or undefined. */
function malformedToolCall(body: unknown): { id: unknown } | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { method, params, id } = body as { method?: unknown; params?: unknown; id?: unknown };
  if (method !== 'tools/call') return undefined;
  const p = params as { name?: unknown; arguments?: unknown } | null | undefined;
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(p) && typeof p!.name === 'string' && (p!.arguments === undefined || isObject(p!.arguments))) return undefined;
  return { id: id ?? null };
}

export function mcpRouter({ config, dispatch, version }: McpDeps): Router {
  const tools = loadTools();
  const byName = new Map(tools.map((t) => [t.name, t]));
  const listed = tools.map(({ http: _http, ...tool }) => tool);
  // Exact paths: /MCP or /mcp/ are not this endpoint (and not under its CORS policy).
  const router = Router({ caseSensitive: true, strict: true });
  const metadata: RequestHandler = (req, res) => {
    const resource = resourceOf(config, req);
    if (!resource) {
      throw problems.notFound(
        config.resourceFromHost
          ? 'No protected-resource metadata for this Host: it is not a host name, address or port this server can name.'
          : 'This server publishes no protected-resource metadata: it is configured by MCP_RESOURCE_URL.',
      );
    }
    const body: Json<'getProtectedResourceMetadata', 200> = {
      resource: resource.href,
      ...(config.authorizationServers.length ? { authorization_servers: config.authorizationServers } : {}),
      bearer_methods_supported: ['header'],
      resource_name: 'Todo API (MCP)',
      resource_documentation: `${resource.origin}/docs`,
    };
    res.json(body);
  };
  router.get(METADATA_PATH, metadata);
  router.get(`${METADATA_PATH}${MCP_PATH}`, metadata);

  // Authenticated and counted by mcpGate before the body was read.
  router.post(MCP_PATH, async (req, res) => {
    const malformed = malformedToolCall(req.body);
    if (malformed) {
      res.status(200).json({
        jsonrpc: '2.0',
        id: malformed.id,
        error: {
          code: ErrorCode.InvalidParams,
          message: 'tools/call takes params.name, a tool name from tools/list, and params.arguments, an object of its arguments.',
        },
      });
      return;
    }
    const caller = { userId: res.locals.userId as string, ip: req.ip ?? '', requestId: req.id };
    const server = new Server(
      { name: 'todo-api', title: 'Todo API', version },
      { capabilities: { tools: {} }, instructions: INSTRUCTIONS },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
    server.setRequestHandler(CallToolRequestSchema, async ({ params }) => {
      const tool = byName.get(params.name);
      if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool ${params.name}; tools/list names them.`);
      return callTool(dispatch, tool, params.arguments ?? {}, caller);
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  return router;
}

/** CORS for /mcp and its metadata: only the origins MCP_CORS_ORIGINS names; none by default. */
export function mcpCors(config: McpConfig): RequestHandler {
  if (config.corsOrigins.length === 0) return (_req, _res, next) => next();
  return corsPolicy({
    origins: config.corsOrigins,
    allowedHeaders: ['Authorization', 'Content-Type', 'Accept', 'Mcp-Protocol-Version', 'X-Request-Id'],
    exposedHeaders: ['WWW-Authenticate', 'X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After'],
    maxAgeSec: 600,
  });
}

/** The paths the MCP endpoint answers, exactly as its router matches them. */
export const isMcpPath = (path: string) => path === MCP_PATH || path === METADATA_PATH || path === `${METADATA_PATH}${MCP_PATH}`;
