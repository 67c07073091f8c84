// The rules of a user's webhook endpoints: which URLs may be registered (address-policy.ts), how
// many, the signing secret (shown once, rotated with an overlap), the attempts a user may read
// and redelivery. The HTTP routes (routes.ts) translate; the SQL is in queries.ts.
import { randomBytes } from 'node:crypto';
import type { components } from '../../generated/openapi.js';
import type { WebhooksConfig } from '../config.js';
import type { Database } from '../db/types.js';
import { type AddressPolicy, checkedAddress, parseWebhookUrl, RefusedUrl } from './address-policy.js';
import * as queries from './queries.js';

type Schemas = components['schemas'];
/** The contract's shapes: an endpoint as answered, one attempt, an event's name. */
export type EndpointJson = Schemas['WebhookEndpoint'];
type AttemptJson = Schemas['WebhookAttempt'];
type WebhookEventType = Schemas['WebhookEventType'];

// Every event the contract lists, in its order: a Record, so an event the contract gains does not
// compile until it has its place here.
const EVENT_ORDER: Record<WebhookEventType, true> = {
  'task.created': true,
  'task.updated': true,
  'task.completed': true,
  'task.deleted': true,
  'reminder.due': true,
};
export const WEBHOOK_EVENTS = Object.keys(EVENT_ORDER) as WebhookEventType[];

function endpointJson(r: queries.EndpointRow): EndpointJson {
  return {
    id: Number(r.id),
    url: r.url,
    description: r.description,
    events: r.events as WebhookEventType[],
    enabled: r.enabled,
    disabled_reason: r.disabled_reason,
    disabled_at: r.disabled_at,
    failing_since: r.failing_since,
    previous_secret_expires_at: r.previous_secret_until,
    created_at: r.created_at,
    updated_at: r.updated_at,
  };
}

/** A signing secret as Standard Webhooks writes it: `whsec_` and 32 random bytes in base64. */
export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export type UrlCheck = { ok: true; url: string } | { ok: false; message: string };

export interface WebhookService {
  list(userId: string): Promise<EndpointJson[]>;
  get(userId: string, id: string): Promise<EndpointJson | undefined>;
  /** The new endpoint and its secret; `refused` when the URL may not be called, `limit` when the user has as many as allowed. */
  create(
    userId: string,
    input: { url: string; description?: string | undefined; events?: WebhookEventType[] | undefined },
  ): Promise<
    { kind: 'created'; endpoint: EndpointJson; secret: string } | { kind: 'refused'; message: string } | { kind: 'limit'; max: number }
  >;
  update(
    userId: string,
    id: string,
    input: {
      url?: string | undefined;
      description?: string | undefined;
      events?: WebhookEventType[] | undefined;
      enabled?: boolean | undefined;
    },
  ): Promise<{ kind: 'updated'; endpoint: EndpointJson } | { kind: 'refused'; message: string } | { kind: 'not_found' }>;
  remove(userId: string, id: string): Promise<boolean>;
  rotateSecret(userId: string, id: string): Promise<Schemas['WebhookSecret'] | undefined>;
  attempts(userId: string, id: string, limit: number): Promise<AttemptJson[] | undefined>;
  redeliver(userId: string, id: string, messageId: string): Promise<Schemas['WebhookRedelivery'] | undefined>;
}

function attemptJson(r: queries.AttemptRow): AttemptJson {
  return {
    id: Number(r.id),
    message_id: r.message_id,
    event_type: r.event_type as WebhookEventType,
    attempted_at: r.attempted_at,
    status: r.status,
    error: r.error,
    duration_ms: r.duration_ms,
    message_state: r.message_state,
    next_attempt_at: r.next_attempt_at,
  };
}

/** Distinct events in the contract's order. */
const canonicalEvents = (events: readonly string[]) => WEBHOOK_EVENTS.filter((e) => events.includes(e));

/** `queued`: told when messages may be due now (a redelivery, an endpoint enabled again), to deliver at once. */
export function createWebhookService(db: Database, config: WebhooksConfig, policy: AddressPolicy, queued?: () => void): WebhookService {
  /**
   * A URL that may be registered: its form (parseWebhookUrl) and, for a name, what it resolves to
   * now. A name that does not resolve yet is accepted (its DNS may come later); every attempt
   * checks again.
   */
  async function checkUrl(raw: string): Promise<UrlCheck> {
    try {
      const url = parseWebhookUrl(raw, policy);
      // The URL is stored as written out again (percent-encoded), which may be longer.
      if (url.href.length > 2048) throw new RefusedUrl('must be at most 2048 characters once percent-encoded');
      await checkedAddress(url, policy).catch((err: unknown) => {
        if (err instanceof RefusedUrl) throw err;
      });
      return { ok: true, url: url.href };
    } catch (err) {
      if (err instanceof RefusedUrl) return { ok: false, message: err.message };
      throw err;
    }
  }

  return {
    async list(userId) {
      return (await queries.listEndpoints(db, userId)).map(endpointJson);
    },
    async get(userId, id) {
      const row = await queries.getEndpoint(db, userId, id);
      return row && endpointJson(row);
    },
    async create(userId, input) {
      const checked = await checkUrl(input.url);
      if (!checked.ok) return { kind: 'refused', message: checked.message };
      const secret = newSecret();
      const row = await queries.createEndpoint(
        db,
        userId,
        { url: checked.url, description: input.description ?? '', events: canonicalEvents(input.events ?? WEBHOOK_EVENTS), secret },
        config.endpointsPerUser,
      );
      if (!row) return { kind: 'limit', max: config.endpointsPerUser };
      return { kind: 'created', endpoint: endpointJson(row), secret };
    },
    async update(userId, id, input) {
      let url: string | undefined;
      if (input.url !== undefined) {
        const checked = await checkUrl(input.url);
        if (!checked.ok) return { kind: 'refused', message: checked.message };
        url = checked.url;
      }
      const row = await queries.updateEndpoint(db, userId, id, {
        url,
        description: input.description,
        events: input.events && canonicalEvents(input.events),
        enabled: input.enabled,
      });
      if (row && (input.enabled || input.url !== undefined)) queued?.();
      return row ? { kind: 'updated', endpoint: endpointJson(row) } : { kind: 'not_found' };
    },
    remove(userId, id) {
      return queries.deleteEndpoint(db, userId, id);
    },
    async rotateSecret(userId, id) {
      const secret = newSecret();
      const rotated = await queries.rotateSecret(db, userId, id, secret, config.secretOverlapSeconds);
      return rotated && { secret, previous_secret_expires_at: rotated.previous_secret_until };
    },
    async attempts(userId, id, limit) {
      return (await queries.listAttempts(db, userId, id, limit))?.map(attemptJson);
    },
    async redeliver(userId, id, messageId) {
      const again = await queries.redeliver(db, userId, id, messageId);
      if (again) queued?.();
      return again;
    },
  };
}
