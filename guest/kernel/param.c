// Boot parameters: the -append string, parsed once at boot into `params`.
//   init=NAME ARGS...  run NAME with ARGS under init (the rest of the line)
//   test               run the in-kernel tests and power off with the failures
//   test=A,B           run only the named tests
//   tick_us=N          round-robin quantum in microseconds of virtual time
//                      (default 1000)
//   min_free_kb=N      min watermark in KiB (default: Linux's rule; the one
//                      spelling - min_free_kbytes= is not accepted)
//   reserve=off        no memory reserves: nobody allocates below min, RX
//                      buffers are ordinary, no pfmemalloc drop rule
//   panic              panic at boot (tests the failure path: emu exits 1)
//   swap=off           no swap (the NIC still comes up)
//   swapoff=MODE       how swapoff(2) finds the PTEs of swapped pages: scan, batch,
//                      hint or walk (default; docs/swapoff.md)
//   swap_slots=N       use at most N slots of the AoE device
//   swap_msl_ms=N      a slot is reused only N ms after its last write was sent
//   swap_readahead=N   pages per swap-in read (1: no read-ahead; default 16)
//   readahead=MODE     which pages a swap-in reads ahead: cluster (the slots
//                      after the fault's, default) or vma (the pages after it
//                      in the process, Linux 4.14; docs/prefetch.md)
//   prefetch=on        swap prefetch: kprefetchd reads recently swapped-out
//                      pages back while the machine is idle (docs/prefetch.md)
//   prefetch_delay_ms=N  idle time before kprefetchd starts (default 1000)
//   aoe_deadtime_ms=N  a target silent this long fails its I/O (default 180000)
//   aoe_minrto_us=N    floor of the AoE retransmit timeout (default 1000)
// Anything else is reported on the console and otherwise ignored.
#include "types.h"
#include "defs.h"

struct params params;
static char line[1024];

// Returns the decimal value of s, or -1 if s is not a decimal number.
static int64 number(const char *s) {
  int64 v = 0;
  if (!*s)
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 1000000000000L)
      return -1;
    v = v * 10 + (*s - '0');
  }
  return v;
}

static int64 numparam(const char *key, const char *val, int64 lo, int64 hi) {
  int64 v = number(val);
  if (v < lo || v > hi) {
    printf("param: bad value '%s' for %s (want %d..%d), ignored\n", val, key, (int)lo, (int)hi);
    return -1;
  }
  return v;
}

// Parse `cmdline` into params (which it resets first). Returns the number of
// unknown or malformed parameters, each of which is reported on the console.
int paraminit(const char *cmdline) {
  memset(&params, 0, sizeof params);
  params.swap_msl_ms = -1;
  params.swapoff_mode = SWAPOFF_WALK;
  params.prefetch_delay_ms = -1;
  strncpy(line, cmdline, sizeof line - 1);
  line[sizeof line - 1] = 0;
  int bad = 0;
  char *p = line;
  while (*p) {
    while (*p == ' ')
      *p++ = 0;
    if (!*p)
      break;
    char *word = p, *val = 0;
    while (*p && *p != ' ') {
      if (*p == '=' && !val) {
        *p = 0;
        val = p + 1;
      }
      p++;
    }
    if (*p)
      *p++ = 0;
    if (strcmp(word, "init") == 0 && val && *val) {
      // init= takes the rest of the line: the program and its arguments.
      params.initargv[params.initargc++] = val;
      while (*p && params.initargc < MAXARG - 1) {  // init's own argv[0] comes first
        while (*p == ' ')
          *p++ = 0;
        if (!*p)
          break;
        params.initargv[params.initargc++] = p;
        while (*p && *p != ' ')
          p++;
      }
      while (*p == ' ')
        *p++ = 0;
      if (*p) {
        printf("param: init= takes at most %d words, rest ignored\n", MAXARG - 1);
        *p = 0;
        bad++;
      }
      break;
    } else if (strcmp(word, "test") == 0) {
      params.test = 1;
      params.tests = val;
    } else if (strcmp(word, "panic") == 0 && !val) {
      params.panic = 1;
    } else if (strcmp(word, "tick_us") == 0 && val) {
      int64 v = numparam(word, val, 10, 1000000);
      params.tick_us = v > 0 ? v : 0;
      bad += v < 0;
    } else if (strcmp(word, "swap") == 0 && val && strcmp(val, "off") == 0) {
      params.noswap = 1;
    } else if (strcmp(word, "swapoff") == 0 && val) {
      int m = swapoff_mode(val);
      if (m < 0) {
        printf("param: bad value '%s' for swapoff (want scan, batch, hint or walk), ignored\n",
               val);
        bad++;
      } else {
        params.swapoff_mode = m;
      }
    } else if (strcmp(word, "swap_slots") == 0 && val) {
      int64 v = numparam(word, val, 16, 1 << 20);
      params.swap_slots = v > 0 ? v : 0;
      bad += v < 0;
    } else if (strcmp(word, "swap_readahead") == 0 && val) {
      int64 v = numparam(word, val, 1, 16);
      params.swap_readahead = v == 1 ? -1 : v > 0 ? v : 0;
      bad += v < 0;
    } else if (strcmp(word, "readahead") == 0 && val &&
               (strcmp(val, "cluster") == 0 || strcmp(val, "vma") == 0)) {
      params.readahead_vma = strcmp(val, "vma") == 0;
    } else if (strcmp(word, "prefetch") == 0 && val &&
               (strcmp(val, "on") == 0 || strcmp(val, "off") == 0)) {
      params.prefetch = strcmp(val, "on") == 0;
    } else if (strcmp(word, "prefetch_delay_ms") == 0 && val) {
      int64 v = numparam(word, val, 0, 1000000);
      params.prefetch_delay_ms = v >= 0 ? v : -1;
      bad += v < 0;
    } else if (strcmp(word, "swap_msl_ms") == 0 && val) {
      int64 v = numparam(word, val, 0, 100000);
      params.swap_msl_ms = v >= 0 ? v : -1;
      bad += v < 0;
    } else if (strcmp(word, "aoe_deadtime_ms") == 0 && val) {
      int64 v = numparam(word, val, 10, 100000000);
      params.aoe_deadtime_ms = v > 0 ? v : 0;
      bad += v < 0;
    } else if (strcmp(word, "aoe_minrto_us") == 0 && val) {
      int64 v = numparam(word, val, 10, 10000000);
      params.aoe_minrto_us = v > 0 ? v : 0;
      bad += v < 0;
    } else if (strcmp(word, "reserve") == 0 && val && strcmp(val, "off") == 0) {
      params.reserve_off = 1;
    } else if (strcmp(word, "min_free_kb") == 0 && val) {
      int64 v = numparam(word, val, 16, 65536);
      params.min_free_kb = v > 0 ? v : 0;
      bad += v < 0;
    } else {
      if (val)
        printf("param: unknown key '%s' (value '%s'), ignored\n", word, val);
      else
        printf("param: unknown parameter '%s', ignored\n", word);
      bad++;
    }
  }
  return bad;
}
