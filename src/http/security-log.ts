// The security event stream: a pino child (`stream: "security"`) whose lines carry an `event` field,
// so they can be routed and alerted on apart from request logs. Never a token or secret: callers
// pass reasons and ids only.
import type { Request } from 'express';
import type { Logger } from 'pino';

export type SecurityEvent =
  | { event: 'auth_failed'; reason: string }
  | { event: 'user_mismatch'; pathUserId: string }
  | { event: 'rate_limited'; limiter: 'ip' | 'user' }
  | { event: 'cross_user_access'; taskId: number };

export type SecurityLog = (req: Request, event: SecurityEvent) => void;

export function createSecurityLog(logger: Logger): SecurityLog {
  const stream = logger.child({ stream: 'security' });
  return (req, event) => {
    const userId = req.res?.locals.userId;
    stream.warn(
      {
        ...event,
        requestId: req.id,
        ip: req.ip,
        method: req.method,
        path: req.originalUrl.split('?')[0],
        ...(userId ? { userId } : {}),
      },
      `security: ${event.event}`,
    );
  };
}
