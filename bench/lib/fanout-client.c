/*
 * The fan-out load of bench/server.ts in C: `subscribers` connections read and count, and
 * one more (connected last, subscribed as well) publishes, keeping `in_flight` publishes
 * outstanding (one is outstanding until the publisher gets its own copy back) and pausing
 * while the slowest subscriber is `lag_limit` publishes behind: the job of load-main.ts's
 * runFanout, which runs this when bench/server.ts could compile it.
 *
 * Why: the Node load generator spends about a microsecond of its core on each delivery it
 * reads, so at 1,000 subscribers it, not the server, set the pace (the load generator 96%
 * busy, hotline and uWebSockets.js 51-88%). Here a delivery costs the client a few
 * nanoseconds of parsing beside the kernel's read.
 *
 *   cc -O2 -o fanout-client bench/lib/fanout-client.c
 *   ./fanout-client PORT PATH SUBSCRIBERS IN_FLIGHT LAG_LIMIT PAYLOAD_HEX [--spin]
 *
 * It connects everything, prints `ready`, and publishes at once. Lines on stdin, answers:
 *   count  -> `count DELIVERIES IDLE` (deliveries at the subscribers so far; with --spin,
 *            the seconds its loop spent polling with nothing to read)
 *   stop   -> stops publishing; `done PUBLISHED DELIVERIES` once every publish has reached
 *            every subscriber and come back to the publisher
 * Checked as runFanout checks: every connection's first frame byte for byte and the header
 * of every later one (the payload is below 126 bytes, so every frame is the same length),
 * each subscriber gets every publish, none more than was published, the publisher gets its
 * copies. Anything else prints `fail MESSAGE` and exits with status 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#define READ_SIZE 65536
#define RING 4096
#define EVENTS 512
#define CONNECTING_AT_ONCE 128

struct conn {
  int fd;
  int upgraded;
  size_t head_length;
  char *head; /* the 101 being read */
  unsigned frame_at; /* position in the frame being read */
  long received; /* whole frames so far */
};

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

static struct conn *conns; /* subscribers, then the publisher */
static size_t subscribers, opened, connecting, next_to_open;
static int epoll_fd, spin, publishing;
static long in_flight, lag_limit, published, complete, echoed, deliveries;
static int32_t reached[RING];
static uint8_t delivery[2 + 125], burst[(6 + 125) * 64];
static size_t delivery_length, frame_length_out;
static char request[512];
static size_t request_length;
static struct sockaddr_in server;
static int answered;

static struct conn *publisher(void) { return &conns[subscribers]; }

static void open_one(void) {
  struct conn *c = &conns[next_to_open];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) fail("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->head = malloc(HEAD_MAX);
  if (c->head == NULL) fail("out of memory");
  if (connect(c->fd, (struct sockaddr *)&server, sizeof server) != 0 && errno != EINPROGRESS) fail("connect: %s", strerror(errno));
  struct epoll_event event = {.events = EPOLLOUT, .data.u64 = next_to_open};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) != 0) fail("epoll_ctl: %s", strerror(errno));
  next_to_open++;
  connecting++;
}

/* Opens subscribers CONNECTING_AT_ONCE at a time; the publisher only once they are all in. */
static void open_more(void) {
  while (connecting < CONNECTING_AT_ONCE && next_to_open < subscribers) open_one();
  if (next_to_open == subscribers && opened == subscribers && connecting == 0) open_one();
}

static void pump(void) {
  if (!publishing) return;
  long room = in_flight - (published - echoed);
  if (lag_limit - (published - complete) < room) room = lag_limit - (published - complete);
  if (room <= 0) return;
  for (long j = published; j < published + room; j++) reached[j % RING] = 0;
  size_t length = (size_t)room * frame_length_out;
  ssize_t n = write(publisher()->fd, burst, length);
  if (n != (ssize_t)length) fail("the publisher's write of %zu bytes wrote %zd", length, n);
  published += room;
}

static void maybe_done(void) {
  if (publishing || answered || complete != published || echoed != published) return;
  for (size_t i = 0; i < subscribers; i++) {
    if (conns[i].received != published) fail("a subscriber got %ld of %ld", conns[i].received, published);
    if (conns[i].frame_at != 0) fail("a subscriber stopped inside a frame");
  }
  if (deliveries != published * (long)subscribers) fail("%ld deliveries, expected %ld x %zu", deliveries, published, subscribers);
  printf("done %ld %ld\n", published, deliveries);
  fflush(stdout);
  answered = 1;
}

/* Frames read by connection `index`: counted, and for a subscriber the ring advanced. */
static void frames_in(size_t index, long count) {
  struct conn *c = &conns[index];
  long first = c->received;
  c->received += count;
  if (index == subscribers) {
    echoed += count;
    if (echoed > published) fail("the publisher got %ld copies of %ld publishes", echoed, published);
    pump();
    maybe_done();
    return;
  }
  if (c->received > published) fail("a subscriber got %ld messages of %ld published", c->received, published);
  deliveries += count;
  int advanced = 0;
  for (long j = first; j < c->received; j++) {
    if (++reached[j % RING] == (int32_t)subscribers) {
      complete = j + 1;
      advanced = 1;
    }
  }
  if (advanced) {
    pump();
    maybe_done();
  }
}

