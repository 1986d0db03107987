// Network, AoE and block-layer structures: received frames (a chain of
// RX buffers, page fragments: Linux's skb with fragments), block I/O requests,
// and the AoE initiator's per-frame request state.
#pragma once
#include "types.h"

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETHERTYPE_AOE 0x88A2

// A received frame as the NIC stored it: one or more RX buffers (S_MORE
// runs), each a page fragment (pfrag.c). Valid only during net_rx(); the
// driver frees the buffers afterwards.
#define NB_MAXFRAG 8

// The RX ring (netdev.c): NRX slots, each holding a buffer of at most 2 KiB
// (two page fragments a page). The aoe_rx reserve covers what receiving
// can hold at once - every slot's buffer plus a frame's worth being
// replaced, and the fragment cache's page (after Zijlstra: the RX reserve is
// sized from the ring).
#define NRX 64
#define RX_RESERVE_PAGES ((NRX + NB_MAXFRAG + 1) / 2 + 1)
struct nbuf {
  int nfrag;
  uint8 *frag[NB_MAXFRAG];
  uint32 flen[NB_MAXFRAG];
  uint32 len;  // total bytes
  int pfmemalloc;  // some buffer came from the memory reserve: swap traffic only
};

// A piece of a frame to send (gather list for net_tx).
struct iov {
  const void *base;
  uint32 len;
};

// A block I/O request: `nsect` 512-byte sectors at `sector`, to or from
// `data` (kernel address). Asynchronous: submit_bio() returns at once and
// done(b) runs when every frame of it has completed (from the NIC
// interrupt or the AoE timer thread; it must not sleep). error is 0 or -1.
#define BIO_MAXPAGES 16
struct bio {
  uint64 sector;
  uint32 nsect;
  int write;
  uint8 *data;          // one contiguous buffer, or 0 and:
  int npages;           // page-sized buffers, sector 8i.. in pages[i]
  uint8 *pages[BIO_MAXPAGES];
  int error;
  int inuse;
  int remaining;        // frames not yet completed (AoE)
  int complete;         // set just before done() runs
  uint64 last_tx_ns;    // last (re)transmission of any of its frames
  void (*done)(struct bio *b);
  void *priv;
};

// AoE device state (the discovered target).
struct aoedev {
  int state;                 // AOE_*
  uint8 mac[ETH_ALEN];
  uint16 shelf;
  uint8 slot;
  uint16 bufcnt;
  uint32 scnt;               // sectors per frame we use
  uint64 nsectors;           // capacity from identify
  uint64 srtt, rttvar, rto;  // ns
  int rtt_samples;
  uint32 cwnd, ssthresh, cwnd_acc, maxwin;
  uint32 inflight;
  uint64 quiet_since;        // last reply, or when the device last went busy
};

#define AOE_DOWN    0  // no target yet
#define AOE_PROBING 1  // config query / identify in progress
#define AOE_UP      2
#define AOE_DEAD    3  // silent past the dead-time: every I/O fails
