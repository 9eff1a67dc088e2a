'use strict';
// node-redis v4 (RESP2) against sessiond: the session flow of a web app.
const { createClient, ErrorReply } = require('redis4');
const { env, out, show, ttlCheck, clientInfo, fail } = require('./common');

async function main() {
  const client = createClient({
    socket: { host: env.host, port: env.port, connectTimeout: 5000, reconnectStrategy: false },
    password: env.password,
    database: env.db,
    name: env.name,
  });
  client.on('error', fail);
  await client.connect();
  out('connect', clientInfo(await client.sendCommand(['CLIENT', 'INFO'])));
  out('info', (await client.info('server')).includes('redis_mode:standalone') ? 'standalone' : 'no redis_mode');
  out('ping', show(await client.ping()));

  // Login: the session is written with a TTL.
  out('login', show(await client.set('sess:abc', 'uid=42;name=ana', { EX: 1800 })));
  out('setex', show(await client.setEx('sess:def', 60, 'uid=7')));
  // A request: read and slide the expiry in one round trip...
  out('getex', show(await client.getEx('sess:abc', { EX: 1800 })));
  out('ttl', ttlCheck(await client.ttl('sess:abc'), 1800));
  // ...or in two (GET then EXPIRE).
  out('get', show(await client.get('sess:def')));
  out('expire', show(await client.expire('sess:def', 1800)));
  out('ttl-slid', ttlCheck(await client.ttl('sess:def'), 1800));
  out('missing', show(await client.get('sess:nope')));
  out('dbsize', show(await client.dbSize()));

  // SCAN over many sessions.
  for (let i = 0; i < 30; i++) await client.set(`sess:scan:${String(i).padStart(2, '0')}`, 'x', { EX: 600 });
  const seen = [];
  for await (const key of client.scanIterator({ MATCH: 'sess:scan:*', COUNT: 7 })) seen.push(key);
  out('scan', `${seen.length} keys, ${new Set(seen).size} distinct`);

  // A wrong-arity command surfaces as the client's reply error type.
  try {
    await client.sendCommand(['GET', 'a', 'b']);
    out('error', 'none');
  } catch (e) {
    out('error', `${e.constructor.name} ${e instanceof ErrorReply} ${e.message}`);
  }

  // Pipelining (no MULTI): several commands in one write.
  const replies = await client.multi()
    .set('sess:p', 'uid=1', { EX: 600 })
    .getEx('sess:p', { EX: 900 })
    .ttl('sess:p')
    .del('sess:p')
    .execAsPipeline();
  out('pipeline', replies.map(show).join(' '));
  // Commands issued in the same tick are pipelined too.
  const auto = await Promise.all([client.get('sess:auto'), client.get('sess:abc'), client.exists('sess:def')]);
  out('auto-pipeline', auto.map(show).join(' '));

  // Logout.
  out('logout', show(await client.del('sess:abc')));
  out('after-logout', show(await client.get('sess:abc')));
  await client.quit();
  out('quit', 'ok');
}

main().catch(fail);
