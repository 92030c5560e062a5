/*
 * What bench/lib/handshake-client.c and fanout-client.c share: their answers' `fail` line,
 * the clock, the upgrade request they send to 127.0.0.1, and the check of the 101's
 * Sec-WebSocket-Accept. Both send RFC 6455 §1.3's sample key, as bench/lib/raw-client.ts
 * does, so the accept value is fixed.
 */
#ifndef HOTLINE_BENCH_CLIENT_COMMON_H
#define HOTLINE_BENCH_CLIENT_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CLIENT_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define CLIENT_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* Prints `fail MESSAGE` for the load generator, which fails the run with it, and exits. */
static void fail(const char *format, ...) {
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  printf("fail %s\n", message);
  fflush(stdout);
  exit(1);
}

/* The upgrade request for `path` on 127.0.0.1:`port`, written into `out`; its length. */
static size_t upgrade_request(char *out, size_t size, const char *path, int port) {
  int n = snprintf(out, size,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: " CLIENT_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, port);
  if (n < 0 || (size_t)n >= size) fail("the path is too long for the upgrade request");
  return (size_t)n;
}

/* Whether a 101's head (NUL-terminated, without its blank line) carries the expected accept value. */
static int accept_matches(const char *head) {
  for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n")) {
    const char *name = line + 2;
    if (strncasecmp(name, "sec-websocket-accept:", 21) != 0) continue;
    const char *value = name + 21;
    while (*value == ' ' || *value == '\t') value++;
    size_t n = strlen(CLIENT_ACCEPT);
    return strncmp(value, CLIENT_ACCEPT, n) == 0 && (value[n] == '\0' || value[n] == '\r' || value[n] == ' ' || value[n] == '\t');
  }
  return 0;
}

#endif
