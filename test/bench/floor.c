/* The raw-syscall floor for one cgroup lifecycle cycle, the same steps the benchmark
 * asks of the daemon: mkdir, chown the directory and its procs file, write a value,
 * move a pid in, read the value back, move the pid back out, rmdir.
 * usage: floor BASE_DIR KEY VALUE PID UID GID CYCLES  -> prints nanoseconds per cycle
 *        floor --getvalue DIR KEY CALLS               -> nanoseconds for the syscalls one
 *        GetValue needs at least: read the caller's /proc cgroup (one pread of a kept fd),
 *        stat the cgroup, open/read/close the key
 *        floor --setup CYCLES PID UID GID (DIR KEY VALUE)...  -> nanoseconds per container
 *        setup: in each DIR (one per hierarchy) mkdir a child, chown it with its tasks and
 *        cgroup.procs, write KEY, move PID in; undoing it (untimed) moves PID back, rmdir */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, const char *path) {
  perror(what);
  fprintf(stderr, "  on %s\n", path);
  exit(1);
}

static void write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (write(fd, text, strlen(text)) < 0) die("write", path);
  close(fd);
}

static void read_file(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (read(fd, buf, len - 1) < 0) die("read", path);
  close(fd);
}

static int getvalue_floor(const char *dir, const char *key, int calls) {
  char file[4096], buf[4096];
  struct stat st;
  snprintf(file, sizeof file, "%s/%s", dir, key);
  int proc = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (proc < 0) die("open", "/proc/self/cgroup");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < calls; i++) {
    if (pread(proc, buf, sizeof buf, 0) < 0) die("pread", "/proc/self/cgroup");
    if (lstat(dir, &st) < 0) die("lstat", dir);
    read_file(file, buf, sizeof buf);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / calls);
  return 0;
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b) {
  return (b->tv_sec - a->tv_sec) * 1e9 + (b->tv_nsec - a->tv_nsec);
}

static int setup_floor(int argc, char **argv) {
  int cycles = atoi(argv[2]);
  char pid[32], dir[4096], file[4096];
  snprintf(pid, sizeof pid, "%s\n", argv[3]);
  uid_t uid = (uid_t)atoi(argv[4]);
  gid_t gid = (gid_t)atoi(argv[5]);
  int n = (argc - 6) / 3;
  double total = 0;
  for (int i = 0; i < cycles; i++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int h = 0; h < n; h++) {
      const char *base = argv[6 + 3 * h], *key = argv[7 + 3 * h], *value = argv[8 + 3 * h];
      snprintf(dir, sizeof dir, "%s/floorsetup%d", base, i);
      if (mkdir(dir, 0755) < 0) die("mkdir", dir);
      if (chown(dir, uid, gid) < 0) die("chown", dir);
      snprintf(file, sizeof file, "%s/tasks", dir); /* v1 only */
      if (chown(file, uid, gid) < 0 && errno != ENOENT) die("chown", file);
      snprintf(file, sizeof file, "%s/cgroup.procs", dir);
      if (chown(file, uid, gid) < 0) die("chown", file);
      snprintf(file, sizeof file, "%s/%s", dir, key);
      write_file(file, value);
    }
    for (int h = 0; h < n; h++) {
      snprintf(file, sizeof file, "%s/floorsetup%d/cgroup.procs", argv[6 + 3 * h], i);
      write_file(file, pid);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    total += elapsed_ns(&t0, &t1);
    for (int h = 0; h < n; h++) {
      snprintf(file, sizeof file, "%s/cgroup.procs", argv[6 + 3 * h]);
      write_file(file, pid);
      snprintf(dir, sizeof dir, "%s/floorsetup%d", argv[6 + 3 * h], i);
      if (rmdir(dir) < 0) die("rmdir", dir);
    }
  }
  printf("%.0f\n", total / cycles);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 9 && (argc - 6) % 3 == 0 && strcmp(argv[1], "--setup") == 0) return setup_floor(argc, argv);
  if (argc == 5 && strcmp(argv[1], "--getvalue") == 0) return getvalue_floor(argv[2], argv[3], atoi(argv[4]));
  if (argc != 8) {
    fprintf(stderr, "usage: floor BASE KEY VALUE PID UID GID CYCLES\n");
    return 2;
  }
  const char *base = argv[1], *key = argv[2], *value = argv[3];
  char pid[32];
  snprintf(pid, sizeof pid, "%s\n", argv[4]);
  uid_t uid = (uid_t)atoi(argv[5]);
  gid_t gid = (gid_t)atoi(argv[6]);
  int cycles = atoi(argv[7]);
  char dir[4096], file[4096], back[4096], buf[4096];
  snprintf(back, sizeof back, "%s/cgroup.procs", base);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < cycles; i++) {
    snprintf(dir, sizeof dir, "%s/floor%d", base, i);
    if (mkdir(dir, 0755) < 0) die("mkdir", dir);
    if (chown(dir, uid, gid) < 0) die("chown", dir);
    snprintf(file, sizeof file, "%s/cgroup.procs", dir);
    if (chown(file, uid, gid) < 0) die("chown", file);
    snprintf(file, sizeof file, "%s/%s", dir, key);
    write_file(file, value);
    snprintf(file, sizeof file, "%s/cgroup.procs", dir);
    write_file(file, pid);
    snprintf(file, sizeof file, "%s/%s", dir, key);
    read_file(file, buf, sizeof buf);
    write_file(back, pid);
    if (rmdir(dir) < 0) die("rmdir", dir);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
  printf("%.0f\n", ns / cycles);
  return 0;
}
