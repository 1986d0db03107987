// ATA over Ethernet initiator (AoE r11; NOTES.md section 2; Linux
// drivers/block/aoe/aoecmd.c). A bio is cut into frames of at most `scnt`
// sectors; each frame is one request from a fixed pool, sent when the
// window allows. Every (re)transmission gets a new tag: pool index in bits
// 31:24, a generation in 23:16, the send time in microseconds in 15:0, so a
// reply can only complete the transmission it answers. RTO follows
// Jacobson/Karels (RTO = 2*SRTT + 8*RTTVAR), the window does slow start and
// collapses to 1 on a timeout, and a target silent past the dead-time fails
// every I/O once, with one console line.
#include "types.h"
#include "riscv.h"
#include "net.h"
#include "kstats.h"
#include "defs.h"

#define NREQ 128          // frames in flight or queued (pool)
#define AOE_HLEN 36       // Ethernet 14 + AoE 10 + ATA 12
#define CMD_ATA 0
#define CMD_CFG 1
#define ATA_READ_EXT 0x24
#define ATA_WRITE_EXT 0x34
#define ATA_IDENTIFY 0xEC
#define AF_LBA48 0x40
#define AF_WRITE 0x01

struct aoereq {
  int state;              // RQ_*
  struct aoereq *next;    // pending queue
  struct bio *bio;
  uint64 lba;
  uint32 nsect, off;      // sectors; byte offset into bio->data
  int cmd, atacmd;
  uint32 tag;
  uint8 gen;
  uint64 sent_ns, first_ns, timeout_ns;
  int retries;
  uint8 hdr[AOE_HLEN];
};
#define RQ_FREE 0
#define RQ_PENDING 1
#define RQ_INFLIGHT 2

static struct aoereq pool[NREQ];
static struct aoereq *pendhead, *pendtail;
static uint32 nfree_req = NREQ;
struct aoedev aoedev;
static uint64 deadtime_ns, minrto_ns, maxrto_ns;
static uint64 timer_at;                 // next retransmit scan (0: none)
static void (*ready_fn)(int ok);        // aoe_start's callback
static struct bio probe_bio;            // config query, then identify
static uint8 ident[512];
#define PROBE_TRIES 8                   // config queries before giving up

static void putbe16(uint8 *p, uint16 v) { p[0] = v >> 8; p[1] = v; }
static uint16 getbe16(const uint8 *p) { return (uint16)(p[0] << 8 | p[1]); }

static void stats_export(void) {
  kstats.aoe_srtt_ns = aoedev.srtt;
  kstats.aoe_rttvar_ns = aoedev.rttvar;
  kstats.aoe_rto_ns = aoedev.rto;
  kstats.aoe_cwnd = aoedev.cwnd;
  kstats.aoe_ssthresh = aoedev.ssthresh;
}

static uint64 clamp_rto(uint64 rto) {
  return rto < minrto_ns ? minrto_ns : rto > maxrto_ns ? maxrto_ns : rto;
}

// Jacobson/Karels: SRTT += (R - SRTT)/8, RTTVAR += (|R - SRTT| - RTTVAR)/4;
// the first sample replaces the initial 250 ms / 62.5 ms (RFC 6298 2.2).
static void rtt_sample(uint64 r) {
  if (aoedev.rtt_samples++ == 0) {
    aoedev.srtt = r;
    aoedev.rttvar = r / 2;
  } else {
    int64 err = (int64)r - (int64)aoedev.srtt;
    aoedev.srtt = (uint64)((int64)aoedev.srtt + err / 8);
    uint64 a = err < 0 ? -err : err;
    aoedev.rttvar = (uint64)((int64)aoedev.rttvar + ((int64)a - (int64)aoedev.rttvar) / 4);
  }
  aoedev.rto = clamp_rto(2 * aoedev.srtt + 8 * aoedev.rttvar);
}

static struct aoereq *reqalloc(void) {
  for (int i = 0; i < NREQ; i++)
    if (pool[i].state == RQ_FREE) {
      struct aoereq *q = &pool[i];
      uint8 gen = q->gen;
      memset(q, 0, sizeof *q);
      q->gen = gen;
      nfree_req--;
      return q;
    }
  return 0;
}

