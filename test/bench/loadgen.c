/* The load generator of `npm run bench`: the same client for our daemon and the C
 * reference server, cheap enough (one epoll loop, one prepared message, no allocation per
 * call) that at saturation the server, not the client, is what runs out. It speaks just
 * enough D-Bus: SASL EXTERNAL as uid 0, then the prepared method call (serial patched)
 * and reply framing; replies on one connection come in call order, so each one closes
 * the oldest call sent on it.
 *
 * usage: loadgen SOCKET MSG_HEX closed CONNS SECONDS
 *          every connection keeps one call in flight for SECONDS
 *        loadgen SOCKET MSG_HEX open CONNS RATE SECONDS
 *          calls are sent on a fixed schedule of RATE per second, round robin over the
 *          connections, whatever the replies do; latency counts from the scheduled time
 *        loadgen SOCKET MSG_HEX hold CONNS
 *          opens CONNS connections, makes one call on each, prints "held N" and keeps
 *          them open until stdin closes
 * prints one JSON object: calls, errors, seconds, p50/p99/p999/max latency in µs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define QUEUE 4096 /* calls in flight per connection (open loop) */

struct conn {
  int fd;
  unsigned char in[65536];
  size_t have;
  uint64_t sent[QUEUE]; /* scheduled (open) or send (closed) times, ns */
  unsigned head, tail;
};

static unsigned char *msg;
static size_t msg_len;
static uint32_t serial = 1;
static double *lat;
static size_t nlat, cap_lat;
static long errors, overflow;

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void read_line(int fd, char *line, size_t len) {
  size_t n = 0;
  while (n + 1 < len) {
    ssize_t r = read(fd, line + n, 1);
    if (r <= 0) die("handshake read");
    if (line[n++] == '\n') break;
  }
  line[n] = 0;
}

