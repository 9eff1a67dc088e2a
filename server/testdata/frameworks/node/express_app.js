'use strict';
// An express 5 application keeping its sessions in Redis through
// express-session and connect-redis, driven over HTTP by
// server/frameworks_test.go (see webFlow there for the endpoints).
//
//   node express_app.js redis4|redis6|ioredis
//
// The Redis address comes from SESSIOND_ADDR; node_modules from NODE_PATH
// (server/testdata/clients/node/node_modules). The configuration is the one
// each package documents, nothing sessiond-specific.

const express = require('express');
const session = require('express-session');

const TTL = 1800; // seconds
const SHORT = 2;

const [host, port] = process.env.SESSIOND_ADDR.split(':');
const kind = process.argv[2];

async function connect() {
  switch (kind) {
    case 'redis4': {
      // node-redis 4, RESP2, with connect-redis 7.
      const { createClient } = require('redis4');
      const client = createClient({ socket: { host, port: Number(port), reconnectStrategy: false } });
      client.on('error', (err) => console.error('redis client error:', err.message));
      await client.connect();
      const RedisStore = require('connect-redis7').default;
      return new RedisStore({ client, prefix: 'sess:' });
    }
    case 'redis6': {
      // node-redis 6 over RESP3, with connect-redis 9 (which needs node-redis 5+).
      const { createClient } = require('redis6');
      const client = createClient({ RESP: 3, socket: { host, port: Number(port), reconnectStrategy: false } });
      client.on('error', (err) => console.error('redis client error:', err.message));
      await client.connect();
      const { RedisStore } = require('connect-redis9');
      return new RedisStore({ client, prefix: 'sess:' });
    }
    case 'ioredis': {
      // ioredis 6, with connect-redis 7.
      const Redis = require('ioredis');
      const client = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1, retryStrategy: () => null });
      client.on('error', (err) => console.error('redis client error:', err.message));
      const RedisStore = require('connect-redis7').default;
      return new RedisStore({ client, prefix: 'sess:' });
    }
    default:
      throw new Error(`unknown client ${kind}`);
  }
}

function show(s) {
  return s.user === undefined ? 'anonymous' : `user=${s.user} visits=${s.visits}`;
}

async function main() {
  const store = await connect();
  const app = express();
  app.use(session({
    store,
    secret: 'frameworks-test-secret',
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: TTL * 1000, httpOnly: true },
  }));
  app.get('/login', (req, res, next) => {
    // A new id at login, as the express-session docs recommend.
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = req.query.user;
      req.session.visits = 1;
      if (req.query.short === '1') req.session.cookie.maxAge = SHORT * 1000;
      res.type('text').send(show(req.session));
    });
  });
  app.get('/whoami', (req, res) => res.type('text').send(show(req.session)));
  app.get('/visit', (req, res) => {
    if (req.session.user !== undefined) req.session.visits++;
    res.type('text').send(show(req.session));
  });
  app.get('/logout', (req, res, next) => {
    req.session.destroy((err) => {
      if (err) return next(err);
      res.clearCookie('connect.sid').type('text').send('bye');
    });
  });
  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${server.address().port}`);
  });
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
