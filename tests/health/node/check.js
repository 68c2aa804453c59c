#!/usr/bin/env node
// An independent grpc.health.v1 client: the npm package grpc-health-check's
// service definition over @grpc/grpc-js, no npukd code involved.
//
//   node check.js TARGET [SERVICE] [--watch]
//
// TARGET is unix:/path or host:port. Prints the status (SERVING,
// NOT_SERVING, SERVICE_UNKNOWN, ...) and exits like `npukctl health`:
// 0 SERVING, 1 not serving or unknown service, 2 unreachable or error.
// With --watch it prints every status the Watch stream sends, one a line,
// until the stream ends (exit 0) or fails (exit 2).
'use strict';
const grpc = require('@grpc/grpc-js');
const health = require('grpc-health-check');

const args = process.argv.slice(2);
const watch = args.includes('--watch');
const [target, service = ''] = args.filter((a) => a !== '--watch');
if (!target) {
  console.error('usage: node check.js unix:/path|host:port [SERVICE] [--watch]');
  process.exit(2);
}

const Health = grpc.makeClientConstructor(health.service, 'grpc.health.v1.Health');
const client = new Health(target, grpc.credentials.createInsecure());

if (watch) {
  const call = client.Watch({ service });
  call.on('data', (r) => console.log(r.status));
  call.on('error', (e) => {
    console.log(`ERROR ${grpc.status[e.code]} ${e.details}`);
    process.exit(2);
  });
  call.on('end', () => process.exit(0));
} else {
  const deadline = new Date(Date.now() + 10000);
  client.Check({ service }, { deadline }, (err, r) => {
    if (err) {
      console.log(`ERROR ${grpc.status[err.code]} ${err.details}`);
      process.exit(err.code === grpc.status.NOT_FOUND ? 1 : 2);
    }
    console.log(r.status);
    process.exit(r.status === 'SERVING' ? 0 : 1);
  });
}