/* Counts whole frames in bytes[0, n): the first one compared byte for byte, then each header. */
static void frames_of(size_t index, const uint8_t *bytes, size_t n) {
  struct conn *c = &conns[index];
  long whole = 0;
  for (size_t i = 0; i < n;) {
    if (c->received + whole == 0 || c->frame_at < 2) {
      if (bytes[i] != delivery[c->frame_at]) fail("connection %zu: byte %u of a frame is %02x, not %02x", index, c->frame_at, bytes[i], delivery[c->frame_at]);
      i++;
      c->frame_at++;
    } else {
      size_t take = delivery_length - c->frame_at;
      if (take > n - i) take = n - i;
      i += take;
      c->frame_at += (unsigned)take;
    }
    if (c->frame_at == delivery_length) {
      c->frame_at = 0;
      whole++;
    }
  }
  if (whole > 0) frames_in(index, whole);
}

static uint8_t input[READ_SIZE];

static void readable(size_t index) {
  struct conn *c = &conns[index];
  for (;;) {
    ssize_t n = read(c->fd, input, sizeof input);
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) fail("read: %s", strerror(errno));
    if (n == 0) fail("the server closed connection %zu", index);
    if (c->upgraded) {
      frames_of(index, input, (size_t)n);
      continue;
    }
    if (c->head_length + (size_t)n >= HEAD_MAX) fail("a 101 of %zu bytes or more", (size_t)HEAD_MAX);
    memcpy(c->head + c->head_length, input, (size_t)n);
    c->head_length += (size_t)n;
    c->head[c->head_length] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (end == NULL) continue;
    *end = 0;
    if (strncmp(c->head, "HTTP/1.1 101 ", 13) != 0) fail("not a 101: %.80s", c->head);
    if (!accept_matches(c->head)) fail("no or a wrong Sec-WebSocket-Accept: %.400s", c->head);
    size_t after = c->head_length - (size_t)(end + 4 - c->head);
    c->upgraded = 1;
    connecting--;
    opened++;
    if (after > 0) frames_of(index, (uint8_t *)end + 4, after);
    free(c->head);
    c->head = NULL;
    if (index == subscribers) {
      printf("ready\n");
      fflush(stdout);
      publishing = 1;
      pump();
    } else {
      open_more();
    }
  }
}

static void connected(size_t index) {
  struct conn *c = &conns[index];
  int error = 0;
  socklen_t size = sizeof error;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) fail("connect: %s", strerror(error));
  if (write(c->fd, request, request_length) != (ssize_t)request_length) fail("the upgrade request: %s", strerror(errno));
  struct epoll_event event = {.events = EPOLLIN, .data.u64 = index};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &event) != 0) fail("epoll_ctl: %s", strerror(errno));
}

static void command(const char *line) {
  if (strcmp(line, "count") == 0) {
    printf("count %ld %.6f\n", deliveries, idle_seconds);
  } else if (strcmp(line, "stop") == 0) {
    publishing = 0;
    maybe_done();
  } else {
    fail("unknown command '%s'", line);
  }
}

int main(int argc, char **argv) {
  if (argc < 7) fail("usage: fanout-client PORT PATH SUBSCRIBERS IN_FLIGHT LAG_LIMIT PAYLOAD_HEX [--spin]");
  int port = atoi(argv[1]);
  subscribers = (size_t)atol(argv[3]);
  in_flight = atol(argv[4]);
  lag_limit = atol(argv[5]);
  const char *hex = argv[6];
  spin = argc > 7 && strcmp(argv[7], "--spin") == 0;
  size_t payload_length = strlen(hex) / 2;
  if (port <= 0 || subscribers == 0 || in_flight <= 0 || in_flight > 64 || lag_limit < in_flight || lag_limit >= RING || payload_length > 125 || strlen(hex) % 2 != 0) {
    fail("bad arguments (in flight 1 to 64, lag limit below %d, a payload of at most 125 bytes)", RING);
  }
  uint8_t payload[125];
  for (size_t i = 0; i < payload_length; i++) {
    unsigned byte;
    if (sscanf(hex + 2 * i, "%2x", &byte) != 1) fail("the payload is not hex");
    payload[i] = (uint8_t)byte;
  }
  delivery[0] = 0x81; /* a text frame, as the Node generator sends */
  delivery[1] = (uint8_t)payload_length;
  memcpy(delivery + 2, payload, payload_length);
  delivery_length = 2 + payload_length;
  frame_length_out = 6 + payload_length;
  for (long k = 0; k < in_flight; k++) {
    uint8_t *out = burst + k * frame_length_out;
    out[0] = 0x81;
    out[1] = 0x80 | (uint8_t)payload_length;
    memcpy(out + 2, MASK, 4);
    for (size_t i = 0; i < payload_length; i++) out[6 + i] = payload[i] ^ MASK[i & 3];
  }
  request_length = upgrade_request(request, sizeof request, argv[2], port);
  server = loopback(port);
  conns = calloc(subscribers + 1, sizeof *conns);
  if (conns == NULL) fail("out of memory");
  epoll_fd = epoll_with_stdin();
  open_more();

  struct epoll_event events[EVENTS];
  for (;;) {
    int n = wait_for_events(epoll_fd, events, EVENTS, spin);
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == STDIN_TAG) {
        read_commands(command);
        continue;
      }
      if (events[i].events & EPOLLOUT && !conns[tag].upgraded && conns[tag].head_length == 0) connected((size_t)tag);
      else readable((size_t)tag);
    }
  }
}
