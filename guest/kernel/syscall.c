// System calls: number in a7, arguments in a0..a5, result in a0 (-1 on any
// error). Every user pointer goes through copyin/copyout, so a bad one makes
// the call fail instead of the kernel.
#include "types.h"
#include "riscv.h"
#include "proc.h"
#include "trap.h"
#include "defs.h"

static uint64 boot_ns;

void syscallinit(void) { boot_ns = now_ns(); }

static int64 sys_write(struct trapframe *tf) {
  char buf[128];
  int fd = tf->a0;
  uint64 va = tf->a1;
  int64 n = tf->a2;
  if ((fd != 1 && fd != 2) || n < 0)
    return -1;
  for (int64 done = 0; done < n;) {
    int64 m = n - done < (int64)sizeof buf ? n - done : (int64)sizeof buf;
    if (copyin(myproc(), buf, va + done, m) != 0)
      return -1;
    for (int64 i = 0; i < m; i++)
      consputc(buf[i]);
    done += m;
  }
  return n;
}

static int64 sys_exit(struct trapframe *tf) {
  exit(tf->a0);
  return 0;
}

static int64 sys_wait(struct trapframe *tf) {
  struct proc *p = myproc();
  uint64 va = tf->a0;
  int status;
  // Check the pointer before reaping: a failed call must not lose a child.
  if (va && (uvmaddr(p, va, PTE_W) == 0 || uvmaddr(p, va + sizeof status - 1, PTE_W) == 0))
    return -1;
  int pid = wait(&status);
  if (pid > 0 && va && copyout(p, va, &status, sizeof status) != 0)
    return -1;
  return pid;
}

static int64 sys_getpid(struct trapframe *tf) { return myproc()->pid; }

static int64 sys_sbrk(struct trapframe *tf) { return uvmsbrk(myproc(), tf->a0); }

static int64 sys_yield(struct trapframe *tf) {
  yield();
  return 0;
}

// sleep(ms): at most 10^9 ms, so the deadline cannot wrap.
static int64 sys_sleep(struct trapframe *tf) {
  int64 ms = tf->a0;
  if (ms < 0 || ms > 1000000000L)
    return -1;
  sleepuntil(now_ns() + ms * 1000000UL);
  return 0;
}

// spawn(name, argv): argv is a user array of user strings ending with 0.
static int64 sys_spawn(struct trapframe *tf) {
  struct proc *p = myproc();
  char name[PROCNAME], *argv[MAXARG + 1];
  char *buf = kmalloc(ARGMAX);
  if (!buf)
    return -1;
  int64 r = -1;
  uint64 used = 0;
  if (copyinstr(p, name, tf->a0, sizeof name) < 0)
    goto out;
  for (int i = 0;; i++) {
    uint64 uarg;
    if (i > MAXARG || copyin(p, &uarg, tf->a1 + i * sizeof uarg, sizeof uarg) != 0)
      goto out;
    if (uarg == 0) {
      argv[i] = 0;
      break;
    }
    int len = copyinstr(p, buf + used, uarg, ARGMAX - used);
    if (len < 0)
      goto out;
    argv[i] = buf + used;
    used += len + 1;
  }
  r = spawn(name, argv);
out:
  kfree(buf);
  return r;
}

static int64 sys_uptime(struct trapframe *tf) { return now_ns() - boot_ns; }

static int64 sys_meminfo(struct trapframe *tf) {
  struct meminfo *mi = kmalloc(sizeof *mi);
  if (!mi)
    return -1;
  kmeminfo(mi);
  procinfo(mi);
  int64 r = copyout(myproc(), tf->a0, mi, sizeof *mi) == 0 ? 0 : -1;
  kfree(mi);
  return r;
}

// swapoff(info or 0): the record is copied out whether or not it worked.
static int64 sys_swapoff(struct trapframe *tf) {
  struct swapoffinfo info;
  int r = swapoff(&info);
  if (tf->a0 && copyout(myproc(), tf->a0, &info, sizeof info) != 0)
    return -1;
  return r;
}

static int64 sys_swapon(struct trapframe *tf) { return swapon(); }

static int64 (*const syscalls[NSYSCALL])(struct trapframe *) = {
  [SYS_write] = sys_write,   [SYS_exit] = sys_exit,     [SYS_wait] = sys_wait,
  [SYS_getpid] = sys_getpid, [SYS_sbrk] = sys_sbrk,     [SYS_yield] = sys_yield,
  [SYS_sleep] = sys_sleep,   [SYS_spawn] = sys_spawn,   [SYS_uptime] = sys_uptime,
  [SYS_meminfo] = sys_meminfo, [SYS_swapoff] = sys_swapoff, [SYS_swapon] = sys_swapon,
};

void syscall(struct trapframe *tf) {
  uint64 n = tf->a7;
  if (n < NSYSCALL && syscalls[n]) {
    kstats.syscalls[n]++;
    tf->a0 = syscalls[n](tf);
  } else {
    kstats.syscalls[0]++;
    tf->a0 = -1;
  }
}