static int open_conn(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  char uid[32], hex[64] = "", line[256];
  snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
  for (char *p = uid; *p; p++) sprintf(hex + strlen(hex), "%02x", (unsigned char)*p);
  char hello[128];
  int n = snprintf(hello, sizeof hello, "%cAUTH EXTERNAL %s\r\n", 0, hex);
  if (write(fd, hello, n) != n) die("handshake write");
  read_line(fd, line, sizeof line);
  if (strncmp(line, "OK ", 3) != 0) {
    fprintf(stderr, "loadgen: authentication refused: %s", line);
    exit(1);
  }
  if (write(fd, "BEGIN\r\n", 7) != 7) die("handshake write");
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

static void send_call(struct conn *c, uint64_t at) {
  if (c->tail - c->head == QUEUE) {
    overflow++;
    return;
  }
  uint32_t s = serial++;
  memcpy(msg + 8, &s, 4);
  ssize_t w = send(c->fd, msg, msg_len, MSG_NOSIGNAL);
  if (w != (ssize_t)msg_len) {
    /* the socket buffer is full (the server stopped reading): counted, not queued */
    errors++;
    return;
  }
  c->sent[c->tail++ % QUEUE] = at;
}

static void record(double us) {
  if (nlat == cap_lat) {
    cap_lat = cap_lat ? cap_lat * 2 : 1 << 16;
    lat = realloc(lat, cap_lat * sizeof *lat);
    if (!lat) die("realloc");
  }
  lat[nlat++] = us;
}

/* Reads what the server sent; returns the number of complete replies. */
static int take_replies(struct conn *c, int measure) {
  int done = 0;
  for (;;) {
    ssize_t r = read(c->fd, c->in + c->have, sizeof c->in - c->have);
    if (r == 0) {
      fprintf(stderr, "loadgen: server closed a connection\n");
      exit(1);
    }
    if (r < 0) {
      if (errno == EAGAIN) break;
      die("read");
    }
    c->have += (size_t)r;
    size_t off = 0;
    uint64_t t = now_ns();
    while (c->have - off >= 16) {
      uint32_t body, fields;
      memcpy(&body, c->in + off + 4, 4);
      memcpy(&fields, c->in + off + 12, 4);
      size_t total = 16 + ((fields + 7) & ~7u) + body;
      if (total > sizeof c->in) {
        fprintf(stderr, "loadgen: reply too large\n");
        exit(1);
      }
      if (c->have - off < total) break;
      if (c->in[off + 1] != 2) errors++; /* not a method return */
      if (c->head != c->tail) {
        uint64_t at = c->sent[c->head++ % QUEUE];
        if (measure) record((double)(t > at ? t - at : 0) / 1000.0);
      }
      off += total;
      done++;
    }
    memmove(c->in, c->in + off, c->have - off);
    c->have -= off;
  }
  return done;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double p) {
  if (nlat == 0) return 0;
  size_t i = (size_t)(p / 100.0 * (double)nlat);
  if (i >= nlat) i = nlat - 1;
  return lat[i];
}

static void report(double seconds) {
  qsort(lat, nlat, sizeof *lat, cmp);
  printf("{\"calls\":%zu,\"errors\":%ld,\"overflow\":%ld,\"seconds\":%.3f,\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}\n", nlat, errors, overflow, seconds, pct(50), pct(99), pct(99.9),
         nlat ? lat[nlat - 1] : 0.0);
}

static unsigned char unhex(char c) {
  return (unsigned char)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: loadgen SOCKET MSG_HEX closed|open|hold CONNS [RATE] [SECONDS]\n");
    return 2;
  }
  const char *sock = argv[1], *hex = argv[2], *mode = argv[3];
  int nconns = atoi(argv[4]);
  msg_len = strlen(hex) / 2;
  msg = malloc(msg_len);
  for (size_t i = 0; i < msg_len; i++) msg[i] = (unsigned char)(unhex(hex[2 * i]) << 4 | unhex(hex[2 * i + 1]));

  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max < (rlim_t)nconns + 64) rl.rlim_max = (rlim_t)nconns + 64;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");

  struct conn *conns = calloc((size_t)nconns, sizeof *conns);
  if (!conns) die("calloc");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = open_conn(sock);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl");
  }
  struct epoll_event evs[256];

  if (strcmp(mode, "hold") == 0) {
    /* one call each, so that every connection is past its handshake and has made a request */
    for (int i = 0; i < nconns; i++) send_call(&conns[i], now_ns());
    long left = nconns;
    while (left > 0) {
      int n = epoll_wait(ep, evs, 256, 10000);
      if (n <= 0) {
        fprintf(stderr, "loadgen: %ld replies missing\n", left);
        return 1;
      }
      for (int i = 0; i < n; i++) left -= take_replies(evs[i].data.ptr, 1);
    }
    printf("held %d\n", nconns);
    fflush(stdout);
    char b[64];
    while (read(0, b, sizeof b) > 0)
      ;
    report(0);
    return 0;
  }

  int open_loop = strcmp(mode, "open") == 0;
  double rate = open_loop ? atof(argv[5]) : 0;
  double seconds = atof(argv[open_loop ? 6 : 5]);
  /* warm-up: one call on each connection, not measured */
  for (int i = 0; i < nconns; i++) send_call(&conns[i], now_ns());
  for (long left = nconns; left > 0;) {
    int n = epoll_wait(ep, evs, 256, 10000);
    if (n <= 0) die("warm-up");
    for (int i = 0; i < n; i++) left -= take_replies(evs[i].data.ptr, 0);
  }
  errors = 0;

  uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
  if (!open_loop) {
    for (int i = 0; i < nconns; i++) send_call(&conns[i], now_ns());
    for (;;) {
      int n = epoll_wait(ep, evs, 256, 1000);
      uint64_t t = now_ns();
      for (int i = 0; i < n; i++) {
        struct conn *c = evs[i].data.ptr;
        int got = take_replies(c, 1);
        if (got > 0 && t < end) send_call(c, now_ns());
      }
      int pending = 0;
      for (int i = 0; i < nconns && !pending; i++) pending = conns[i].head != conns[i].tail;
      if (t >= end && !pending) break;
    }
    report((double)(now_ns() - start) / 1e9);
    return 0;
  }

  /* open loop: a timerfd wakes us at the next scheduled send; every send due goes out */
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
  double interval = 1e9 / rate;
  uint64_t k = 0, next = start;
  int target = 0;
  for (;;) {
    uint64_t t = now_ns();
    while (next <= t && next < end) {
      send_call(&conns[target], next);
      target = (target + 1) % nconns;
      k++;
      next = start + (uint64_t)((double)k * interval);
    }
    int pending = 0;
    for (int i = 0; i < nconns && !pending; i++) pending = conns[i].head != conns[i].tail;
    if (next >= end && !pending) break;
    if (t > end + 5000000000ull) {
      fprintf(stderr, "loadgen: replies still missing 5 s after the end\n");
      break;
    }
    if (next < end) {
      struct itimerspec its = { .it_value = { .tv_sec = (time_t)(next / 1000000000u), .tv_nsec = (long)(next % 1000000000u) } };
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
    }
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        uint64_t x;
        if (read(tfd, &x, sizeof x) < 0 && errno != EAGAIN) die("timerfd");
        continue;
      }
      take_replies(evs[i].data.ptr, 1);
    }
  }
  report((double)(now_ns() - start) / 1e9);
  return 0;
}
