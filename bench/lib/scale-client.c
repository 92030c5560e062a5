/*
 * The client side of bench/scale.ts in C: the same jobs and answers as
 * scale-client-main.ts (read that file's header for the line protocol), on one epoll loop.
 *
 * Why a second client: the Node one spends 5-10 µs of its core on every frame it reads, so
 * with tens of thousands of connections on one core "publish to all" measured the clients
 * (about 200 ms for every server alike at 19,744 connections), not the server. This one
 * reads a frame in well under a microsecond; the server's fan-out is what is left.
 *
 *   cc -O2 -o scale-client bench/lib/scale-client.c && ./scale-client
 *
 * Every delivery is still checked: each connection must get each publish once and in
 * order (a text frame whose payload holds `seq:K` or `"seq":K`), pings are answered, and a
 * close, an unexpected frame or a refused upgrade fails the run.
 *
 * Two jobs more than the Node client's, for subscribers that read slowly (`open` may say
 * "slowEvery":N: every Nth connection, index % N == N - 1, is opened with a 4 KiB receive
 * buffer, so that the server soon holds what such a connection does not read):
 *   {"type":"slow"}  those connections stop reading; a publish's `delivered` then waits
 *       only for the others -> {"type":"slowed","count":S}
 *   {"type":"drain"}  they read again -> {"type":"drained","ms":T} once every connection
 *       has every message published so far, each once and in order
 * and a publish may carry "pad":P, P bytes of padding in the message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SOURCE_ADDRESSES 32
#define PENDING_MAX 4096
#define SLOW_RECEIVE_BUFFER 4096
#define READ_SIZE 65536
#define STDIN_TAG UINT64_MAX
#define HTTP_TAG (UINT64_MAX - 1)

struct conn {
  int fd;
  uint8_t upgraded, subscribed, connected, slow;
  long last_seq;
  uint16_t pending_length;
  uint8_t *pending; /* an incomplete upgrade answer or frame, PENDING_MAX bytes when set */
};

static struct conn *conns;
static size_t conn_count, next_index, in_flight, ready_left, wanted;
static int epoll_fd, port, concurrency;
static char path[256], protocol[64], subscribe[128];
static int has_protocol, has_subscribe;
static uint8_t request[1024], subscribe_frame[256];
static size_t request_length, subscribe_frame_length;
static int failed;
static struct timespec open_started;
static size_t slow_every; /* 0: no connection is ever slow */
static long published; /* the highest sequence published so far */
static struct {
  int active;
  size_t left;
  struct timespec started;
} drain;

/* A publish being watched: done when every connection has `seq` and (over HTTP) the server answered. */
static struct {
  int active;
  long seq;
  size_t left;
  struct timespec started;
  double ms;
  int http_fd;
  long delivered;
  char http_answer[4096];
  size_t http_length;
} watch;

