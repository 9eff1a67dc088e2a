"""redis-py against sessiond: the session flow of a web app.

Run by server/clients_test.go with /usr/bin/python3 and Debian's
python3-redis. The address, password, database and client name come from
the environment; each step prints one "step: value" line, values shown
with repr() so that their Python type is visible.
"""

import os
import sys

import redis


def out(step, value):
    print(f"{step}: {value}", flush=True)


def ttl_check(got, want):
    return "ok" if isinstance(got, int) and want - 10 <= got <= want else f"unexpected {got!r}"


def client_info(line):
    fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    return " ".join(f"{k}={fields.get(k, '?')}" for k in ("name", "db", "resp", "lib-name"))


def main():
    host, port = os.environ["SESSIOND_ADDR"].rsplit(":", 1)
    password = os.environ.get("SESSIOND_PASSWORD") or None
    db = int(os.environ.get("SESSIOND_DB", "0"))
    r = redis.Redis.from_url(
        f"redis://{host}:{port}/{db}",
        password=password,
        client_name=os.environ.get("SESSIOND_CLIENT_NAME") or None,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    out("connect", client_info(r.execute_command("CLIENT", "INFO")))
    out("info", r.info("server").get("redis_mode"))
    out("ping", repr(r.ping()))

    # Login: the session is written with a TTL.
    out("login", repr(r.set("sess:abc", "uid=42;name=ana", ex=1800)))
    out("setex", repr(r.setex("sess:def", 60, "uid=7")))
    # A request: read and slide the expiry in one round trip...
    out("getex", repr(r.getex("sess:abc", ex=1800)))
    out("ttl", ttl_check(r.ttl("sess:abc"), 1800))
    # ...or in two (GET then EXPIRE).
    out("get", repr(r.get("sess:def")))
    out("expire", repr(r.expire("sess:def", 1800)))
    out("ttl-slid", ttl_check(r.ttl("sess:def"), 1800))
    out("missing", repr(r.get("sess:nope")))
    out("dbsize", repr(r.dbsize()))

    # SCAN over many sessions.
    for i in range(30):
        r.set(f"sess:scan:{i:02d}", "x", ex=600)
    seen = list(r.scan_iter(match="sess:scan:*", count=7))
    out("scan", f"{len(seen)} keys, {len(set(seen))} distinct")

    # A wrong-arity command surfaces as the client's reply error type.
    try:
        r.execute_command("GET", "a", "b")
        out("error", "none")
    except redis.exceptions.ResponseError as e:
        out("error", f"{type(e).__name__} {e}")

    # Pipelining without MULTI.
    p = r.pipeline(transaction=False)
    p.set("sess:p", "uid=1", ex=600)
    p.getex("sess:p", ex=900)
    p.ttl("sess:p")
    p.execute_command("GET", "x", "y")
    p.delete("sess:p")
    replies = p.execute(raise_on_error=False)
    out("pipeline", " ".join(type(v).__name__ if isinstance(v, Exception) else repr(v) for v in replies))

    # Logout.
    out("logout", repr(r.delete("sess:abc")))
    out("after-logout", repr(r.get("sess:abc")))
    r.close()
    out("quit", "ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure ends the run
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
