/*
 * The handshake load of bench/server.ts in C: connect, upgrade, closing handshake, over and
 * over, `concurrency` connections at a time, on one epoll loop. bench/lib/load-main.ts runs
 * it for a handshake job when bench/server.ts could compile it.
 *
 * Why: the Node load generator spends ~110 µs of its core on each connection (a net.Socket
 * made and destroyed, its events), so it opens ~8,000 a second and the faster servers idle
 * while it works (hotline 65-85% busy, uWebSockets.js ~60%): their handshakes per CPU-second
 * were measured below saturation. Here a connection costs the client little more than its
 * system calls.
 *
 *   cc -O2 -o handshake-client bench/lib/handshake-client.c
 *   ./handshake-client PORT PATH CONCURRENCY [--spin]
 *
 * It starts at once. Lines on stdin, answers on stdout:
 *   count  -> `count N IDLE` (connections completed so far; with --spin, the seconds its loop
 *            spent polling with nothing to read, as the Node generator reports)
 *   stop   -> stops opening connections; `done N` once the open ones have completed
 * Every connection is checked as the Node generator checks it: the 101 with the accept key
 * of the fixed request key, nothing before our close frame, then exactly the close frame
 * 1000 and the server's FIN. Anything else prints `fail MESSAGE` and exits with status 1.
 */
#define _GNU_SOURCE
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client-common.h"

#define HEAD_MAX 4096
#define EVENTS 256

enum state { CONNECTING, READING_HEAD, READING_CLOSE, READING_FIN };

struct conn {
  int fd;
  enum state state;
  size_t length;
  uint8_t buffer[HEAD_MAX];
};

static const uint8_t CLIENT_CLOSE[] = {0x88, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x03 ^ 0x37, 0xe8 ^ 0xfa};
static const uint8_t SERVER_CLOSE[] = {0x88, 0x02, 0x03, 0xe8};

static struct conn *conns;
static int concurrency, epoll_fd, spin, launching = 1, answered;
static size_t live;
static unsigned long completed;
static char request[512];
static size_t request_length;
static struct sockaddr_in server;

static void watch(struct conn *c, uint32_t events, int op) {
  struct epoll_event event = {.events = events, .data.u64 = (uint64_t)(c - conns)};
  if (epoll_ctl(epoll_fd, op, c->fd, &event) != 0) fail("epoll_ctl: %s", strerror(errno));
}

static void send_all(struct conn *c, const void *data, size_t length) {
  /* A fresh socket's send buffer takes a few hundred bytes at once. */
  ssize_t n = write(c->fd, data, length);
  if (n != (ssize_t)length) fail("a write of %zu bytes wrote %zd (%s)", length, n, n < 0 ? strerror(errno) : "short");
}

static void launch(struct conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) fail("socket: %s", strerror(errno));
  c->length = 0;
  live++;
  if (connect(c->fd, (struct sockaddr *)&server, sizeof server) == 0) {
    send_all(c, request, request_length);
    c->state = READING_HEAD;
    watch(c, EPOLLIN, EPOLL_CTL_ADD);
  } else if (errno == EINPROGRESS) {
    c->state = CONNECTING;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
  } else {
    fail("connect: %s", strerror(errno));
  }
}

static void completed_one(struct conn *c) {
  close(c->fd);
  live--;
  completed++;
  if (launching) launch(c);
}

static void readable(struct conn *c) {
  for (;;) {
    if (c->length == HEAD_MAX) fail("more than %d bytes before the close frame ended", HEAD_MAX);
    ssize_t n = read(c->fd, c->buffer + c->length, HEAD_MAX - c->length);
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) fail("read: %s", strerror(errno));
    if (n == 0) {
      if (c->state != READING_FIN) fail("the server closed before the closing handshake ended (%zu bytes of the step read)", c->length);
      return completed_one(c);
    }
    if (c->state == READING_FIN) fail("%zd bytes after the close frame", n);
    c->length += (size_t)n;
    if (c->state == READING_HEAD) {
      uint8_t *end = memmem(c->buffer, c->length, "\r\n\r\n", 4);
      if (end == NULL) continue;
      *end = 0;
      if (strncmp((char *)c->buffer, "HTTP/1.1 101 ", 13) != 0) fail("not a 101: %.80s", (char *)c->buffer);
      if (!accept_matches((char *)c->buffer)) fail("no or a wrong Sec-WebSocket-Accept: %.400s", (char *)c->buffer);
      if (end + 4 != c->buffer + c->length) fail("%zu bytes after the 101, before our close frame", (size_t)(c->buffer + c->length - end - 4));
      c->length = 0;
      c->state = READING_CLOSE;
      send_all(c, CLIENT_CLOSE, sizeof CLIENT_CLOSE);
    } else if (c->length >= sizeof SERVER_CLOSE) {
      if (c->length > sizeof SERVER_CLOSE || memcmp(c->buffer, SERVER_CLOSE, sizeof SERVER_CLOSE) != 0) {
        fail("not the close frame 1000 alone (%zu bytes, first %02x %02x)", c->length, c->buffer[0], c->buffer[1]);
      }
      c->state = READING_FIN;
    }
  }
}

static void connected(struct conn *c) {
  int error = 0;
  socklen_t size = sizeof error;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) fail("connect: %s", strerror(error));
  send_all(c, request, request_length);
  c->state = READING_HEAD;
  watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

static void command(const char *line) {
  if (strcmp(line, "count") == 0) printf("count %lu %.6f\n", completed, idle_seconds);
  else if (strcmp(line, "stop") == 0) launching = 0;
  else fail("unknown command '%s'", line);
}

int main(int argc, char **argv) {
  if (argc < 4) fail("usage: handshake-client PORT PATH CONCURRENCY [--spin]");
  int port = atoi(argv[1]);
  concurrency = atoi(argv[3]);
  spin = argc > 4 && strcmp(argv[4], "--spin") == 0;
  if (port <= 0 || concurrency <= 0) fail("bad port or concurrency");
  request_length = upgrade_request(request, sizeof request, argv[2], port);
  server = loopback(port);
  conns = calloc((size_t)concurrency, sizeof *conns);
  if (conns == NULL) fail("out of memory");
  epoll_fd = epoll_with_stdin();
  for (int i = 0; i < concurrency; i++) launch(&conns[i]);

  struct epoll_event events[EVENTS];
  for (;;) {
    int n = wait_for_events(epoll_fd, events, EVENTS, spin);
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == STDIN_TAG) {
        read_commands(command);
        continue;
      }
      struct conn *c = &conns[events[i].data.u64];
      if (c->state == CONNECTING) connected(c);
      else readable(c);
    }
    if (!launching && live == 0 && !answered) {
      printf("done %lu\n", completed);
      fflush(stdout);
      answered = 1; /* and it keeps answering `count` until stdin closes */
    }
  }
}
