// The MCP endpoint: POST /mcp, Streamable HTTP without sessions (every request carries its bearer
// token), JSON responses. An OAuth 2.1 protected resource as the MCP authorization spec asks: a
// request without a valid token gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"`,
// and the metadata (RFC 9728) names the authorization server and this resource. Tools are the
// contract's task operations (src/mcp/tools.ts), each call made of the task service, as the REST
// routes make theirs: no second listener, no request of the app to itself.
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  ErrorCode,
  InitializeRequestSchema,
  ListToolsRequestSchema,
  PingRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { corsPolicy } from '../http/cors.js';
import { type RequestHandler, Router } from 'express';
import { composeMiddleware } from '../http/compose.js';
import { authenticate } from '../auth/authenticate.js';
import type { TokenVerifier } from '../auth/verify-token.js';
import type { McpConfig } from '../config.js';
import type { Json } from '../http/contract.js';
import type { SecurityLog } from '../http/security-log.js';
import { problems } from '../http/problem.js';
import type { TaskService } from '../tasks/service.js';
import { argumentChecker } from './arguments.js';
import { callTool, fromHttp } from './call-tool.js';
import { problemOfFailure } from '../http/error-handler.js';
import { MCP_PATH, METADATA_PATH, metadataUrlOf, resourceOf } from './resource.js';
import { loadTools } from './tools.js';

export { MCP_PATH } from './resource.js';

const INSTRUCTIONS =
  "Manage the signed-in user's own tasks (a to-do list): list, create, read, update, complete and delete them. " +
  'Every call acts for the user of the bearer token; there is no way, and no need, to name a user. ' +
  "Task ids come from list_tasks or create_task; pass a result's etag as if_match to change a task only if it is unchanged. " +
  'Every result carries now, the current time (UTC), for resolving dates such as "tomorrow". ' +
  'Completing a recurring task moves it to its next occurrence: give idempotency_key so a retry cannot move it twice.';

export interface McpDeps {
  config: McpConfig;
  service: TaskService;
  security: SecurityLog;
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

// The requests this server answers, with the SDK's own schemas for them. The SDK's handlers parse
// params as well, but answer a failure as an internal error (-32603) with the schema library's
// report; checked here first, a malformed request is -32602 in plain words.
const REQUESTS = new Map<string, { safeParse(v: unknown): { success: boolean; error?: { issues: { path: PropertyKey[] }[] } } }>([
  ['initialize', InitializeRequestSchema],
  ['ping', PingRequestSchema],
  ['tools/list', ListToolsRequestSchema],
  ['tools/call', CallToolRequestSchema],
]);

/** Why a JSON-RPC request's params cannot be served, or undefined when they can (or it is no request of ours). */
function invalidParams(body: unknown, isTool: (name: string) => boolean): { id: unknown; message: string } | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const message = body as { method?: unknown; params?: unknown; id?: unknown };
  if (typeof message.method !== 'string' || message.id === undefined) return undefined;
  const schema = REQUESTS.get(message.method);
  if (!schema) return undefined;
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (message.method === 'tools/call') {
    const p = message.params as { name?: unknown; arguments?: unknown; task?: unknown } | undefined;
    if (!isObject(p) || typeof p!.name !== 'string' || (p!.arguments !== undefined && !isObject(p!.arguments))) {
      return {
        id: message.id,
        message: 'tools/call takes params.name, a tool name from tools/list, and params.arguments, an object of its arguments.',
      };
    }
    if (p!.task !== undefined) return { id: message.id, message: 'This server runs tools at once, not as tasks: leave out params.task.' };
    // Said here rather than thrown from the handler: the SDK would prefix "MCP error -32602:" to
    // the message, and its client prefixes that again.
    if (!isTool(p!.name as string))
      return { id: message.id, message: `Unknown tool ${JSON.stringify((p!.name as string).slice(0, 64))}; tools/list names them.` };
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return undefined;
  const where = [...new Set((parsed.error?.issues ?? []).map((i) => i.path.map(String).join('.')))].filter(Boolean);
  return {
    id: message.id,
    message: `${message.method}: ${where.length ? where.join(', ') : 'its params'} not as the MCP specification defines them.`,
  };
}

export function mcpRouter({ config, service, security, version }: McpDeps): Router {
  const tools = loadTools();
  const check = argumentChecker(tools);
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
    const invalid = invalidParams(req.body, (name) => byName.has(name));
    if (invalid) {
      res.status(200).json({ jsonrpc: '2.0', id: invalid.id, error: { code: ErrorCode.InvalidParams, message: invalid.message } });
      return;
    }
    const userId = res.locals.userId as string;
    const caller = {
      userId,
      // A probe of another user's task is logged after the fact, as REST does; the answer is a plain 404.
      notFound: (...taskIds: number[]) =>
        void service.ownedByOthers(userId, taskIds).then(
          (theirs) => {
            for (const taskId of theirs) security(req, { event: 'cross_user_access', taskId });
          },
          () => {},
        ),
    };
    const server = new Server(
      { name: 'todo-api', title: 'Todo API', version },
      { capabilities: { tools: {} }, instructions: INSTRUCTIONS },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listed }));
    server.setRequestHandler(CallToolRequestSchema, async ({ params }) => {
      // invalidParams answered for any other name.
      const tool = byName.get(params.name)!;
      // The arguments as sent, not as the SDK parsed them: its parse drops an own `__proto__`,
      // which must be refused by name like any other argument the tool does not have.
      const sent = (req.body as { params?: { arguments?: Record<string, unknown> } }).params?.arguments;
      try {
        return await callTool({ service, check }, tool, sent ?? params.arguments ?? {}, caller);
      } catch (err) {
        // As REST answers it: a result naming the problem's code, never the failure's own text.
        return fromHttp(tool, problemOfFailure(err, req.log));
      }
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
