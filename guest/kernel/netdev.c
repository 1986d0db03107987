// The NIC driver (docs/nic.md): one TX ring, one RX ring whose buffers come
// from kmalloc and are given back and refilled after every frame (Linux's
// skbs), interrupts through the PLIC. TX is synchronous on this device: the
// doorbell store sends the frame before it retires, so a descriptor is done
// as soon as the tail is written.
#include "types.h"
#include "riscv.h"
#include "memlayout.h"
#include "nic.h"
#include "net.h"
#include "kstats.h"
#include "mm.h"
#include "defs.h"

#define NRX 128
#define NTX 64

static struct nic_desc *rx, *tx;   // both rings in one kernel page
static uint8 *rxbuf[NRX];
static uint32 rxnext;              // next descriptor the device fills
static uint32 rxtail;              // next descriptor we post
static uint32 txtail;
uint8 netmac[ETH_ALEN];
uint32 netmtu;
uint32 netbufsz;                   // RX buffer size asked of kmalloc
int netup;

static inline uint32 r(uint32 off) { return *(volatile uint32 *)(NIC_BASE + off); }
static inline void w(uint32 off, uint32 v) { *(volatile uint32 *)(NIC_BASE + off) = v; }
#define PLIC(off) (*(volatile uint32 *)(PLIC_BASE + (off)))

// Post empty buffers from rxtail up to one before rxnext. A failed kmalloc
// leaves the slot empty (counted); the next interrupt or transmit retries.
// While a network swap device is up the buffers may come from the reserve
// (charged to aoe_rx): the acknowledgements that free memory must get in.
static void rxrefill(void) {
  uint32 t0 = rxtail;
  int gfp = swap_active() ? GFP_MEMALLOC | GFP_RES(RESERVE_AOE_RX) : 0;
  while ((rxtail + 1) % NRX != rxnext) {
    uint8 *b = kmalloc_raw_flags(netbufsz, gfp);
    if (!b) {
      kstats.net_refill_fails++;
      break;
    }
    rxbuf[rxtail] = b;
    rx[rxtail] = (struct nic_desc){(uint64)b, (uint16)netbufsz, 0, 0};
    rxtail = (rxtail + 1) % NRX;
  }
  if (rxtail != t0)
    w(NIC_REG_RX_TAIL, rxtail);
}

// Bring the NIC up: reset, rings, RX buffers, interrupts. Returns 0, or -1
// if there is no NIC or no memory.
int netinit(void) {
  if (r(NIC_REG_ID) != NIC_ID_MAGIC)
    return -1;
  w(NIC_REG_CTRL, NIC_CTRL_RESET);
  uint8 *page = palloc(FRAME_KERNEL);
  if (!page)
    return -1;
  rx = (struct nic_desc *)page;
  tx = (struct nic_desc *)(page + NRX * NIC_DESC_SIZE);
  uint32 lo = r(NIC_REG_MAC_LO), hi = r(NIC_REG_MAC_HI);
  for (int i = 0; i < 4; i++)
    netmac[i] = lo >> (8 * i);
  netmac[4] = hi;
  netmac[5] = hi >> 8;
  netmtu = r(NIC_REG_MTU);
  netbufsz = netmtu + ETH_HLEN < 2048 ? netmtu + ETH_HLEN : 2048;
  w(NIC_REG_TX_BASE_LO, (uint64)tx);
  w(NIC_REG_TX_BASE_HI, (uint64)tx >> 32);
  w(NIC_REG_TX_SIZE, NTX);
  w(NIC_REG_RX_BASE_LO, (uint64)rx);
  w(NIC_REG_RX_BASE_HI, (uint64)rx >> 32);
  w(NIC_REG_RX_SIZE, NRX);
  rxnext = rxtail = txtail = 0;
  w(NIC_REG_INT_MASK, NIC_INT_RX | NIC_INT_ERROR | NIC_INT_RX_NOBUF);
  w(NIC_REG_CTRL, NIC_CTRL_ENABLE);
  rxrefill();
  PLIC(PLIC_PRIORITY + 4 * IRQ_NIC) = 1;
  PLIC(PLIC_SENABLE) |= 1U << IRQ_NIC;
  PLIC(PLIC_STHRESHOLD) = 0;
  csr_set(sie, SIE_SEIE);
  netup = 1;
  printf("net: NIC %x:%x:%x:%x:%x:%x mtu %d, rx ring %d x %d-byte kmalloc buffers\n",
         netmac[0], netmac[1], netmac[2], netmac[3], netmac[4], netmac[5], (int)netmtu, NRX,
         (int)netbufsz);
  return 0;
}