static void reqfree(struct aoereq *q) {
  q->state = RQ_FREE;
  q->bio = 0;
  nfree_req++;
}

// Describe bytes [off, off+len) of bio b's buffers as up to `max` pieces.
// Returns the number of pieces.
static int pieces(struct bio *b, uint32 off, uint32 len, struct iov *v, int max) {
  if (!b->npages) {
    v[0] = (struct iov){b->data + off, len};
    return 1;
  }
  int n = 0;
  while (len && n < max) {
    uint32 pg = off / PGSIZE, o = off % PGSIZE, k = PGSIZE - o;
    if (k > len)
      k = len;
    v[n++] = (struct iov){b->pages[pg] + o, k};
    off += k;
    len -= k;
  }
  return n;
}

// Build the header and send q with a fresh tag. Returns 0 or -1 (NIC).
static int xmit(struct aoereq *q) {
  uint64 now = now_ns();
  q->gen++;
  uint32 idx = q - pool;
  q->tag = idx << 24 | (uint32)q->gen << 16 | (uint32)((now / 1000000) & 0xffff);
  uint8 *h = q->hdr;
  int bcast = q->cmd == CMD_CFG && aoedev.state != AOE_UP;
  for (int i = 0; i < ETH_ALEN; i++) {
    h[i] = bcast ? 0xff : aoedev.mac[i];
    h[6 + i] = netmac[i];
  }
  putbe16(h + 12, ETHERTYPE_AOE);
  h[14] = 0x10;  // version 1, no flags
  h[15] = 0;
  putbe16(h + 16, bcast ? 0xffff : aoedev.shelf);
  h[18] = bcast ? 0xff : aoedev.slot;
  h[19] = q->cmd;
  h[20] = q->tag >> 24;
  h[21] = q->tag >> 16;
  h[22] = q->tag >> 8;
  h[23] = q->tag;
  memset(h + 24, 0, 12);
  int write = q->bio && q->bio->write;
  struct iov v[1 + 4] = {{h, AOE_HLEN}};
  int n = 1;
  if (q->cmd == CMD_ATA) {
    h[24] = AF_LBA48 | (write ? AF_WRITE : 0);
    h[26] = q->nsect;
    h[27] = q->atacmd;
    for (int i = 0; i < 6; i++)
      h[28 + i] = q->lba >> (8 * i);
    if (write)
      n += pieces(q->bio, q->off, q->nsect * 512, v + 1, 4);
  } else {
    v[0].len = 24 + 8;  // config query: bufcnt fwver scnt ver|ccmd cslen all 0
  }
  q->sent_ns = now;
  if (!q->first_ns)
    q->first_ns = now;
  if (q->bio)
    q->bio->last_tx_ns = now;
  return net_tx(v, n);
}

// Make sure the retransmit scan runs no later than `when`.
static void arm(uint64 when) {
  if (!timer_at || when < timer_at)
    timer_at = when;
}

// Send queued frames while the window has room, in PF_MEMALLOC state
// (charged to aoe_tx: sending requests is how memory gets freed).
static void kick1(void);
static void kick(void) {
  int old = memalloc_save(RESERVE_AOE_TX);
  kick1();
  memalloc_restore(old);
}

static void kick1(void) {
  while (pendhead && aoedev.inflight < aoedev.cwnd && aoedev.state != AOE_DEAD) {
    struct aoereq *q = pendhead;
    pendhead = q->next;
    if (!pendhead)
      pendtail = 0;
    q->next = 0;
    q->state = RQ_INFLIGHT;
    q->timeout_ns = aoedev.rto;
    if (aoedev.inflight++ == 0)
      aoedev.quiet_since = now_ns();
    kstats.aoe_inflight = aoedev.inflight;
    if (aoedev.inflight > kstats.aoe_inflight_max)
      kstats.aoe_inflight_max = aoedev.inflight;
    kstats.aoe_requests++;
    xmit(q);
    arm(q->sent_ns + q->timeout_ns);
  }
}

static void enqueue(struct aoereq *q) {
  q->state = RQ_PENDING;
  q->next = 0;
  if (pendtail)
    pendtail->next = q;
  else
    pendhead = q;
  pendtail = q;
}

