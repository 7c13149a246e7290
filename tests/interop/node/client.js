#!/usr/bin/env node
// Node peer of the interop suite: @grpc/grpc-js with the service definition shipped by
// grpc-health-check. Same command line and output protocol as ../goclient (see its header):
//   node client.js check|watch|list --addr HOST:PORT [--service NAME] [--count K] [--timeout SECONDS] [--gzip]
'use strict';

const grpc = require('@grpc/grpc-js');
const { service } = require('grpc-health-check');

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, n]) => [n, name]));

function parseArgs(argv) {
  const opts = { mode: argv[0], addr: '', service: '', count: 0, timeout: 10, gzip: false };
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--?/, '');
    if (key === 'gzip') {
      opts.gzip = true;
      i -= 1;
      continue;
    }
    if (!(key in opts) || i + 1 >= argv.length) usage();
    opts[key] = key === 'count' || key === 'timeout' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!opts.addr || !['check', 'watch', 'list'].includes(opts.mode)) usage();
  return opts;
}

function usage() {
  process.stderr.write('usage: client.js check|watch|list --addr HOST:PORT [--service NAME] [--count K] [--timeout S]\n');
  process.exit(2);
}

function errorLine(prefix, err) {
  return `${prefix} ${CODE_NAMES[err.code] ?? `CODE_${err.code}`} ${err.details ?? ''}`;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const Health = grpc.makeClientConstructor(service, 'grpc.health.v1.Health');
  // grpc.default_compression_algorithm 2 = gzip: requests are sent compressed.
  const channelOptions = opts.gzip ? { 'grpc.default_compression_algorithm': 2 } : {};
  const client = new Health(opts.addr, grpc.credentials.createInsecure(), channelOptions);
  const deadline = new Date(Date.now() + opts.timeout * 1000);
  const done = (line) => {
    process.stdout.write(line + '\n');
    client.close();
  };
  if (opts.mode === 'check') {
    client.Check({ service: opts.service }, { deadline }, (err, resp) =>
      done(err ? errorLine('ERROR', err) : resp.status));
  } else if (opts.mode === 'list') {
    client.List({}, { deadline }, (err, resp) => {
      if (err) return done(errorLine('ERROR', err));
      const out = {};
      for (const [name, st] of Object.entries(resp.statuses)) out[name] = st.status;
      done(JSON.stringify(out));
    });
  } else {
    const call = client.Watch({ service: opts.service }, { deadline });
    let n = 0;
    let finished = false;
    call.on('data', (resp) => {
      if (finished) return;
      process.stdout.write(resp.status + '\n');
      n += 1;
      if (opts.count && n >= opts.count) {
        finished = true;
        call.cancel();
        client.close();
      }
    });
    call.on('error', (err) => {
      if (finished) return;
      finished = true;
      done(err.code === grpc.status.DEADLINE_EXCEEDED ? 'TIMEOUT' : errorLine('END', err));
    });
    call.on('end', () => {
      if (finished) return;
      finished = true;
      done('END OK');
    });
  }
}

main();
