// The emu NIC: register map and descriptor layout for the guest driver.
// Mirrors emu/devices/nic.py (the device) and docs/nic.md (the data sheet);
// tests/test_nic_header.py checks every NIC_* constant here against nic.py
// and compiles the layout asserts below. Include "types.h" first (xv6 style).
// The device tree gives its base and PLIC source (compatible "emu,enic").
#pragma once

// Identity.
#define NIC_ID_MAGIC        0x43494e65  // "eNIC" as a little-endian u32
#define NIC_VERSION         0x00010000  // major 1, minor 0

// Registers: byte offsets from the device's base, all 32 bits wide (use lw/sw).
#define NIC_REG_ID          0x000  // RO  NIC_ID_MAGIC
#define NIC_REG_VERSION     0x004  // RO  NIC_VERSION
#define NIC_REG_MAC_LO      0x008  // RW  MAC bytes 0..3 (byte 0 in bits 7:0)
#define NIC_REG_MAC_HI      0x00c  // RW  MAC bytes 4..5 in bits 15:0
#define NIC_REG_MTU         0x010  // RW  MTU; writes clamp to [MTU_MIN, MTU_MAX]
#define NIC_REG_CTRL        0x014  // RW  NIC_CTRL_*
#define NIC_REG_STATUS      0x018  // RO  NIC_STATUS_*
#define NIC_REG_ERROR       0x01c  // RO  latched NIC_ERR_* code
#define NIC_REG_INT_STATUS  0x020  // RO  pending NIC_INT_* causes
#define NIC_REG_INT_MASK    0x024  // RW  causes that drive the interrupt line
#define NIC_REG_INT_ACK     0x028  // WO  write 1s to clear causes
#define NIC_REG_MTU_MAX     0x02c  // RO  NIC_MTU_MAX
#define NIC_REG_RING_MAX    0x030  // RO  NIC_RING_MAX
#define NIC_REG_NSTATS      0x034  // RO  number of counters at NIC_REG_STATS
#define NIC_REG_ERR_INDEX   0x038  // RO  descriptor index (tail errors: tail) or NO_INDEX
#define NIC_REG_TX_BASE_LO  0x040  // RW  TX ring physical address bits 31:0
#define NIC_REG_TX_BASE_HI  0x044  // RW  TX ring physical address bits 63:32
#define NIC_REG_TX_SIZE     0x048  // RW  TX ring descriptors (power of two)
#define NIC_REG_TX_HEAD     0x04c  // RO  next TX descriptor the device consumes
#define NIC_REG_TX_TAIL     0x050  // RW  doorbell: one past the last posted
#define NIC_REG_RX_BASE_LO  0x060  // RW  RX ring, as for TX
#define NIC_REG_RX_BASE_HI  0x064
#define NIC_REG_RX_SIZE     0x068
#define NIC_REG_RX_HEAD     0x06c  // RO  next RX descriptor the device fills
#define NIC_REG_RX_TAIL     0x070  // RW  one past the last empty buffer posted
#define NIC_REG_STATS       0x100  // RO  counter i at NIC_REG_STATS + 4*i

// NIC_REG_CTRL bits.
#define NIC_CTRL_ENABLE     0x1  // 0->1 latches rings (heads to 0) and starts
#define NIC_CTRL_RESET      0x2  // write 1: back to power-on state; clears errors
#define NIC_CTRL_PROMISC    0x4  // accept frames for any MAC

// NIC_REG_STATUS bits.
#define NIC_STATUS_ENABLED  0x1  // running
#define NIC_STATUS_ERROR    0x2  // halted: read NIC_REG_ERROR, then reset
#define NIC_STATUS_LINK     0x4  // attached to the segment

// Interrupt causes (NIC_REG_INT_STATUS / _MASK / _ACK).
#define NIC_INT_RX          0x1  // frame(s) written to the RX ring
#define NIC_INT_TX          0x2  // TX descriptors completed
#define NIC_INT_ERROR       0x4  // the device entered the error state
#define NIC_INT_RX_NOBUF    0x8  // a frame was dropped: no RX buffers

// Descriptor: 16 bytes, little-endian, NIC_RING_ALIGN-aligned ring.
// TX: driver sets addr/len/flags, status = 0; device sets status DONE.
// RX: driver sets addr, len = buffer capacity, flags = 0, status = 0;
//     device sets len = bytes stored and status DONE (| MORE if the frame
//     continues in the next descriptor).
#define NIC_DESC_ADDR       0
#define NIC_DESC_LEN        8
#define NIC_DESC_FLAGS      10
#define NIC_DESC_STATUS     12
#define NIC_DESC_SIZE       16
#define NIC_DESC_F_MORE     0x1  // TX flag: frame continues in the next descriptor
#define NIC_DESC_S_DONE     0x1  // status: the device is done with it
#define NIC_DESC_S_MORE     0x2  // RX status: frame continues in the next descriptor

