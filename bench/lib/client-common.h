/*
 * What bench/lib/handshake-client.c and fanout-client.c share: their answers' `fail` line,
 * the clock, the upgrade request they send to 127.0.0.1 and the check of the 101's
 * Sec-WebSocket-Accept, their epoll loop's wait (and its idle time when it spins), and the
 * load generator's commands on stdin. Both send RFC 6455 §1.3's sample key, as
 * bench/lib/raw-client.ts does, so the accept value is fixed.
 */
#ifndef HOTLINE_BENCH_CLIENT_COMMON_H
#define HOTLINE_BENCH_CLIENT_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define CLIENT_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/* The epoll tag of stdin, where the load generator's commands come from. */
#define STDIN_TAG UINT64_MAX

/* Seconds a spinning loop's waits found nothing to read (`count` reports them). */
static double idle_seconds;

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

/* The server's address: 127.0.0.1:`port`. */
static struct sockaddr_in loopback(int port) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

/* A new epoll set that already watches stdin (as STDIN_TAG). */
static int epoll_with_stdin(void) {
  int epoll_fd = epoll_create1(0);
  struct epoll_event input = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
  if (epoll_fd < 0 || epoll_ctl(epoll_fd, EPOLL_CTL_ADD, 0, &input) != 0) fail("setup: %s", strerror(errno));
  return epoll_fd;
}

/*
 * The next events: polled when `spin` (the time between two polls that found nothing is
 * added to idle_seconds), else waited for.
 */
static int wait_for_events(int epoll_fd, struct epoll_event *events, int max, int spin) {
  static double last = -1;
  for (;;) {
    int n = epoll_wait(epoll_fd, events, max, spin ? 0 : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("epoll_wait: %s", strerror(errno));
    if (spin) {
      double now = now_seconds();
      if (n == 0 && last >= 0) idle_seconds += now - last;
      last = now;
    }
    return n;
  }
}

/*
 * Reads what stdin has and hands each whole line to `on_command`, then flushes its answers;
 * exits when stdin closes (the load generator went away).
 */
static void read_commands(void (*on_command)(const char *line)) {
  static char line[256];
  static size_t length;
  ssize_t n = read(0, line + length, sizeof line - 1 - length);
  if (n <= 0) exit(n == 0 ? 0 : 1);
  length += (size_t)n;
  char *newline;
  while ((newline = memchr(line, '\n', length)) != NULL) {
    *newline = 0;
    on_command(line);
    fflush(stdout);
    length -= (size_t)(newline + 1 - line);
    memmove(line, newline + 1, length);
  }
  if (length == sizeof line - 1) fail("a command line too long");
}

#endif
