// The MCP endpoint: POST /mcp, Streamable HTTP without sessions (every request carries its bearer
// token), JSON responses. An OAuth 2.1 protected resource as the MCP authorization spec asks: a
// request without a valid token gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"`,
// and the metadata (RFC 9728) names the authorization server and this resource. Tools are the
// contract's task operations (src/mcp/tools.ts), each call dispatched into the REST app.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';
import { corsPolicy } from '../http/cors.js';
import { type Request, type RequestHandler, Router } from 'express';
import { authenticate } from '../auth/authenticate.js';
import type { TokenVerifier } from '../auth/verify-token.js';
import type { McpConfig } from '../config.js';
import type { Json } from '../http/contract.js';
import type { SecurityLog } from '../http/security-log.js';
import { callTool } from './call-tool.js';
import type { Dispatch } from './self-dispatch.js';
import { loadTools } from './tools.js';

export const MCP_PATH = '/mcp';
const METADATA_PATH = '/.well-known/oauth-protected-resource';

const INSTRUCTIONS =
  "Manage the signed-in user's own tasks (a to-do list): list, create, read, update, complete and delete them. " +
  'Every call acts for the user of the bearer token; there is no way, and no need, to name a user. ' +
  "Task ids come from list_tasks or create_task; pass a result's etag as if_match to change a task only if it is unchanged.";

/** This resource's identifier: MCP_RESOURCE_URL, or the /mcp URL the request came to. */
function resourceOf(config: McpConfig, req: Request): string {
  return config.resourceUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}${MCP_PATH}`;
}

/** RFC 9728 §3.1: /.well-known/oauth-protected-resource inserted between host and path. */
function metadataUrlOf(resource: string): string {
  const u = new URL(resource);
  return `${u.origin}${METADATA_PATH}${u.pathname === '/' ? '' : u.pathname}`;
}

export interface McpDeps {
  verifier: TokenVerifier;
  security: SecurityLog;
  config: McpConfig;
  /** The REST app itself, into which tool calls are dispatched. */
  dispatch: Dispatch;
  version: string;
}

export function mcpRouter({ verifier, security, config, dispatch, version }: McpDeps): Router {
  const tools = loadTools();
  const byName = new Map(tools.map((t) => [t.name, t]));
  const listed = tools.map(({ http: _http, ...tool }) => tool);
  const router = Router();
  const metadata: RequestHandler = (req, res) => {
    const resource = resourceOf(config, req);
    const body: Json<'getProtectedResourceMetadata', 200> = {
      resource,
      ...(config.authorizationServers.length ? { authorization_servers: config.authorizationServers } : {}),
      bearer_methods_supported: ['header'],
      resource_name: 'Todo API (MCP)',
      resource_documentation: `${new URL(resource).origin}/docs`,
    };
    res.json(body);
  };
  router.get(METADATA_PATH, metadata);
  router.get(`${METADATA_PATH}${MCP_PATH}`, metadata);

  const auth = authenticate(verifier, security, { challenge: (req) => `resource_metadata="${metadataUrlOf(resourceOf(config, req))}"` });
  router.post(MCP_PATH, auth, async (req, res) => {
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

export const isMcpPath = (path: string) => path === MCP_PATH || path.startsWith(METADATA_PATH);
