/* The C reference for `npm run bench`: a libdbus peer-to-peer server shaped like the
 * original cgmanager (single-threaded, one poll loop, EXTERNAL auth on a unix socket)
 * that answers the two calls the bench compares on org.linuxcontainers.cgmanager0_0:
 *   Ping(i junk)                          -> ()
 *   GetValue(s controller, s cgroup, s key) -> (s value)
 * GetValue does the file work our daemon's GetValue does at least: open, read and close
 * BASE/cgroup/key, where BASE is the bench's own cgroup directory in the hierarchy (the
 * controller argument is not looked at: the bench uses one hierarchy). No access checks:
 * it is a yardstick for what libdbus plus the file syscalls cost, not a cgroup manager.
 *
 * usage: reference-server SOCKET_PATH BASE_DIR   (prints "ready" once listening)
 * build: cc -O2 reference-server.c $(pkg-config --cflags --libs dbus-1)  (libdbus-1-dev) */
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IFACE "org.linuxcontainers.cgmanager0_0"
#define OBJ_PATH "/org/linuxcontainers/cgmanager"
#define MAX_WATCHES 4096
#define MAX_CONNS 2048

static const char *base_dir;
static DBusWatch *watches[MAX_WATCHES];
static int nwatches;
static DBusConnection *conns[MAX_CONNS];
static int nconns;

static dbus_bool_t add_watch(DBusWatch *w, void *data) {
  (void)data;
  if (nwatches == MAX_WATCHES) return FALSE;
  watches[nwatches++] = w;
  return TRUE;
}

static void remove_watch(DBusWatch *w, void *data) {
  (void)data;
  for (int i = 0; i < nwatches; i++)
    if (watches[i] == w) {
      watches[i] = watches[--nwatches];
      return;
    }
}

static void toggle_watch(DBusWatch *w, void *data) {
  (void)w;
  (void)data; /* enabled state is read at every poll */
}

/* libdbus's own timeouts (auth, pending calls) do not matter to a benchmark server. */
static dbus_bool_t add_timeout(DBusTimeout *t, void *data) {
  (void)t;
  (void)data;
  return TRUE;
}
static void remove_timeout(DBusTimeout *t, void *data) {
  (void)t;
  (void)data;
}

static void reply_error(DBusConnection *c, DBusMessage *m, const char *name, const char *text) {
  DBusMessage *r = dbus_message_new_error(m, name, text);
  if (r) {
    dbus_connection_send(c, r, NULL);
    dbus_message_unref(r);
  }
}

static void get_value(DBusConnection *c, DBusMessage *m) {
  const char *controller, *cgroup, *key;
  DBusError err;
  dbus_error_init(&err);
  if (!dbus_message_get_args(m, &err, DBUS_TYPE_STRING, &controller, DBUS_TYPE_STRING, &cgroup, DBUS_TYPE_STRING, &key, DBUS_TYPE_INVALID)) {
    reply_error(c, m, DBUS_ERROR_INVALID_ARGS, err.message);
    dbus_error_free(&err);
    return;
  }
  char path[4096], buf[4096];
  snprintf(path, sizeof path, "%s/%s/%s", base_dir, cgroup, key);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return reply_error(c, m, "org.freedesktop.DBus.Error.FileNotFound", strerror(errno));
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int saved = errno;
  close(fd);
  if (n < 0) return reply_error(c, m, DBUS_ERROR_FAILED, strerror(saved));
  buf[n] = 0;
  if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
  const char *value = buf;
  DBusMessage *r = dbus_message_new_method_return(m);
  if (!r) return;
  dbus_message_append_args(r, DBUS_TYPE_STRING, &value, DBUS_TYPE_INVALID);
  dbus_connection_send(c, r, NULL);
  dbus_message_unref(r);
}