static double ms_since(const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (now.tv_sec - start->tv_sec) * 1e3 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

static void answer(const char *format, ...) {
  va_list args;
  va_start(args, format);
  vprintf(format, args);
  va_end(args);
  putchar('\n');
  fflush(stdout);
}

static void fail(const char *format, ...) {
  if (failed) return;
  failed = 1;
  char message[512];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  for (char *c = message; *c; c++) if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = ' ';
  answer("{\"type\":\"error\",\"message\":\"%s\"}", message);
}

/* The value of "key" in a line JSON.stringify wrote (no spaces): a number, or a string copied to `out`. */
static const char *json_value(const char *line, const char *key) {
  char needle[80];
  snprintf(needle, sizeof needle, "\"%s\":", key);
  const char *at = strstr(line, needle);
  return at == NULL ? NULL : at + strlen(needle);
}

static long json_long(const char *line, const char *key, long fallback) {
  const char *v = json_value(line, key);
  return v == NULL || *v == 'n' ? fallback : strtol(v, NULL, 10);
}

static int json_string(const char *line, const char *key, char *out, size_t size) {
  const char *v = json_value(line, key);
  if (v == NULL || *v != '"') return 0;
  size_t n = 0;
  for (v++; *v && *v != '"' && n + 1 < size; v++) out[n++] = *v;
  out[n] = 0;
  return 1;
}

/* A final client frame, masked with the same fixed key as bench/lib/raw-client.ts. */
static size_t client_frame(uint8_t *out, uint8_t opcode, const uint8_t *payload, size_t length) {
  static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  size_t n = 0;
  out[n++] = 0x80 | opcode;
  if (length < 126) out[n++] = 0x80 | (uint8_t)length;
  else { out[n++] = 0x80 | 126; out[n++] = (uint8_t)(length >> 8); out[n++] = (uint8_t)length; }
  memcpy(out + n, key, 4);
  n += 4;
  for (size_t i = 0; i < length; i++) out[n + i] = payload[i] ^ key[i & 3];
  return n + length;
}

static void write_all(int fd, const uint8_t *data, size_t length) {
  while (length > 0) {
    ssize_t n = write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { fail("a write failed: %s", strerror(errno)); return; }
    data += n;
    length -= (size_t)n;
  }
}

static void launch(void);

static void became_ready(struct conn *c) {
  c->subscribed = 1;
  in_flight--;
  if (--ready_left == 0) answer("{\"type\":\"opened\",\"count\":%zu,\"ms\":%.3f}", conn_count, ms_since(&open_started));
  else launch();
}

static void finish_watch_if_done(void) {
  if (!watch.active || watch.left > 0 || watch.http_fd >= 0) return;
  watch.active = 0;
  if (!failed) answer("{\"type\":\"delivered\",\"seq\":%ld,\"ms\":%.3f,\"delivered\":%ld}", watch.seq, watch.ms, watch.delivered);
}

static long sequence_of(const uint8_t *payload, size_t length) {
  for (size_t i = 0; i + 4 < length; i++) {
    if (memcmp(payload + i, "seq", 3) != 0) continue;
    size_t j = i + 3;
    if (payload[j] == '"') j++;
    if (j >= length || payload[j] != ':') continue;
    long value = 0;
    int digits = 0;
    for (j++; j < length && payload[j] >= '0' && payload[j] <= '9'; j++, digits++) value = value * 10 + (payload[j] - '0');
    if (digits > 0) return value;
  }
  return -1;
}

static void on_text(struct conn *c, const uint8_t *payload, size_t length) {
  if (!c->subscribed) {
    if (has_subscribe && memmem(payload, length, "\"op\":\"ok\"", 9) != NULL) return became_ready(c);
    return fail("an answer before the subscription: %.*s", (int)(length < 200 ? length : 200), payload);
  }
  long seq = sequence_of(payload, length);
  if (seq < 0) return fail("a message without a sequence number: %.*s", (int)(length < 200 ? length : 200), payload);
  if (seq != c->last_seq + 1) return fail("a connection got message %ld after %ld", seq, c->last_seq);
  c->last_seq = seq;
  if (watch.active && !c->slow && seq == watch.seq && --watch.left == 0) {
    watch.ms = ms_since(&watch.started);
    finish_watch_if_done();
  }
  if (drain.active && seq == published && --drain.left == 0) {
    drain.active = 0;
    answer("{\"type\":\"drained\",\"ms\":%.3f}", ms_since(&drain.started));
  }
}

/* Parses the whole frames of data[0..length); returns how many bytes were used. */
static size_t frames(struct conn *c, const uint8_t *data, size_t length) {
  size_t offset = 0;
  while (length - offset >= 2 && !failed) {
    uint8_t opcode = data[offset] & 0x0f;
    uint64_t payload_length = data[offset + 1] & 0x7f;
    size_t header = 2;
    if (payload_length == 126) {
      if (length - offset < 4) break;
      payload_length = ((uint64_t)data[offset + 2] << 8) | data[offset + 3];
      header = 4;
    } else if (payload_length == 127) {
      if (length - offset < 10) break;
      payload_length = 0;
      for (int i = 0; i < 8; i++) payload_length = (payload_length << 8) | data[offset + 2 + i];
      header = 10;
    }
    if (payload_length > PENDING_MAX) { fail("a frame of %llu bytes: more than this client expects", (unsigned long long)payload_length); break; }
    if (length - offset < header + payload_length) break;
    const uint8_t *payload = data + offset + header;
    offset += header + payload_length;
    if (opcode == 0x1) on_text(c, payload, payload_length);
    else if (opcode == 0x9) {
      uint8_t pong[140];
      write_all(c->fd, pong, client_frame(pong, 0xa, payload, payload_length));
    } else if (opcode == 0x8) fail("the server closed a connection (%d)", payload_length >= 2 ? (payload[0] << 8) | payload[1] : 0);
    else fail("an unexpected frame (opcode %d)", opcode);
  }
  return offset;
}

static void keep_pending(struct conn *c, const uint8_t *data, size_t length) {
  if (length > PENDING_MAX) return fail("%zu bytes of an incomplete frame or answer", length);
  if (c->pending == NULL && (c->pending = malloc(PENDING_MAX)) == NULL) return fail("out of memory");
  memmove(c->pending, data, length);
  c->pending_length = (uint16_t)length;
}

static void on_readable(struct conn *c) {
  static uint8_t buffer[PENDING_MAX + READ_SIZE];
  size_t have = c->pending_length;
  if (have > 0) memcpy(buffer, c->pending, have);
  ssize_t n = read(c->fd, buffer + have, READ_SIZE);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return fail("connection %zu closed%s%s", (size_t)(c - conns), n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
  size_t length = have + (size_t)n, start = 0;
  c->pending_length = 0;
  if (!c->upgraded) {
    uint8_t *end = memmem(buffer, length, "\r\n\r\n", 4);
    if (end == NULL) return keep_pending(c, buffer, length);
    if (length < 12 || memcmp(buffer, "HTTP/1.1 101", 12) != 0) {
      uint8_t *eol = memmem(buffer, length, "\r\n", 2);
      return fail("upgrade refused: %.*s", (int)(eol - buffer), buffer);
    }
    c->upgraded = 1;
    start = (size_t)(end - buffer) + 4;
    if (has_subscribe) write_all(c->fd, subscribe_frame, subscribe_frame_length);
    else became_ready(c);
  }
  size_t used = frames(c, buffer + start, length - start);
  if (start + used < length) keep_pending(c, buffer + start + used, length - start - used);
}

static void open_one(void) {
  size_t index = next_index++;
  struct conn *c = &conns[conn_count++];
  memset(c, 0, sizeof *c);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (c->fd < 0) return fail("socket: %s", strerror(errno));
  int one = 1, receive_buffer = SLOW_RECEIVE_BUFFER;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (slow_every > 0 && index % slow_every == slow_every - 1) setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002 + (uint32_t)(index % SOURCE_ADDRESSES))};
  if (bind(c->fd, (struct sockaddr *)&local, sizeof local) < 0) return fail("bind: %s", strerror(errno));
  struct sockaddr_in remote = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001)};
  if (connect(c->fd, (struct sockaddr *)&remote, sizeof remote) < 0 && errno != EINPROGRESS) return fail("connect: %s", strerror(errno));
  struct epoll_event event = {.events = EPOLLOUT | EPOLLIN, .data.u64 = index};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) < 0) return fail("epoll_ctl: %s", strerror(errno));
  in_flight++;
}

