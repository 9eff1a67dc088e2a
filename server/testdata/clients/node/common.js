'use strict';
// Shared helpers for the client scripts: the address and credentials come
// from the environment (set by server/clients_test.go), and every script
// prints one "step: value" line per step of the session flow.

const addr = process.env.SESSIOND_ADDR;
if (!addr) {
  console.error('SESSIOND_ADDR is not set');
  process.exit(2);
}
const [host, portStr] = addr.split(':');

const env = {
  host,
  port: Number(portStr),
  password: process.env.SESSIOND_PASSWORD || '',
  db: Number(process.env.SESSIOND_DB || '0'),
  name: process.env.SESSIOND_CLIENT_NAME || '',
};

function out(step, value) {
  console.log(`${step}: ${value}`);
}

// show renders a reply value so that its type is visible: strings quoted,
// null, booleans and numbers as they are.
function show(v) {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string' || v === null || typeof v === 'number' || typeof v === 'boolean') {
    return JSON.stringify(v);
  }
  if (v instanceof String) return `String(${JSON.stringify(String(v))})`;
  if (Buffer.isBuffer(v)) return `Buffer(${JSON.stringify(v.toString())})`;
  if (Array.isArray(v)) return `[${v.map(show).join(',')}]`;
  return `${v.constructor ? v.constructor.name : typeof v}(${JSON.stringify(v)})`;
}

// ttlCheck is "ok" when a TTL just set to want seconds reads back as
// want or slightly less.
function ttlCheck(got, want) {
  const n = Number(got);
  return n <= want && n >= want - 10 ? 'ok' : `unexpected ${show(got)}`;
}

// clientInfo picks the fields of a CLIENT INFO line that the handshake sets.
function clientInfo(line) {
  const f = {};
  for (const kv of String(line).trim().split(' ')) {
    const i = kv.indexOf('=');
    if (i > 0) f[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return ['name', 'db', 'resp', 'lib-name'].map(k => `${k}=${f[k] ?? '?'}`).join(' ');
}

function fail(err) {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}

module.exports = { env, out, show, ttlCheck, clientInfo, fail };
