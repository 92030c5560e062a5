/**
 * What `hotline config init` writes: a commented starter that passes `hotline config check`
 * (a test keeps it so), open enough to try at once, with the safe shapes of the sections
 * shown for when they are needed.
 */
export const STARTER_CONFIG = `// hotline serve --config hotline.json
// JSON with comments. Every key is also a flag (--idle-timeout) and a variable
// (HOTLINE_IDLE_TIMEOUT), which win over this file. Durations are milliseconds, sizes bytes.
// The reference: docs/serve/configuration.md. Check this file: hotline config check hotline.json
{
  "port": 8080,
  // 0.0.0.0 listens on every interface; then set an admin secret (HOTLINE_ADMIN_SECRET).
  "host": "127.0.0.1",
  "logLevel": "info",

  // Rates: requests per second per connection, "50:100" with a burst.
  "publishRate": "50:100",

  // Who may do what, by channel name pattern: the longest match wins. With namespaces set,
  // a channel in none is refused. Access: anyone, authenticated, claim, token, server.
  "namespaces": {
    // A public room: anyone reads, signed-in users write.
    "chat:*": {
      "subscribe": "anyone",
      "publish": "authenticated",
      "historySize": 100,
      "historyTtl": 300000,
      "publishRate": 10,
      "schema": {
        "type": "object",
        "properties": { "text": { "type": "string", "maxLength": 2000 } },
        "required": ["text"]
      }
    },
    // Per-user channels: only users whose token lists them (the "channels" claim).
    "user:*": { "subscribe": "claim", "publish": "server", "presence": false },
    // Only the backend publishes here; any client may listen.
    "news": { "subscribe": "anyone", "publish": "server" }
  }

  // Connection tokens (JWT): uncomment, and keep the secret out of the file in production
  // (HOTLINE_TOKEN_HMAC_SECRET).
  // "token": { "hmacSecret": "at least 32 characters of random text.........", "required": false },

  // The HTTP API for the backend (Authorization: apikey KEY); better: HOTLINE_API_KEY.
  // "api": { "key": "change-me-to-a-long-random-key" }
}
`;