static void launch(void) {
  while (!failed && in_flight < (size_t)concurrency && next_index < wanted) open_one();
}

static void start_open(const char *line) {
  port = (int)json_long(line, "port", 0);
  wanted = (size_t)json_long(line, "count", 0);
  concurrency = (int)json_long(line, "concurrency", 256);
  slow_every = (size_t)json_long(line, "slowEvery", 0);
  json_string(line, "path", path, sizeof path);
  has_protocol = json_string(line, "protocol", protocol, sizeof protocol);
  has_subscribe = json_string(line, "subscribe", subscribe, sizeof subscribe);
  conns = calloc(wanted, sizeof *conns);
  if (conns == NULL) return fail("out of memory for %zu connections", wanted);
  int n = snprintf((char *)request, sizeof request,
                   "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                   path, port, has_protocol ? "Sec-WebSocket-Protocol: " : "", has_protocol ? protocol : "", has_protocol ? "\r\n" : "");
  request_length = (size_t)n;
  if (has_subscribe) {
    char sub[200];
    int m = snprintf(sub, sizeof sub, "{\"op\":\"sub\",\"id\":1,\"ch\":\"%s\"}", subscribe);
    subscribe_frame_length = client_frame(subscribe_frame, 0x1, (const uint8_t *)sub, (size_t)m);
  }
  ready_left = wanted;
  clock_gettime(CLOCK_MONOTONIC, &open_started);
  launch();
}

static void start_publish(const char *line) {
  char via[16] = "";
  json_string(line, "via", via, sizeof via);
  watch.seq = json_long(line, "seq", -1);
  if (watch.seq > published) published = watch.seq;
  long pad = json_long(line, "pad", 0);
  static char padding[2048];
  if (pad < 0 || pad >= (long)sizeof padding) return fail("pad %ld: at most %zu", pad, sizeof padding - 1);
  memset(padding, 'x', (size_t)pad);
  padding[pad] = 0;
  watch.left = 0;
  for (size_t i = 0; i < conn_count; i++) if (!conns[i].slow && conns[i].last_seq < watch.seq) watch.left++;
  watch.delivered = -1;
  watch.http_fd = -1;
  watch.ms = 0;
  watch.active = 1;
  clock_gettime(CLOCK_MONOTONIC, &watch.started);
  if (strcmp(via, "socket") == 0) {
    char text[2100];
    uint8_t frame[2200];
    int m = snprintf(text, sizeof text, "seq:%ld %s", watch.seq, padding);
    write_all(conns[0].fd, frame, client_frame(frame, 0x1, (const uint8_t *)text, (size_t)m));
  } else if (strcmp(via, "http") == 0) {
    char key[128] = "", channel[128] = "", body[2300], head[3000];
    json_string(line, "apiKey", key, sizeof key);
    json_string(line, "channel", channel, sizeof channel);
    int b = snprintf(body, sizeof body, "{\"channel\":\"%s\",\"data\":{\"seq\":%ld,\"pad\":\"%s\"}}", channel, watch.seq, padding);
    int h = snprintf(head, sizeof head,
                     "POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: apikey %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                     port, key, b, body);
    watch.http_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in remote = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (watch.http_fd < 0 || connect(watch.http_fd, (struct sockaddr *)&remote, sizeof remote) < 0) return fail("the publish's connection: %s", strerror(errno));
    write_all(watch.http_fd, (const uint8_t *)head, (size_t)h);
    watch.http_length = 0;
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = HTTP_TAG};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, watch.http_fd, &event);
  }
  if (watch.left == 0) watch.ms = 0;
  finish_watch_if_done();
}

