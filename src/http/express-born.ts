// Node's request and response classes, with the app's own prototypes from birth. Express moves
// every request and response onto app.request and app.response (Object.setPrototypeOf) as it
// starts to handle them; in V8 that gives each object a fresh hidden class on every request,
// which every later property access on it, in Node's http code, Express and the app alike, then
// meets unprepared. An object already born with that prototype makes the call a no-op. Measured
// on a get: 36 % less CPU per request (docs/performance.md, "Hand-made speed-ups").
import { IncomingMessage, type ServerOptions, ServerResponse } from 'node:http';
import type { Express } from 'express';

type Classes = Required<Pick<ServerOptions, 'IncomingMessage' | 'ServerResponse'>>;

export function expressBorn(app: Express): Classes {
  // Plain constructor functions: a class's prototype property cannot be reassigned. Their objects
  // keep their properties in a dictionary (V8's %HasFastProperties is false: the wrapper's empty
  // body leaves no room for what Node's constructor adds), and that is the faster form here:
  // built with `Reflect.construct(IncomingMessage, args, Request)` they keep fast properties, and
  // a get cost 890–960 µs of CPU against 340–580 (COMPARE_PATH=get, three rounds), presumably
  // because each middleware's added properties fork the objects' hidden classes.
  function Request(this: IncomingMessage, ...args: ConstructorParameters<typeof IncomingMessage>) {
    IncomingMessage.apply(this, args);
  }
  Request.prototype = app.request;
  function Response(this: ServerResponse, ...args: ConstructorParameters<typeof ServerResponse>) {
    ServerResponse.apply(this, args);
  }
  Response.prototype = app.response;
  return {
    IncomingMessage: Request as unknown as Classes['IncomingMessage'],
    ServerResponse: Response as unknown as Classes['ServerResponse'],
  };
}
