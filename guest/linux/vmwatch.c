// vmwatch for the Linux guest (docs/linux.md): a watcher that keeps
// working while the rest of user space waits on swap. It locks itself in
// memory (mlockall), then every S seconds prints uptime, free memory,
// write-back and the swap counters; when pswpout has not moved for three
// periods it prints the aoe driver's per-target state (debugfs), the
// network counters (/proc/net/dev: eth0's drops; /proc/net/snmp: TCP's
// retransmissions) and asks the kernel for its blocked tasks and memory
// (sysrq w and m), once.
//   vmwatch [S]
// Built static with Debian's riscv64 cross compiler (guest/linux/build.py).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char buf[16384];

static long field(const char *path, const char *key) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = 0;
  char *p = strstr(buf, key);
  return p ? strtol(p + strlen(key), 0, 10) : -1;
}

static void dump(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    write(1, buf, n);
  close(fd);
}

static void sysrq(char c) {
  int fd = open("/proc/sysrq-trigger", O_WRONLY);
  if (fd >= 0) {
    write(fd, &c, 1);
    close(fd);
  }
}

int main(int argc, char **argv) {
  int period = argc > 1 ? atoi(argv[1]) : 1;
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    perror("vmwatch: mlockall");
  long last = -1;
  int still = 0, told = 0;
  for (;;) {
    sleep(period);
    long up = field("/proc/uptime", "");
    long freekb = field("/proc/meminfo", "MemFree:");
    long wb = field("/proc/meminfo", "Writeback:");
    long out = field("/proc/vmstat", "pswpout ");
    long in = field("/proc/vmstat", "pswpin ");
    printf("vmwatch: %lds free %ld kB writeback %ld kB pswpout %ld pswpin %ld\n", up, freekb,
           wb, out, in);
    fflush(stdout);
    still = out == last ? still + 1 : 0;
    last = out;
    if (still >= 3 && !told) {
      told = 1;
      printf("vmwatch: no swap-out for %d s: aoe state, network counters, blocked tasks, "
             "memory\n", 3 * period);
      fflush(stdout);
      dump("/sys/kernel/debug/aoe/e0.0");
      dump("/proc/net/dev");
      dump("/proc/net/snmp");
      sysrq('w');
      sysrq('m');
    }
  }
}
