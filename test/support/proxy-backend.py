# An app's backend for hotline serve's proxy hooks, in Python with its standard library only,
# as a Django or Rails app would be: the tests start it, point the hooks at it, and wait on the
# line it prints for each request.
#
#   python3 test/support/proxy-backend.py [HOLD_SECONDS]
#
# Prints `backend listening PORT`, then one line per request: `backend HOOK IN_FLIGHT BODY`
# (IN_FLIGHT: requests being answered now, this one included), and `backend max-in-flight N`
# on each stdin line `stats`. Exits when stdin ends.
#
# What it answers (POST /connect, /subscribe, /publish, /rpc):
#   connect    Authorization "Bearer banned" -> deny 403 "banned"; "Bearer NAME" -> allow as
#              NAME with info {"name": NAME}; none -> anonymous; url with ?slow -> sleeps
#              HOLD_SECONDS; ?garbage -> an answer that is not JSON
#   subscribe  secret:* deny "members only"; slow:* sleep; bad:* malformed ({"allow":
#              "yes"}); huge:* an answer of 1 MiB; anything else allow
#   publish    open:* allow; rewrite:* allow with data {"text": upper-cased, "by": user};
#              badrewrite:* allow with data 12 (not what the channel's schema takes); else deny
#   rpc        add {a, b} -> a + b; whoami -> {user, cookie}; fail -> error forbidden
#              "not today"; hold -> sleeps HOLD_SECONDS then answers "held"; other -> not_found
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
lock = threading.Lock()
in_flight = 0
max_in_flight = 0


def say(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def connect(body):
    url = body.get("url", "")
    if "slow" in url:
        time.sleep(HOLD)
    if "garbage" in url:
        return b"<html>not json</html>"
    auth = body["headers"].get("authorization", "")
    if auth == "Bearer banned":
        return {"allow": False, "status": 403, "reason": "banned"}
    if auth.startswith("Bearer "):
        name = auth[len("Bearer "):]
        return {"allow": True, "user": name, "info": {"name": name}}
    return {"allow": True}


def subscribe(body):
    channel = body["channel"]
    if channel.startswith("secret:"):
        return {"allow": False, "reason": "members only"}
    if channel.startswith("slow:"):
        time.sleep(HOLD)
        return {"allow": True}
    if channel.startswith("bad:"):
        return {"allow": "yes"}
    if channel.startswith("huge:"):
        return {"allow": True, "padding": "x" * (1024 * 1024)}
    return {"allow": True}


def publish(body):
    channel, data = body["channel"], body["data"]
    if channel.startswith("open:"):
        return {"allow": True}
    if channel.startswith("rewrite:"):
        return {"allow": True, "data": {"text": data["text"].upper(), "by": body.get("user")}}
    if channel.startswith("badrewrite:"):
        return {"allow": True, "data": 12}
    return {"allow": False, "code": "forbidden", "reason": "read-only channel"}


def rpc(body):
    method, params = body["method"], body.get("params")
    if method == "add":
        return {"result": params["a"] + params["b"]}
    if method == "whoami":
        return {"result": {"user": body.get("user"), "cookie": body["headers"].get("cookie")}}
    if method == "fail":
        return {"error": {"code": "forbidden", "message": "not today"}}
    if method == "hold":
        time.sleep(HOLD)
        return {"result": "held"}
    return {"error": {"code": "not_found", "message": "no method " + method}}


HOOKS = {"/connect": connect, "/subscribe": subscribe, "/publish": publish, "/rpc": rpc}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global in_flight, max_in_flight
        with lock:
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
            now = in_flight
        answering = True
        try:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            say("backend %s %d %s" % (self.path[1:], now, json.dumps(body, sort_keys=True)))
            answer = HOOKS[self.path](body)
            raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            # Done before the answer leaves: the server may send the next call the moment it
            # reads this one, and that one must not count this one as still in flight.
            with lock:
                in_flight -= 1
                answering = False
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up waiting (its timeout): nobody to answer
        finally:
            if answering:
                with lock:
                    in_flight -= 1

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed a kept-alive connection, or gave up on an answer

    def log_message(self, *args):
        pass


def stats():
    for line in sys.stdin:
        if line.strip() == "stats":
            say("backend max-in-flight %d" % max_in_flight)
    server.shutdown()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
say("backend listening %d" % server.server_address[1])
threading.Thread(target=stats, daemon=True).start()
server.serve_forever()