static void bio_endframe(struct bio *b, int err) {
  if (err)
    b->error = -1;
  if (--b->remaining == 0) {
    b->complete = 1;
    if (b->done)
      b->done(b);
  }
}

// Complete q (reply, error or dead device) and free it.
static void finish(struct aoereq *q, int err) {
  if (q->state == RQ_INFLIGHT)
    aoedev.inflight--;
  kstats.aoe_inflight = aoedev.inflight;
  struct bio *b = q->bio;
  reqfree(q);
  if (b)
    bio_endframe(b, err);
}

// Frames needed for a bio.
// Sectors per frame: scnt, rounded down to whole pages when it holds one
// (17 -> 16 at MTU 9000: two pages a frame, never a page split).
static uint32 fsect(void) { return aoedev.scnt >= 8 ? aoedev.scnt & ~7U : aoedev.scnt; }

static int nframes(struct bio *b) { return (b->nsect + fsect() - 1) / fsect(); }

// Returns 1 if a bio of this size can be queued now (pool space).
int aoe_can_queue(uint32 nsect) {
  uint32 f = aoedev.scnt ? fsect() : 1;
  return nfree_req >= (nsect + f - 1) / f;
}

// Queue bio b on the AoE device. Completion is asynchronous; a dead or
// missing device, an out-of-range bio or a full pool completes it at once
// with an error.
void aoe_submit(struct bio *b) {
  b->error = 0;
  b->complete = 0;
  if (aoedev.state != AOE_UP || b->nsect == 0 || b->sector + b->nsect > aoedev.nsectors ||
      nfree_req < (uint32)nframes(b)) {
    b->remaining = 1;
    kstats.aoe_errors++;
    bio_endframe(b, 1);
    return;
  }
  b->remaining = nframes(b);
  uint32 fs = fsect();
  for (uint32 s = 0; s < b->nsect; s += fs) {
    struct aoereq *q = reqalloc();
    q->bio = b;
    q->cmd = CMD_ATA;
    q->atacmd = b->write ? ATA_WRITE_EXT : ATA_READ_EXT;
    q->lba = b->sector + s;
    q->nsect = b->nsect - s < fs ? b->nsect - s : fs;
    q->off = s * 512;
    enqueue(q);
  }
  kick();
}

static void window_open(void) {
  if (aoedev.cwnd < aoedev.ssthresh) {
    aoedev.cwnd++;  // slow start: +1 per completed frame
  } else if (++aoedev.cwnd_acc >= aoedev.cwnd) {
    aoedev.cwnd_acc = 0;
    aoedev.cwnd++;  // congestion avoidance: +1 per window
  }
  if (aoedev.cwnd > aoedev.maxwin)
    aoedev.cwnd = aoedev.maxwin;
}