// Send one frame made of `n` pieces (the first starts with the Ethernet
// header). Returns 0, or -1 if the NIC is down, the frame is malformed or
// the ring is full (counted; the caller's retransmit covers it).
int net_tx(const struct iov *v, int n) {
  uint32 len = 0;
  for (int i = 0; i < n; i++)
    len += v[i].len;
  if (!netup || n < 1 || len < ETH_HLEN || len > ETH_HLEN + netmtu)
    return -1;
  uint32 head = r(NIC_REG_TX_HEAD);
  if ((head + NTX - txtail - 1) % NTX < (uint32)n) {
    kstats.net_tx_full++;
    return -1;
  }
  for (int i = 0; i < n; i++) {
    tx[txtail] = (struct nic_desc){(uint64)v[i].base, (uint16)v[i].len,
                                   (uint16)(i + 1 < n ? NIC_DESC_F_MORE : 0), 0};
    txtail = (txtail + 1) % NTX;
  }
  w(NIC_REG_TX_TAIL, txtail);  // the frame is on the wire when this returns
  kstats.net_tx_frames++;
  kstats.net_tx_bytes += len;
  return 0;
}

// Take every completed frame off the RX ring, hand it to the net core, give
// its buffers back to kmalloc, then refill the ring.
static void rxdrain(void) {
  while (rx[rxnext].status & NIC_DESC_S_DONE) {
    struct nbuf nb;
    nb.nfrag = 0;
    nb.len = 0;
    nb.pfmemalloc = 0;
    int more, bad = 0;
    do {
      struct nic_desc *d = &rx[rxnext];
      more = d->status & NIC_DESC_S_MORE;
      if (nb.nfrag < NB_MAXFRAG) {
        nb.frag[nb.nfrag] = rxbuf[rxnext];
        nb.pfmemalloc |= kmalloc_pfmemalloc(rxbuf[rxnext]);
        nb.flen[nb.nfrag++] = d->len;
        nb.len += d->len;
      } else {
        bad = 1;
        kfree(rxbuf[rxnext]);
      }
      rxbuf[rxnext] = 0;
      d->status = 0;
      rxnext = (rxnext + 1) % NRX;
    } while (more && (rx[rxnext].status & NIC_DESC_S_DONE));
    if (bad)
      kstats.net_drop_toolong++;
    else
      net_rx(&nb);
    for (int i = 0; i < nb.nfrag; i++)
      kfree(nb.frag[i]);
  }
  rxrefill();
}

// The NIC's interrupt (called with the PLIC claim done by the caller).
void nic_intr(void) {
  uint32 st = r(NIC_REG_INT_STATUS);
  w(NIC_REG_INT_ACK, st);
  kstats.net_irqs++;
  if (st & NIC_INT_RX_NOBUF)
    kstats.net_rx_overruns++;
  if (st & NIC_INT_ERROR) {
    kstats.net_nic_errors++;
    printf("net: NIC error %d at index %d, NIC down\n", (int)r(NIC_REG_ERROR),
           (int)r(NIC_REG_ERR_INDEX));
    netup = 0;
    return;
  }
  rxdrain();
}

// External interrupt from the PLIC: claim, dispatch, complete.
void devintr(void) {
  uint32 irq = PLIC(PLIC_SCLAIM);
  if (irq == IRQ_NIC)
    nic_intr();
  else if (irq)
    printf("devintr: unexpected irq %d\n", (int)irq);
  if (irq)
    PLIC(PLIC_SCLAIM) = irq;
}
