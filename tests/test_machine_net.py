"""The whole frame path with a CPU in the loop: a C guest programs the NIC's
rings, sends an AoE config query, takes the RX interrupt through the PLIC
and checks the embedded target's answer; the link impairs the guest port."""

from __future__ import annotations

import pytest

from emu.devices import plic
from emu.machine import board
from emu.machine.config import MachineConfig
from emu.machine.machine import Machine
from emu.net.network import NetConfig
from tests.conftest import IMPLS, compile_c

# Where the board puts the NIC and the PLIC (the kernel reads them from the
# device tree; this bare guest is told them here).
BOARD = f"""
#define NIC_BASE {board.slot("nic").base:#x}UL
#define IRQ_NIC {board.slot("nic").irq}
#define PLIC_BASE {board.slot("plic").base:#x}UL
#define PLIC_SENABLE {plic.PLIC_SENABLE:#x}UL
#define PLIC_SCLAIM {plic.PLIC_SCLAIM:#x}UL
"""

GUEST = r"""
#include "types.h"
#include "nic.h"
/*BOARD*/

#define R(off) (*(volatile uint32 *)(NIC_BASE + (off)))
#define PLIC(off) (*(volatile uint32 *)(PLIC_BASE + (off)))
#define NRX 8
#define NTX 4

static struct nic_desc rx[NRX] __attribute__((aligned(16)));
static struct nic_desc tx[NTX] __attribute__((aligned(16)));
static uint8 rxbuf[NRX][9216];
static uint8 txbuf[64];
static volatile int rx_irqs, got, timer_fired;
static uint8 reply[64];
uint64 stack[512];

static long sbi(long ext, long fid, long arg0, long arg1) {
  register long a0 asm("a0") = arg0, a1 asm("a1") = arg1;
  register long a6 asm("a6") = fid, a7 asm("a7") = ext;
  asm volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a6), "r"(a7) : "memory");
  return a0;
}

static void shutdown(uint32 code) {
  register long a0 asm("a0") = 0, a1 asm("a1") = 0xF0000000u | code;
  register long a6 asm("a6") = 0, a7 asm("a7") = 0x53525354;
  asm volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a6), "r"(a7));
  for (;;) ;
}

__attribute__((interrupt("supervisor"))) void handler(void) {
  uint64 cause;
  asm volatile("csrr %0, scause" : "=r"(cause));
  if (cause == ((1UL << 63) | 5)) {        /* the retry timer */
    sbi(0x54494D45, 0, -1, 0);
    timer_fired = 1;
    return;
  }
  if (cause != ((1UL << 63) | 9)) shutdown(90);
  uint32 irq = PLIC(PLIC_SCLAIM);
  if (irq != IRQ_NIC) shutdown(91);
  uint32 st = R(NIC_REG_INT_STATUS);
  R(NIC_REG_INT_ACK) = st;
  for (int i = 0; i < NRX; i++) {
    if ((rx[i].status & NIC_DESC_S_DONE) && !got) {
      for (int k = 0; k < 64; k++) reply[k] = rxbuf[i][k];
      got = rx[i].len;
    }
  }
  rx_irqs++;
  PLIC(PLIC_SCLAIM) = irq;
}

void main(void) {
  if (R(NIC_REG_ID) != NIC_ID_MAGIC) shutdown(80);
  for (int i = 0; i < NRX; i++) { rx[i].addr = (uint64)rxbuf[i]; rx[i].len = 9216; }
  R(NIC_REG_TX_BASE_LO) = (uint64)tx; R(NIC_REG_TX_BASE_HI) = (uint64)tx >> 32;
  R(NIC_REG_TX_SIZE) = NTX;
  R(NIC_REG_RX_BASE_LO) = (uint64)rx; R(NIC_REG_RX_BASE_HI) = (uint64)rx >> 32;
  R(NIC_REG_RX_SIZE) = NRX;
  R(NIC_REG_INT_MASK) = NIC_INT_RX;
  R(NIC_REG_CTRL) = NIC_CTRL_ENABLE;
  R(NIC_REG_RX_TAIL) = NRX - 1;
  PLIC(4 * IRQ_NIC) = 1;
  PLIC(PLIC_SENABLE + 4 * (IRQ_NIC / 32)) = 1u << (IRQ_NIC % 32);
  asm volatile("csrw stvec, %0" :: "r"(handler));
  asm volatile("csrs sie, %0" :: "r"((1UL << 9) | (1UL << 5)));
  asm volatile("csrs sstatus, 2");
  uint32 lo = R(NIC_REG_MAC_LO), hi = R(NIC_REG_MAC_HI);
  uint8 f[] = {0xff,0xff,0xff,0xff,0xff,0xff, lo, lo >> 8, lo >> 16, lo >> 24, hi, hi >> 8,
               0x88, 0xa2, 0x10, 0, 0xff, 0xff, 0xff, 1, 0x12, 0x34, 0x56, 0x78};
  for (int k = 0; k < 64; k++) txbuf[k] = k < (int)sizeof f ? f[k] : 0;
  int tries = 0;
  while (!got && tries < 50) {           /* the link may lose frames: retry */
    tx[tries % NTX].addr = (uint64)txbuf; tx[tries % NTX].len = 60;
    tx[tries % NTX].flags = 0; tx[tries % NTX].status = 0;
    tries++;
    R(NIC_REG_TX_TAIL) = tries % NTX;
    uint64 t0;
    asm volatile("rdtime %0" : "=r"(t0));
    timer_fired = 0;
    sbi(0x54494D45, 0, t0 + 20000, 0);     /* give up on this try after 2 ms (10 MHz) */
    while (!got && !timer_fired)
      asm volatile("wfi");
  }
  if (!got) shutdown(81);
  /* reply: ethertype AoE, response flag, error 0, shelf 0 slot 0, cmd 1, our tag */
  if (reply[12] != 0x88 || reply[13] != 0xa2) shutdown(82);
  if (reply[14] != 0x18 || reply[15] != 0) shutdown(83);
  if (reply[16] != 0 || reply[17] != 0 || reply[18] != 0 || reply[19] != 1) shutdown(84);
  if (reply[20] != 0x12 || reply[23] != 0x78) shutdown(85);
  shutdown(tries > 1 ? 100 + (tries > 99 ? 99 : tries) : 0);
}

__attribute__((naked, section(".text.entry"))) void _start(void) {
  asm volatile("la sp, stack + 4096\n j main" ::: "memory");
}
"""