// An AoE frame from the net core.
void aoe_rx(struct nbuf *nb) {
  uint8 h[AOE_HLEN];
  memset(h, 0, sizeof h);
  if (nb->len < 24 || nb_copy(nb, 0, h, nb->len < AOE_HLEN ? nb->len : AOE_HLEN) < 0) {
    kstats.aoe_unknown++;
    return;
  }
  if (!(h[14] & 0x08) || (h[14] >> 4) != 1) {  // not a response (our own broadcast, others)
    kstats.aoe_unknown++;
    return;
  }
  uint32 tag = (uint32)h[20] << 24 | (uint32)h[21] << 16 | (uint32)h[22] << 8 | h[23];
  uint32 idx = tag >> 24;
  struct aoereq *q = idx < NREQ ? &pool[idx] : 0;
  if (!q || q->state != RQ_INFLIGHT || q->tag != tag) {
    if (q && ((tag >> 16) & 0xff) != 0) {
      kstats.aoe_stale++;   // one of our tags, no longer the live one
      uint64 age = (uint16)(now_ns() / 1000000 - (tag & 0xffff));  // ms, from the tag
      if (age > kstats.aoe_stale_age_max_ms)
        kstats.aoe_stale_age_max_ms = age;
    }
    else
      kstats.aoe_unknown++;
    return;
  }
  int cmd = h[19];
  uint16 shelf = getbe16(h + 16);
  if (cmd != q->cmd || (q->cmd == CMD_ATA && (shelf != aoedev.shelf || h[18] != aoedev.slot))) {
    kstats.aoe_unknown++;
    return;
  }
  uint64 now = now_ns();
  kstats.aoe_replies++;
  aoedev.quiet_since = now;
  rtt_sample(now - q->sent_ns);
  int err = (h[14] & 0x04) != 0;
  if (q->cmd == CMD_CFG) {
    if (!err && aoedev.state == AOE_PROBING && nb->len >= 30) {
      for (int i = 0; i < ETH_ALEN; i++)
        aoedev.mac[i] = h[6 + i];
      aoedev.shelf = shelf;
      aoedev.slot = h[18];
      aoedev.bufcnt = getbe16(h + 24);
      uint32 tscnt = h[28];
      uint32 mine = (netmtu - AOE_HLEN + ETH_HLEN - ETH_HLEN) / 512;
      aoedev.scnt = tscnt && tscnt < mine ? tscnt : mine;
      if (aoedev.scnt > 255)
        aoedev.scnt = 255;
      uint32 cap = aoedev.bufcnt < 64 ? aoedev.bufcnt : 64;
      aoedev.maxwin = cap ? cap : 1;
    }
    finish(q, err);
  } else {
    int status = h[27];
    if (err || (status & 0xA9)) {
      err = 1;
      kstats.aoe_errors++;
    } else if (!(q->bio->write)) {
      struct iov v[4];
      int n = pieces(q->bio, q->off, q->nsect * 512, v, 4);
      uint32 at = AOE_HLEN;
      for (int i = 0; i < n && !err; i++) {
        if (nb_copy(nb, at, (void *)v[i].base, v[i].len) < 0)
          err = 1;
        at += v[i].len;
      }
      if (err)
        kstats.aoe_errors++;
    }
    finish(q, err);
  }
  window_open();
  stats_export();
  kick();
}

// Declare the target dead: fail everything queued or in flight.
static void aoe_dead(uint64 silent) {
  aoedev.state = AOE_DEAD;
  kstats.aoe_dead = 1;
  int n = 0;
  for (int i = 0; i < NREQ; i++)
    n += pool[i].state != RQ_FREE;
  printf("aoe: e%d.%d: target silent for %d ms (dead-time %d ms), failing %d I/O requests\n",
         (int)aoedev.shelf, (int)aoedev.slot, (int)(silent / 1000000),
         (int)(deadtime_ns / 1000000), n);
  pendhead = pendtail = 0;
  for (int i = 0; i < NREQ; i++)
    if (pool[i].state != RQ_FREE) {
      kstats.aoe_errors++;
      finish(&pool[i], 1);
    }
}

// Retransmit every frame whose timeout has passed (new tag, doubled
// timeout for that frame); a timeout collapses the window to 1. Returns the
// earliest next deadline (0: nothing in flight).
static uint64 scan(void) {
  uint64 now = now_ns(), next = 0;
  int timedout = 0;
  if (aoedev.inflight && aoedev.state != AOE_DEAD && now - aoedev.quiet_since >= deadtime_ns) {
    aoe_dead(now - aoedev.quiet_since);
    return 0;
  }
  for (int i = 0; i < NREQ; i++) {
    struct aoereq *q = &pool[i];
    if (q->state != RQ_INFLIGHT)
      continue;
    if (now - q->sent_ns >= q->timeout_ns) {
      if (q->cmd == CMD_CFG && q->retries >= PROBE_TRIES) {
        finish(q, 1);        // nobody answers the config query
        continue;
      }
      timedout = 1;
      q->retries++;
      kstats.aoe_retransmits++;
      q->timeout_ns = q->timeout_ns * 2 < maxrto_ns ? q->timeout_ns * 2 : maxrto_ns;
      if (q->timeout_ns < aoedev.rto)
        q->timeout_ns = aoedev.rto;
      xmit(q);
    }
    uint64 d = q->sent_ns + q->timeout_ns;
    if (!next || d < next)
      next = d;
  }
  if (timedout) {
    aoedev.ssthresh = aoedev.cwnd / 2 > 1 ? aoedev.cwnd / 2 : 1;
    aoedev.cwnd = 1;
    aoedev.cwnd_acc = 0;
    kstats.aoe_timeouts++;
  }
  uint64 dead = aoedev.quiet_since + deadtime_ns;
  if (next && dead < next)
    next = dead;
  stats_export();
  return next;
}

