"""A backend in Python, standard library only, driving `hotline serve` as an app's backend
would: it mints HS256 connection tokens (hmac, hashlib, base64) and calls the HTTP API
(urllib.request) with its key.

    python3 python-backend.py BASE_URL API_KEY HMAC_SECRET USER CHANNEL

Line protocol with the test that runs it (one JSON value per line on stdout):
    token {"token": JWT}              at once: the connection token for USER
    -- waits for a line "go" on stdin (the client connected and subscribed) --
    publish {"result": ...}           POST /api/publish to CHANNEL
    presence {"result": ...}          POST /api/presence
    history {"result": ...}           POST /api/history
    bad-key {"status": 401, ...}      the API with a wrong key, as urllib reports it
    disconnect {"result": ...}        POST /api/disconnect for USER
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def connection_token(secret: str, user: str, info: dict, ttl: int = 600) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"sub": user, "exp": int(time.time()) + ttl, "info": info}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


class Hotline:
    def __init__(self, base: str, key: str):
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{self.base}/api/{method}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"apikey {self.key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return {"status": response.status, **json.load(response)}
        except urllib.error.HTTPError as error:
            return {"status": error.code, **json.load(error)}


def say(kind: str, value) -> None:
    print(kind, json.dumps(value), flush=True)


def main() -> None:
    base, key, secret, user, channel = sys.argv[1:6]
    say("token", {"token": connection_token(secret, user, {"name": user.title()})})
    if sys.stdin.readline().strip() != "go":
        sys.exit("expected go")
    api = Hotline(base, key)
    say("publish", api.call("publish", {"channel": channel, "data": {"text": "hello from python"}, "idempotencyKey": "py-1"}))
    say("presence", api.call("presence", {"channel": channel}))
    say("history", api.call("history", {"channel": channel, "limit": 10}))
    say("bad-key", Hotline(base, "not-the-key").call("info", {}))
    say("disconnect", api.call("disconnect", {"user": user, "reason": "logged out"}))


if __name__ == "__main__":
    main()