struct nic_desc {
  uint64 addr;    // buffer physical address
  uint16 len;     // TX: bytes to send; RX: capacity in, bytes stored out
  uint16 flags;   // NIC_DESC_F_*; other bits must be 0
  uint32 status;  // NIC_DESC_S_*, written by the device
};
_Static_assert(sizeof(struct nic_desc) == NIC_DESC_SIZE, "nic_desc size");
_Static_assert(__builtin_offsetof(struct nic_desc, addr) == NIC_DESC_ADDR, "addr");
_Static_assert(__builtin_offsetof(struct nic_desc, len) == NIC_DESC_LEN, "len");
_Static_assert(__builtin_offsetof(struct nic_desc, flags) == NIC_DESC_FLAGS, "flags");
_Static_assert(__builtin_offsetof(struct nic_desc, status) == NIC_DESC_STATUS, "status");

// Limits.
#define NIC_ETH_HLEN        14    // header; the MTU counts the bytes after it
#define NIC_ETH_ZLEN        60    // shorter TX frames are zero-padded to this
#define NIC_MTU_MIN         68
#define NIC_MTU_MAX         9000
#define NIC_MTU_DEFAULT     9000
#define NIC_RING_MIN        2     // a ring of N carries at most N-1 descriptors
#define NIC_RING_MAX        4096
#define NIC_RING_ALIGN      16
#define NIC_NO_INDEX        0xffffffff

// Error codes (NIC_REG_ERROR). Any of them halts the device until reset.
#define NIC_ERR_NONE            0
#define NIC_ERR_TX_RING_BASE    1   // TX ring unaligned or not inside RAM
#define NIC_ERR_TX_RING_SIZE    2   // TX size not a power of two in [RING_MIN, RING_MAX]
#define NIC_ERR_TX_TAIL         3   // TX tail >= size
#define NIC_ERR_TX_DESC_ADDR    4   // TX buffer not inside RAM
#define NIC_ERR_TX_DESC_LEN     5   // TX descriptor len 0
#define NIC_ERR_TX_DESC_FLAGS   6   // TX flags other than F_MORE
#define NIC_ERR_TX_FRAME_LEN    7   // TX frame < ETH_HLEN or > ETH_HLEN + MTU
#define NIC_ERR_TX_CHAIN        8   // descriptor before tail has F_MORE
#define NIC_ERR_RX_RING_BASE    9
#define NIC_ERR_RX_RING_SIZE    10
#define NIC_ERR_RX_TAIL         11  // RX tail >= size or moved back over fetched ones
#define NIC_ERR_RX_DESC_ADDR    12  // RX buffer not inside RAM
#define NIC_ERR_RX_DESC_LEN     13  // RX capacity 0
#define NIC_ERR_RX_DESC_FLAGS   14  // RX flags not 0
#define NIC_ERR_CONFIG_BUSY     15  // ring base/size written while enabled
#define NIC_ERR_DMA             16  // DMA failed despite validation (device bug)

// Counters: index i is read at NIC_REG_STATS + 4*i (low 32 bits, wrapping).
#define NIC_STAT_TX_FRAMES              0
#define NIC_STAT_TX_BYTES               1
#define NIC_STAT_TX_DESCS               2
#define NIC_STAT_TX_NO_LINK             3
#define NIC_STAT_RX_FRAMES              4
#define NIC_STAT_RX_BYTES               5
#define NIC_STAT_RX_DESCS               6
#define NIC_STAT_RX_CRC_ERRORS          7
#define NIC_STAT_RX_NO_BUFFER           8
#define NIC_STAT_RX_DISABLED            9
#define NIC_STAT_RX_FILTERED            10
#define NIC_STAT_RX_TOO_LONG            11
#define NIC_STAT_RX_RUNT                12
#define NIC_STAT_IRQS                   13
#define NIC_STAT_RESETS                 14
#define NIC_STAT_BAD_MMIO               15
#define NIC_STAT_ERRORS                 16
#define NIC_STAT_ERROR_TX_RING_BASE     17
#define NIC_STAT_ERROR_TX_RING_SIZE     18
#define NIC_STAT_ERROR_TX_TAIL          19
#define NIC_STAT_ERROR_TX_DESC_ADDR     20
#define NIC_STAT_ERROR_TX_DESC_LEN      21
#define NIC_STAT_ERROR_TX_DESC_FLAGS    22
#define NIC_STAT_ERROR_TX_FRAME_LEN     23
#define NIC_STAT_ERROR_TX_CHAIN         24
#define NIC_STAT_ERROR_RX_RING_BASE     25
#define NIC_STAT_ERROR_RX_RING_SIZE     26
#define NIC_STAT_ERROR_RX_TAIL          27
#define NIC_STAT_ERROR_RX_DESC_ADDR     28
#define NIC_STAT_ERROR_RX_DESC_LEN      29
#define NIC_STAT_ERROR_RX_DESC_FLAGS    30
#define NIC_STAT_ERROR_CONFIG_BUSY      31
#define NIC_STAT_ERROR_DMA              32
#define NIC_NSTATS                      33
