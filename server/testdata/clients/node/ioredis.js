'use strict';
// ioredis against sessiond: the session flow of a web app. The module comes
// from argv (ioredis = v6, RESP3 by default; ioredis5 = v5, RESP2) and the
// protocol from SESSIOND_PROTOCOL (unset: the client's default).
const moduleName = process.argv[2] || 'ioredis';
const Redis = require(moduleName);
const { ReplyError } = Redis;
const { env, out, show, ttlCheck, clientInfo, fail } = require('./common');

async function main() {
  const opts = {
    host: env.host,
    port: env.port,
    password: env.password,
    db: env.db,
    connectionName: env.name,
    connectTimeout: 5000,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  };
  if (process.env.SESSIOND_PROTOCOL) opts.protocol = Number(process.env.SESSIOND_PROTOCOL);
  const client = new Redis(opts);
  client.on('error', fail);
  await client.connect();
  out('connect', clientInfo(await client.client('INFO')));
  out('info', (await client.info('server')).includes('redis_mode:standalone') ? 'standalone' : 'no redis_mode');
  out('ping', show(await client.ping()));

  // Login: the session is written with a TTL.
  out('login', show(await client.set('sess:abc', 'uid=42;name=ana', 'EX', 1800)));
  out('setex', show(await client.setex('sess:def', 60, 'uid=7')));
  // A request: read and slide the expiry in one round trip...
  out('getex', show(await client.getex('sess:abc', 'EX', 1800)));
  out('ttl', ttlCheck(await client.ttl('sess:abc'), 1800));
  // ...or in two (GET then EXPIRE).
  out('get', show(await client.get('sess:def')));
  out('expire', show(await client.expire('sess:def', 1800)));
  out('ttl-slid', ttlCheck(await client.ttl('sess:def'), 1800));
  out('missing', show(await client.get('sess:nope')));
  out('dbsize', show(await client.dbsize()));

  // SCAN over many sessions, through ioredis's scanStream.
  for (let i = 0; i < 30; i++) await client.set(`sess:scan:${String(i).padStart(2, '0')}`, 'x', 'EX', 600);
  const seen = [];
  await new Promise((resolve, reject) => {
    client.scanStream({ match: 'sess:scan:*', count: 7 })
      .on('data', keys => seen.push(...keys))
      .on('error', reject)
      .on('end', resolve);
  });
  out('scan', `${seen.length} keys, ${new Set(seen).size} distinct`);

  // A wrong-arity command surfaces as the client's reply error type.
  try {
    await client.call('GET', 'a', 'b');
    out('error', 'none');
  } catch (e) {
    out('error', `${e.constructor.name} ${e instanceof ReplyError} ${e.message}`);
  }

  // Pipelining (no MULTI): exec gives [err, reply] per command.
  const replies = await client.pipeline()
    .set('sess:p', 'uid=1', 'EX', 600)
    .getex('sess:p', 'EX', 900)
    .ttl('sess:p')
    .call('GET', 'x', 'y')
    .del('sess:p')
    .exec();
  out('pipeline', replies.map(([err, v]) => (err ? `${err.constructor.name}` : show(v))).join(' '));

  // Logout.
  out('logout', show(await client.del('sess:abc')));
  out('after-logout', show(await client.get('sess:abc')));
  await client.quit();
  out('quit', 'ok');
}

main().catch(fail);
