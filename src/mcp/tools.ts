// The MCP tools as generated from the contract (scripts/mcp-tools.mjs → generated/mcp-tools.json).
import { readFileSync } from 'node:fs';

export interface ToolHttp {
  operationId: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The REST path template, e.g. /api/tasks/{taskId}. */
  path: string;
  /** Tool argument → the REST parameter it fills. */
  params: Record<string, { in: 'path' | 'query' | 'header'; name: string }>;
  /** Tool arguments that are the request body's fields; null: the operation takes no body. */
  body: string[] | null;
  /** Parameters the tool always sends (a required parameter with one possible value). */
  fixed: Record<string, string>;
  /** How the success response becomes structuredContent. */
  result: 'list' | 'task' | 'deleted' | 'object';
  /** The arguments with every constraint of the contract, as calls are checked (inputSchema is the listed, shorter form). */
  arguments: { type: 'object'; properties: Record<string, object>; required?: string[] };
}

export interface Tool {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: 'object'; properties: Record<string, object>; required?: string[] };
  outputSchema: { type: 'object'; properties: Record<string, object>; required?: string[] };
  annotations: Record<string, unknown>;
  http: ToolHttp;
}

export function loadTools(): Tool[] {
  return JSON.parse(readFileSync(new URL('../../generated/mcp-tools.json', import.meta.url), 'utf8')) as Tool[];
}
