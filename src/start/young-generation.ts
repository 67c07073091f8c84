// V8's allocation-site pretenuring, off for the server. Under a steady load V8 sees that some
// allocation sites' objects often outlive a young-generation collection (those of requests in
// flight when one runs) and starts allocating them straight in the old generation. From there every
// such object, dead or alive, keeps what it points to alive through each later young collection, so
// each request's rows and responses were copied twice and promoted: about 1.1 MB a collection in
// scenario A, against 0.14 MB with it off, and a pause of 3.0 against 1.5 ms every 80 ms or so
// (README, "Young-generation pauses"). Set here, first thing, rather than as a node option, so it
// holds however the server is started (npm start, node dist/server.js, a container's command, each
// cluster worker). V8 reads it at each collection, so setting it at run time takes effect.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-allocation-site-pretenuring');