static void on_http_readable(void) {
  ssize_t n = read(watch.http_fd, watch.http_answer + watch.http_length, sizeof watch.http_answer - 1 - watch.http_length);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n > 0) { watch.http_length += (size_t)n; return; }
  watch.http_answer[watch.http_length] = 0;
  epoll_ctl(epoll_fd, EPOLL_CTL_DEL, watch.http_fd, NULL);
  close(watch.http_fd);
  watch.http_fd = -1;
  const char *delivered = strstr(watch.http_answer, "\"delivered\":");
  if (delivered == NULL) {
    char *eol = strstr(watch.http_answer, "\r\n");
    return fail("publish answered %.*s", eol == NULL ? 40 : (int)(eol - watch.http_answer), watch.http_answer);
  }
  watch.delivered = strtol(delivered + 12, NULL, 10);
  finish_watch_if_done();
}

/* The slow connections stop (or start again) reading: epoll stops (or starts) telling of their data. */
static void set_reading(int reading) {
  size_t count = 0;
  for (size_t i = 0; i < conn_count; i++) {
    if (slow_every == 0 || i % slow_every != slow_every - 1) continue;
    conns[i].slow = !reading;
    struct epoll_event event = {.events = reading ? EPOLLIN : 0, .data.u64 = i};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, conns[i].fd, &event) < 0) return fail("epoll_ctl: %s", strerror(errno));
    count++;
  }
  if (!reading) answer("{\"type\":\"slowed\",\"count\":%zu}", count);
}

static void start_drain(void) {
  drain.left = 0;
  for (size_t i = 0; i < conn_count; i++) if (conns[i].last_seq < published) drain.left++;
  clock_gettime(CLOCK_MONOTONIC, &drain.started);
  drain.active = drain.left > 0;
  set_reading(1);
  if (!drain.active) answer("{\"type\":\"drained\",\"ms\":0}");
}

static void on_line(const char *line) {
  if (strstr(line, "\"type\":\"open\"") != NULL) start_open(line);
  else if (strstr(line, "\"type\":\"slow\"") != NULL) set_reading(0);
  else if (strstr(line, "\"type\":\"drain\"") != NULL) start_drain();
  else if (strstr(line, "\"type\":\"publish\"") != NULL) start_publish(line);
  else if (strstr(line, "\"type\":\"exit\"") != NULL) exit(0);
  else fail("unknown job %.80s", line);
}

static void on_stdin(void) {
  static char lines[8192];
  static size_t have;
  ssize_t n = read(0, lines + have, sizeof lines - 1 - have);
  if (n <= 0) exit(0);
  have += (size_t)n;
  lines[have] = 0;
  char *start = lines, *eol;
  while ((eol = strchr(start, '\n')) != NULL) {
    *eol = 0;
    if (*start != 0) on_line(start);
    start = eol + 1;
  }
  have = strlen(start);
  memmove(lines, start, have);
}

int main(int argc, char **argv) {
  /* Spinning (the default) polls epoll without sleeping, as bench/server.ts's load generator
     does: a server's write to a sleeping client pays for waking it on the other core. */
  int timeout = argc > 1 && strcmp(argv[1], "--sleep") == 0 ? -1 : 0;
  epoll_fd = epoll_create1(0);
  struct epoll_event event = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
  epoll_ctl(epoll_fd, EPOLL_CTL_ADD, 0, &event);
  answer("{\"type\":\"ready\"}");
  static struct epoll_event events[1024];
  for (;;) {
    int n = epoll_wait(epoll_fd, events, 1024, timeout);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == STDIN_TAG) { on_stdin(); continue; }
      if (tag == HTTP_TAG) { on_http_readable(); continue; }
      struct conn *c = &conns[tag];
      if (!c->connected && (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error != 0) { fail("connection %zu: %s", (size_t)tag, strerror(error)); continue; }
        c->connected = 1;
        struct epoll_event readable = {.events = EPOLLIN, .data.u64 = tag};
        epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &readable);
        write_all(c->fd, request, request_length);
        continue;
      }
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}
