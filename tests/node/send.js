#!/usr/bin/env node
// tlsfwd e2e: send COUNT events with @fluent-org/logger, acknowledgements on
// (the `ack` option is this package's spelling of fluent-logger-node's
// `requireAckResponse: true`: each emit() resolves only when the server has
// answered {"ack": chunk}).  Prints one JSON line {"sent","acked","failed",
// "errors"} and exits 0 only when every event was acknowledged.
//
// --mode Message (the default here) sends one request, so one chunk id and one
// ack, per event; Forward, PackedForward and CompressedPackedForward batch.
//
//   node send.js --port 24224 [--host 127.0.0.1] [--count 1000] [--tag e2e]
//                [--mode Message] [--timeout-ms 20000]
"use strict";

const { FluentClient } = require("@fluent-org/logger");

function parseArgs(argv) {
  const opts = { host: "127.0.0.1", port: 24224, count: 1000, tag: "e2e", mode: "Message",
                 timeoutMs: 20000 };
  const names = { "--host": "host", "--port": "port", "--count": "count",
                  "--tag": "tag", "--mode": "mode", "--timeout-ms": "timeoutMs" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) {
      throw new Error(`usage: send.js --port N [--host H] [--count N] [--tag T] [--mode M] [--timeout-ms MS] (bad: ${argv[i]})`);
    }
    opts[key] = typeof opts[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const logger = new FluentClient(opts.tag, {
    eventMode: opts.mode,
    socket: { host: opts.host, port: opts.port, timeout: opts.timeoutMs, disableReconnect: true },
    ack: { ackTimeout: opts.timeoutMs },
    eventRetry: { attempts: 1 },
    disableAutoconnect: true,
  });
  await logger.connect();

  const pending = [];
  for (let i = 0; i < opts.count; i++) {
    pending.push(logger.emit("event", { seq: i, message: `event ${i}`, pad: "x".repeat(i % 97) }));
  }
  const results = await Promise.allSettled(pending);
  const failed = results.filter((r) => r.status === "rejected");
  const summary = {
    sent: opts.count,
    acked: opts.count - failed.length,
    failed: failed.length,
    errors: [...new Set(failed.map((r) => String(r.reason)))].slice(0, 5),
  };
  await logger.shutdown().catch(() => {});
  process.stdout.write(JSON.stringify(summary) + "\n");
  process.exitCode = failed.length === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ sent: 0, acked: 0, failed: -1, errors: [String(err)] }) + "\n");
  process.exitCode = 2;
});