SOURCE = GUEST.replace("/*BOARD*/", BOARD)   # the guest as compiled (test_debug_session too)


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    return compile_c(tmp_path_factory.mktemp("netguest"), SOURCE, "netguest")


@pytest.mark.parametrize("mmu", IMPLS)
def test_config_query_round_trip_through_the_machine(guest, mmu):
    m = Machine(MachineConfig(kernel=guest, mmu=mmu, max_insns=50_000_000))
    assert m.run() == 0, (m.exit_status, m.stop_reason)
    nic = m.nic.stats()
    assert nic["tx_frames"] == 1 and nic["rx_frames"] == 1 and nic["irqs"] >= 1
    assert m.stats.interrupts.get(9) == 1
    target = m.network.stats()["targets"]["e0.0"]
    assert target["requests"] >= 1 if "requests" in target else True


def test_lossy_link_needs_retries_and_is_reproducible(guest):
    def run(seed: int) -> tuple[int | None, dict]:
        m = Machine(MachineConfig(kernel=guest, max_insns=200_000_000, seed=seed,
                                  net=NetConfig(net="loss 60%", seed=seed)))
        m.run()
        return m.exit_status, m.nic.stats()
    outcomes = [run(s) for s in range(6)]
    statuses = [s for s, _ in outcomes]
    assert all(s == 0 or 101 < s < 200 for s in statuses), statuses
    assert any(s and s > 100 for s in statuses), "60% loss never forced a retry"
    assert run(3) == outcomes[3]
