"""A Flask application with its sessions in Redis through Flask-Session.

Run by server/frameworks_test.go with the Redis address in SESSIOND_ADDR;
it prints "listening on 127.0.0.1:PORT" and serves the endpoints described
at webFlow there. Flask-Session (Debian's python3-flask-session) stores each
session with SETEX under session:<sid> on every request and deletes it when
the session is emptied. The lifetime is per application, so short sessions
come from a second application with its own cookie, picked per request.
"""

import datetime
import os

import redis
from flask import Flask, request, session
from flask_session import Session
from werkzeug.serving import make_server

HOST, PORT = os.environ["SESSIOND_ADDR"].rsplit(":", 1)


def make_app(cookie, lifetime):
    app = Flask(cookie)
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=redis.Redis(host=HOST, port=int(PORT)),
        SESSION_KEY_PREFIX="session:",
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=lifetime),
        SESSION_COOKIE_NAME=cookie,
        SESSION_COOKIE_HTTPONLY=True,
    )
    Session(app)

    def show():
        if "user" not in session:
            return "anonymous"
        return "user=%s visits=%d" % (session["user"], session["visits"])

    @app.route("/login")
    def login():
        session.clear()
        session["user"] = request.args["user"]
        session["visits"] = 1
        return show()

    @app.route("/whoami")
    def whoami():
        return show()

    @app.route("/visit")
    def visit():
        if "user" in session:
            session["visits"] += 1
        return show()

    @app.route("/logout")
    def logout():
        session.clear()
        return "bye"

    return app


LONG = make_app("session", 1800)
SHORT = make_app("short_session", 2)


def dispatch(environ, start_response):
    short = "short=1" in environ.get("QUERY_STRING", "") or "short_session=" in environ.get("HTTP_COOKIE", "")
    return (SHORT if short else LONG)(environ, start_response)


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, dispatch)
    print("listening on 127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()
