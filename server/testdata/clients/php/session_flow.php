<?php
// phpredis against sessiond: the session flow of a web app, first through
// the Redis class directly, then through PHP's own session handler
// (session.save_handler=redis), the way a PHP site stores its sessions.
//
// Run by server/clients_test.go with php-cli and Debian's php-redis. The
// address, password, database and client name come from the environment;
// each step prints one "step: value" line, values shown with var_export()
// so that their PHP type is visible (phpredis returns false for nil).

declare(strict_types=1);

// Output is buffered so that PHP's session functions, which refuse to run
// once "headers" (any output, in the CLI) have been sent, still work.
ob_start();

function out(string $step, string $value): void
{
    echo "$step: $value\n";
}

function show($v): string
{
    return var_export($v, true);
}

function ttl_check($got, int $want): string
{
    return is_int($got) && $got <= $want && $got >= $want - 10 ? 'ok' : 'unexpected ' . show($got);
}

function client_info(string $line): string
{
    $f = [];
    foreach (preg_split('/\s+/', trim($line)) as $kv) {
        $p = explode('=', $kv, 2);
        if (count($p) === 2) {
            $f[$p[0]] = $p[1];
        }
    }
    $o = [];
    foreach (['name', 'db', 'resp', 'lib-name'] as $k) {
        $o[] = "$k=" . ($f[$k] ?? '?');
    }
    return implode(' ', $o);
}

function fail(string $msg): void
{
    while (ob_get_level() > 0) {
        ob_end_flush();
    }
    fwrite(STDERR, "FAIL: $msg\n");
    exit(1);
}

set_error_handler(function (int $no, string $str, string $file, int $line) {
    fail("PHP error $no: $str at $file:$line");
});

$addr = getenv('SESSIOND_ADDR') ?: fail('SESSIOND_ADDR is not set');
[$host, $port] = explode(':', $addr);
$port = (int)$port;
$password = getenv('SESSIOND_PASSWORD') ?: '';
$db = (int)(getenv('SESSIOND_DB') ?: '0');
$name = getenv('SESSIOND_CLIENT_NAME') ?: '';

try {
    $r = new Redis();
    $r->connect($host, $port, 5.0);
    if ($password !== '' && !$r->auth($password)) {
        fail('AUTH: ' . $r->getLastError());
    }
    if (!$r->select($db)) {
        fail('SELECT: ' . $r->getLastError());
    }
    if ($name !== '' && !$r->client('setname', $name)) {
        fail('CLIENT SETNAME: ' . $r->getLastError());
    }
    out('connect', client_info((string)$r->rawCommand('CLIENT', 'INFO')));
    out('info', (string)($r->info('server')['redis_mode'] ?? '?'));
    out('ping', show($r->ping()));

    // Login: the session is written with a TTL.
    out('login', show($r->set('sess:abc', 'uid=42;name=ana', ['ex' => 1800])));
    out('setex', show($r->setex('sess:def', 60, 'uid=7')));
    // A request: read and slide the expiry in one round trip (phpredis 5
    // has no getEx method, so through rawCommand)...
    out('getex', show($r->rawCommand('GETEX', 'sess:abc', 'EX', '1800')));
    out('ttl', ttl_check($r->ttl('sess:abc'), 1800));
    // ...or in two (GET then EXPIRE).
    out('get', show($r->get('sess:def')));
    out('expire', show($r->expire('sess:def', 1800)));
    out('ttl-slid', ttl_check($r->ttl('sess:def'), 1800));
    out('missing', show($r->get('sess:nope')));
    out('dbsize', show($r->dbSize()));

    // SCAN over many sessions; SCAN_RETRY hides empty batches.
    for ($i = 0; $i < 30; $i++) {
        $r->set(sprintf('sess:scan:%02d', $i), 'x', ['ex' => 600]);
    }
    $r->setOption(Redis::OPT_SCAN, Redis::SCAN_RETRY);
    $seen = [];
    $it = null;
    while (($keys = $r->scan($it, 'sess:scan:*', 7)) !== false) {
        foreach ($keys as $k) {
            $seen[] = $k;
        }
    }
    out('scan', count($seen) . ' keys, ' . count(array_unique($seen)) . ' distinct');

    // A wrong-arity command: phpredis returns false and keeps the error
    // text in getLastError() (it throws RedisException only for
    // connection-level failures).
    $res = $r->rawCommand('GET', 'a', 'b');
    out('error', show($res) . ' ' . show($r->getLastError()));
    $r->clearLastError();

    // Pipelining without MULTI.
    $replies = $r->pipeline()
        ->set('sess:p', 'uid=1', ['ex' => 600])
        ->rawCommand('GETEX', 'sess:p', 'EX', '900')
        ->ttl('sess:p')
        ->del('sess:p')
        ->exec();
    out('pipeline', implode(' ', array_map('show', $replies)));

    // Logout.
    out('logout', show($r->del('sess:abc')));
    out('after-logout', show($r->get('sess:abc')));

    // PHP's session handler on sessiond. No cookies or cache headers in
    // the CLI; the handler connects by itself, from save_path.
    ini_set('session.use_cookies', '0');
    ini_set('session.use_strict_mode', '1');
    ini_set('session.cache_limiter', '');
    ini_set('session.gc_maxlifetime', '1800');
    ini_set('session.save_handler', 'redis');
    $q = ['database' => $db, 'timeout' => 5];
    if ($password !== '') {
        $q['auth'] = $password;
    }
    ini_set('session.save_path', "tcp://$host:$port?" . http_build_query($q));

    // Login request: a new session, written at session_write_close.
    if (!session_start()) {
        fail('session_start (new)');
    }
    $id = session_id();
    $_SESSION['uid'] = 42;
    $_SESSION['name'] = 'ana';
    if (!session_write_close()) {
        fail('session_write_close');
    }
    $key = "PHPREDIS_SESSION:$id";
    out('php-session-id', strlen($id) . ' chars');
    out('php-session-stored', show($r->get($key)));
    out('php-session-ttl', ttl_check($r->ttl($key), 1800));

    // Next request: the same id reads the data back; with lazy_write the
    // unchanged session only has its expiry slid (EXPIRE).
    $r->expire($key, 100);
    session_id($id);
    if (!session_start()) {
        fail('session_start (existing)');
    }
    out('php-session-read', show($_SESSION));
    session_write_close();
    out('php-session-slid', ttl_check($r->ttl($key), 1800));

    // A changed session is written again.
    session_id($id);
    session_start();
    $_SESSION['seen'] = 2;
    session_write_close();
    out('php-session-updated', show($r->get($key)));

    // An unknown id under strict mode: a fresh, empty session.
    session_id('nosuchsessionid0123456789abcdef');
    session_start();
    out('php-session-unknown', show($_SESSION) . ' new-id=' . show(session_id() !== 'nosuchsessionid0123456789abcdef'));
    session_write_close();

    // Logout: session_destroy deletes the key.
    session_id($id);
    session_start();
    out('php-session-destroy', show(session_destroy()));
    out('php-session-after-destroy', show($r->exists($key)));

    $r->close();
    out('quit', 'ok');
    ob_end_flush();
} catch (Throwable $e) {
    fail(get_class($e) . ': ' . $e->getMessage());
}