static DBusHandlerResult on_message(DBusConnection *c, DBusMessage *m, void *data) {
  (void)data;
  if (dbus_message_is_method_call(m, IFACE, "GetValue")) {
    get_value(c, m);
    return DBUS_HANDLER_RESULT_HANDLED;
  }
  if (dbus_message_is_method_call(m, IFACE, "Ping")) {
    DBusMessage *r = dbus_message_new_method_return(m);
    if (r) {
      dbus_connection_send(c, r, NULL);
      dbus_message_unref(r);
    }
    return DBUS_HANDLER_RESULT_HANDLED;
  }
  return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

static dbus_bool_t any_uid(DBusConnection *c, unsigned long uid, void *data) {
  (void)c;
  (void)uid;
  (void)data;
  return TRUE;
}

static void on_new_connection(DBusServer *server, DBusConnection *c, void *data) {
  (void)server;
  (void)data;
  static const DBusObjectPathVTable vtable = { .message_function = on_message };
  if (nconns == MAX_CONNS) return; /* not referenced: libdbus drops it */
  dbus_connection_ref(c);
  dbus_connection_set_unix_user_function(c, any_uid, NULL, NULL);
  dbus_connection_set_watch_functions(c, add_watch, remove_watch, toggle_watch, NULL, NULL);
  dbus_connection_set_timeout_functions(c, add_timeout, remove_timeout, NULL, NULL, NULL);
  dbus_connection_register_object_path(c, OBJ_PATH, &vtable, NULL);
  conns[nconns++] = c;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: reference-server SOCKET_PATH BASE_DIR\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  base_dir = argv[2];
  char address[4200];
  snprintf(address, sizeof address, "unix:path=%s", argv[1]);
  DBusError err;
  dbus_error_init(&err);
  DBusServer *server = dbus_server_listen(address, &err);
  if (!server) {
    fprintf(stderr, "reference-server: %s\n", err.message);
    return 1;
  }
  const char *mechanisms[] = { "EXTERNAL", NULL };
  dbus_server_set_auth_mechanisms(server, mechanisms);
  dbus_server_set_new_connection_function(server, on_new_connection, NULL, NULL);
  dbus_server_set_watch_functions(server, add_watch, remove_watch, toggle_watch, NULL, NULL);
  dbus_server_set_timeout_functions(server, add_timeout, remove_timeout, NULL, NULL, NULL);
  printf("ready\n");
  fflush(stdout);

  static struct pollfd fds[MAX_WATCHES];
  static DBusWatch *polled[MAX_WATCHES];
  for (;;) {
    int n = 0;
    for (int i = 0; i < nwatches; i++) {
      DBusWatch *w = watches[i];
      if (!dbus_watch_get_enabled(w)) continue;
      unsigned flags = dbus_watch_get_flags(w);
      fds[n].fd = dbus_watch_get_unix_fd(w);
      fds[n].events = (flags & DBUS_WATCH_READABLE ? POLLIN : 0) | (flags & DBUS_WATCH_WRITABLE ? POLLOUT : 0);
      fds[n].revents = 0;
      polled[n++] = w;
    }
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      if (!fds[i].revents) continue;
      unsigned flags = 0;
      if (fds[i].revents & POLLIN) flags |= DBUS_WATCH_READABLE;
      if (fds[i].revents & POLLOUT) flags |= DBUS_WATCH_WRITABLE;
      if (fds[i].revents & POLLERR) flags |= DBUS_WATCH_ERROR;
      if (fds[i].revents & POLLHUP) flags |= DBUS_WATCH_HANGUP;
      /* a watch handled earlier in this round may have removed this one */
      for (int j = 0; j < nwatches; j++)
        if (watches[j] == polled[i]) {
          dbus_watch_handle(polled[i], flags);
          break;
        }
    }
    for (int i = 0; i < nconns;) {
      DBusConnection *c = conns[i];
      while (dbus_connection_dispatch(c) == DBUS_DISPATCH_DATA_REMAINS)
        ;
      if (!dbus_connection_get_is_connected(c)) {
        conns[i] = conns[--nconns];
        dbus_connection_unref(c);
        continue;
      }
      i++;
    }
  }
}