// Called on every timer interrupt: run the retransmit scan when due.
void aoe_timer(void) {
  if (!timer_at || now_ns() < timer_at)
    return;
  timer_at = scan();
}

// The next time aoe_timer() must run (0: none), for the timer.
uint64 aoe_deadline(void) { return timer_at; }

// Wait (sleeping) until bio b completes.
void bio_wait(struct bio *b) {
  while (!b->complete)
    sleep_blocked(b);
}

static void probe_done(struct bio *b);

static void probe_fail(const char *why) {
  printf("aoe: %s; swap off\n", why);
  aoedev.state = AOE_DEAD;
  ready_fn(0);
}

// The config query or the identify finished (interrupt or timer context).
static void probe_done(struct bio *b) {
  if (b->data == 0) {  // the config query
    if (b->error || aoedev.state != AOE_PROBING) {
      probe_fail("no target answered the config query");
      return;
    }
    memset(b, 0, sizeof *b);
    b->data = ident;
    b->nsect = 1;
    b->done = probe_done;
    b->remaining = 1;
    struct aoereq *q = reqalloc();
    q->bio = b;
    q->cmd = CMD_ATA;
    q->atacmd = ATA_IDENTIFY;
    q->nsect = 1;
    aoedev.state = AOE_UP;  // unicast from now on
    aoedev.nsectors = 1;
    enqueue(q);
    kick();
    return;
  }
  // Identify: LBA48 capacity in words 100..103 (else LBA28 in 60..61).
  uint64 ns = 0;
  for (int i = 0; i < 8; i++)
    ns |= (uint64)ident[200 + i] << (8 * i);
  if (!ns)
    ns = (uint64)ident[120] | (uint64)ident[121] << 8 | (uint64)ident[122] << 16 |
         (uint64)ident[123] << 24;
  if (b->error || !ns) {
    probe_fail("identify failed");
    return;
  }
  aoedev.nsectors = ns;
  kstats.aoe_capacity_sectors = ns;
  kstats.aoe_bufcnt = aoedev.bufcnt;
  kstats.aoe_scnt = aoedev.scnt;
  kstats.aoe_maxwin = aoedev.maxwin;
  printf("aoe: e%d.%d: %d MiB, bufcnt %d, %d sectors per frame, window cap %d, srtt %d us\n",
         (int)aoedev.shelf, (int)aoedev.slot, (int)(ns >> 11), (int)aoedev.bufcnt,
         (int)aoedev.scnt, (int)aoedev.maxwin, (int)(aoedev.srtt / 1000));
  stats_export();
  ready_fn(1);
}

// Start discovery: a broadcast config query (retransmitted like any frame,
// given up after PROBE_TRIES), then identify for the capacity. Everything
// after this call runs from the NIC and timer interrupts; ready(ok) is
// called once at the end. Returns -1 at once if the NIC is down.
int aoe_start(void (*ready)(int ok)) {
  deadtime_ns = (params.aoe_deadtime_ms ? params.aoe_deadtime_ms : 180000) * 1000000UL;
  minrto_ns = (params.aoe_minrto_us ? params.aoe_minrto_us : 1000) * 1000UL;
  maxrto_ns = 2000000000UL;  // 2 s
  if (!netup)
    return -1;
  ready_fn = ready;
  memset(&aoedev, 0, sizeof aoedev);
  aoedev.srtt = 250000000;   // 250 ms
  aoedev.rttvar = 62500000;  // 62.5 ms
  aoedev.rto = clamp_rto(2 * aoedev.srtt + 8 * aoedev.rttvar);
  aoedev.cwnd = 1;
  aoedev.ssthresh = 64;
  aoedev.maxwin = 1;
  aoedev.scnt = 1;
  aoedev.state = AOE_PROBING;
  memset(&probe_bio, 0, sizeof probe_bio);
  probe_bio.done = probe_done;
  probe_bio.remaining = 1;
  struct aoereq *q = reqalloc();
  q->bio = &probe_bio;
  q->cmd = CMD_CFG;
  enqueue(q);
  kick();
  return 0;
}
