<?php
// A PHP application on PHP's own session handling, with the sessions in
// Redis through phpredis's handler. Run by server/frameworks_test.go under
// PHP's built-in server, with the configuration on its command line:
//
//   php -d session.save_handler=redis -d session.save_path=tcp://HOST:PORT \
//       -d redis.session.locking_enabled=1 ... -S 127.0.0.1:0 app.php
//
// Endpoints: see webFlow in server/frameworks_test.go. Short sessions
// (login?short=1) use their own cookie name and a 2-second lifetime.

$short = isset($_GET['short']) || isset($_COOKIE['SHORTSESSID']);
if ($short) {
    session_name('SHORTSESSID');
    ini_set('session.gc_maxlifetime', '2');
}
header('Content-Type: text/plain');

function show(): string
{
    return isset($_SESSION['user']) ? "user={$_SESSION['user']} visits={$_SESSION['visits']}" : 'anonymous';
}

function start(): void
{
    if (!session_start()) {
        http_response_code(500);
        exit('session_start failed');
    }
}

switch (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH)) {
case '/login':
    start();
    session_regenerate_id(true);
    $_SESSION['user'] = $_GET['user'];
    $_SESSION['visits'] = 1;
    echo show();
    break;
case '/whoami':
    // Nothing changes: with session.lazy_write (the default) PHP only
    // refreshes the expiry (EXPIRE) when it closes the session.
    start();
    echo show();
    break;
case '/visit':
    start();
    if (isset($_GET['sleep_ms'])) {
        usleep((int)$_GET['sleep_ms'] * 1000); // holding the session lock
    }
    if (isset($_SESSION['user'])) {
        $_SESSION['visits']++;
    }
    echo show();
    break;
case '/logout':
    start();
    session_destroy();
    echo 'bye';
    break;
default:
    http_response_code(404);
    echo 'not found';
}
