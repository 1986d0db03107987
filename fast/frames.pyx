# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of emu/net/frames.py: the AoE frame codec on the data path.

Same functions, same AoEFrame attributes, same exceptions and messages as the
plain-Python reference (which documents the wire format and the rejection
rules); tests/test_net_frames.py checks both against the scapy model byte for
byte. The exceptions and constants are imported from the reference so that
`except FrameError` catches either twin.

Speed: a frame given as `bytes` is read through its internal pointer (no
buffer acquisition); other buffers (bytearray, memoryview) go through the
buffer protocol. `dst`, `src` and `data` are produced lazily on access.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow
from libc.string cimport memcpy, memset

from emu.net.frames import (
    AOE_VERSION,
    FieldError,
    MalformedFrame,
    NotAoE,
    TruncatedFrame,
)

cdef enum:
    ETH_P_AOE = 0x88A2
    ETH_HLEN = 14
    ETH_ZLEN = 60
    AOE_HLEN = 24
    ATA_HLEN = 36
    CFG_HLEN = 32
    MASK_HLEN = 28
    SRR_HLEN = 26
    CONFIG_MAX = 1024
    FLAG_R = 0x8

cdef tuple _FIELDS = ("dst", "src", "ethertype", "ver", "flags", "error", "major", "minor",
                      "cmd", "tag", "aflags", "errfeat", "scnt", "cmdstat", "lba", "bufcnt",
                      "fwver", "aoever", "ccmd", "cslen")


cdef class AoEFrame:
    """A parsed AoE frame (see emu.net.frames.AoEFrame for the contract)."""

    cdef readonly object frame
    cdef readonly int ethertype, ver, flags, error, major, minor, cmd
    cdef readonly unsigned int tag
    cdef readonly int aflags, errfeat, scnt, cmdstat
    cdef readonly unsigned long long lba
    cdef readonly int bufcnt, fwver, aoever, ccmd, cslen
    cdef readonly Py_ssize_t data_off, data_len

    FIELDS = _FIELDS

    @property
    def dst(self):
        """Destination MAC (6 bytes)."""
        return bytes(self.frame[0:6])

    @property
    def src(self):
        """Source MAC (6 bytes)."""
        return bytes(self.frame[6:12])

    @property
    def data(self):
        """The payload as a zero-copy view of the frame."""
        return memoryview(self.frame)[self.data_off:self.data_off + self.data_len]

    @property
    def is_response(self):
        """True if the R flag is set."""
        return bool(self.flags & FLAG_R)

    def as_dict(self):
        """Every field plus `data` (as bytes): what the differential tests compare."""
        d = {k: getattr(self, k) for k in _FIELDS}
        d["data"] = bytes(self.data)
        return d

    def __repr__(self):
        return (f"AoEFrame(cmd={self.cmd} flags={self.flags:#x} error={self.error} "
                f"e{self.major}.{self.minor} tag={self.tag:#010x} data={self.data_len}B)")


cdef AoEFrame _parse(object frame, const unsigned char *p, Py_ssize_t n):
    cdef int ethertype, vc
    cdef AoEFrame f
    if n < ETH_HLEN:
        raise TruncatedFrame(f"frame of {n} bytes is shorter than an Ethernet header (14)")
    ethertype = (p[12] << 8) | p[13]
    if ethertype != ETH_P_AOE:
        raise NotAoE(f"ethertype 0x{ethertype:04x} is not AoE (0x88a2)")
    if n < AOE_HLEN:
        raise TruncatedFrame(f"frame of {n} bytes is shorter than the AoE header (24)")
    f = AoEFrame.__new__(AoEFrame)
    f.frame = frame
    f.ethertype = ethertype
    f.ver = p[14] >> 4
    f.flags = p[14] & 0x0F
    f.error = p[15]
    f.major = (p[16] << 8) | p[17]
    f.minor = p[18]
    f.cmd = p[19]
    f.tag = ((<unsigned int>p[20] << 24) | (<unsigned int>p[21] << 16)
             | (<unsigned int>p[22] << 8) | p[23])
    if f.cmd == 0:
        if n < ATA_HLEN:
            raise TruncatedFrame(f"ATA frame of {n} bytes is shorter than its argument (36)")
        f.aflags = p[24]
        f.errfeat = p[25]
        f.scnt = p[26]
        f.cmdstat = p[27]
        f.lba = (<unsigned long long>p[28] | (<unsigned long long>p[29] << 8)
                 | (<unsigned long long>p[30] << 16) | (<unsigned long long>p[31] << 24)
                 | (<unsigned long long>p[32] << 32) | (<unsigned long long>p[33] << 40))
        f.data_off = ATA_HLEN
        f.data_len = n - ATA_HLEN
    elif f.cmd == 1:
        if n < CFG_HLEN:
            raise TruncatedFrame(f"config frame of {n} bytes is shorter than its argument (32)")
        f.bufcnt = (p[24] << 8) | p[25]
        f.fwver = (p[26] << 8) | p[27]
        f.scnt = p[28]
        vc = p[29]
        f.aoever = vc >> 4
        f.ccmd = vc & 0x0F
        f.cslen = (p[30] << 8) | p[31]
        if f.cslen > CONFIG_MAX:
            raise MalformedFrame(f"config string length {f.cslen} exceeds 1024")
        if f.cslen > n - CFG_HLEN:
            raise TruncatedFrame(
                f"config string of {f.cslen} bytes truncated to {n - CFG_HLEN}")
        f.data_off = CFG_HLEN
        f.data_len = f.cslen
    else:
        if f.cmd == 2:
            if n < MASK_HLEN:
                raise TruncatedFrame(f"mask frame of {n} bytes is shorter than its argument (28)")
            if MASK_HLEN + 8 * p[27] > n:
                raise TruncatedFrame(f"mask list of {p[27]} directives truncated")
        elif f.cmd == 3:
            if n < SRR_HLEN:
                raise TruncatedFrame(
                    f"reserve frame of {n} bytes is shorter than its argument (26)")
            if SRR_HLEN + 6 * p[25] > n:
                raise TruncatedFrame(f"reserve list of {p[25]} MACs truncated")
        f.data_off = AOE_HLEN
        f.data_len = n - AOE_HLEN
    return f


def parse(object frame):
    """Parse one Ethernet frame (no FCS) as AoE; see emu.net.frames.parse.

    Returns an AoEFrame referencing `frame`. Raises TruncatedFrame, NotAoE or
    MalformedFrame (FrameError) with the reference's one-line messages.
    """
    cdef Py_buffer view
    if type(frame) is bytes:
        return _parse(frame, <const unsigned char *>PyBytes_AS_STRING(frame),
                      PyBytes_GET_SIZE(frame))
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    try:
        return _parse(frame, <const unsigned char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


def eth_addrs(object frame):
    """Return (dst, src) of an Ethernet frame. Raises TruncatedFrame if < 14 bytes."""
    if len(frame) < ETH_HLEN:
        raise TruncatedFrame(f"frame of {len(frame)} bytes is shorter than an Ethernet header (14)")
    return bytes(frame[0:6]), bytes(frame[6:12])


# --- building ---------------------------------------------------------------
cdef inline int _chk_macs(object dst, object src) except -1:
    if len(dst) != 6 or len(src) != 6:
        raise FieldError("MAC addresses must be 6 bytes")
    return 0


cdef inline long long _chk(str name, object value, int bits) except -1:
    """Return `value` if 0 <= value < 2**bits, else raise FieldError."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v < 0 or v >= (1LL << bits):
        raise FieldError(f"{name}={value} does not fit in {bits} bits")
    return v


cdef inline void _put_header(unsigned char *p, const unsigned char *dst,
                             const unsigned char *src, long long ver, long long flags,
                             long long error, long long major, long long minor,
                             long long cmd, long long tag) noexcept:
    memcpy(p, dst, 6)
    memcpy(p + 6, src, 6)
    p[12] = 0x88
    p[13] = 0xA2
    p[14] = <unsigned char>((ver << 4) | flags)
    p[15] = <unsigned char>error
    p[16] = <unsigned char>(major >> 8)
    p[17] = <unsigned char>major
    p[18] = <unsigned char>minor
    p[19] = <unsigned char>cmd
    p[20] = <unsigned char>(tag >> 24)
    p[21] = <unsigned char>(tag >> 16)
    p[22] = <unsigned char>(tag >> 8)
    p[23] = <unsigned char>tag


cdef class _Buf:
    """Holds a buffer acquired from any bytes-like object (released on dealloc)."""

    cdef Py_buffer view
    cdef bint held

    def __cinit__(self, object obj):
        PyObject_GetBuffer(obj, &self.view, PyBUF_SIMPLE)
        self.held = True

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


cdef bytes _frame(object dst, object src, long long ver, long long flags, long long error,
                  long long major, long long minor, long long cmd, long long tag,
                  Py_ssize_t arglen, object payload, unsigned char **argp):
    """Allocate header + arglen + len(payload) bytes, write header and payload."""
    cdef _Buf pb
    cdef const unsigned char *pp
    cdef Py_ssize_t plen
    cdef bytes out
    cdef unsigned char *p
    if type(payload) is bytes:
        pp = <const unsigned char *>PyBytes_AS_STRING(payload)
        plen = PyBytes_GET_SIZE(payload)
    else:
        pb = _Buf(payload)
        pp = <const unsigned char *>pb.view.buf
        plen = pb.view.len
    out = PyBytes_FromStringAndSize(NULL, AOE_HLEN + arglen + plen)
    p = <unsigned char *>PyBytes_AS_STRING(out)
    cdef bytes bdst = dst if type(dst) is bytes else bytes(dst)
    cdef bytes bsrc = src if type(src) is bytes else bytes(src)
    _put_header(p, <const unsigned char *>PyBytes_AS_STRING(bdst),
                <const unsigned char *>PyBytes_AS_STRING(bsrc),
                ver, flags, error, major, minor, cmd, tag)
    if plen:
        memcpy(p + AOE_HLEN + arglen, pp, plen)
    argp[0] = p + AOE_HLEN
    return out


def build_ata(dst, src, major, minor, tag, *, flags=0, error=0, aflags=0, errfeat=0,
              scnt=0, cmdstat=0, lba=0, data=b"", ver=AOE_VERSION):
    """Build an AoE ATA frame (cmd 0); see emu.net.frames.build_ata.

    Returns the frame (no FCS, not padded). Raises FieldError if a value does
    not fit its field.
    """
    cdef unsigned char *a
    _chk_macs(dst, src)
    cdef long long v_ver = _chk("ver", ver, 4)
    cdef long long v_flags = _chk("flags", flags, 4)
    cdef long long v_error = _chk("error", error, 8)
    cdef long long v_major = _chk("major", major, 16)
    cdef long long v_minor = _chk("minor", minor, 8)
    cdef long long v_tag = _chk("tag", tag, 32)
    cdef long long v_aflags = _chk("aflags", aflags, 8)
    cdef long long v_errfeat = _chk("errfeat", errfeat, 8)
    cdef long long v_scnt = _chk("scnt", scnt, 8)
    cdef long long v_cmdstat = _chk("cmdstat", cmdstat, 8)
    cdef long long v_lba = _chk("lba", lba, 48)
    out = _frame(dst, src, v_ver, v_flags, v_error, v_major, v_minor, 0, v_tag, 12, data, &a)
    a[0] = <unsigned char>v_aflags
    a[1] = <unsigned char>v_errfeat
    a[2] = <unsigned char>v_scnt
    a[3] = <unsigned char>v_cmdstat
    a[4] = <unsigned char>v_lba
    a[5] = <unsigned char>(v_lba >> 8)
    a[6] = <unsigned char>(v_lba >> 16)
    a[7] = <unsigned char>(v_lba >> 24)
    a[8] = <unsigned char>(v_lba >> 32)
    a[9] = <unsigned char>(v_lba >> 40)
    a[10] = 0
    a[11] = 0
    return out


def build_config(dst, src, major, minor, tag, *, flags=0, error=0, bufcnt=0, fwver=0,
                 scnt=0, aoever=AOE_VERSION, ccmd=0, config=b"", ver=AOE_VERSION):
    """Build an AoE config/query frame (cmd 1); see emu.net.frames.build_config.

    Returns the frame (no FCS, not padded). Raises FieldError if a value does
    not fit or the config string exceeds 1024 bytes.
    """
    cdef unsigned char *a
    _chk_macs(dst, src)
    cdef long long v_ver = _chk("ver", ver, 4)
    cdef long long v_flags = _chk("flags", flags, 4)
    cdef long long v_error = _chk("error", error, 8)
    cdef long long v_major = _chk("major", major, 16)
    cdef long long v_minor = _chk("minor", minor, 8)
    cdef long long v_tag = _chk("tag", tag, 32)
    cdef long long v_bufcnt = _chk("bufcnt", bufcnt, 16)
    cdef long long v_fwver = _chk("fwver", fwver, 16)
    cdef long long v_scnt = _chk("scnt", scnt, 8)
    cdef long long v_aoever = _chk("aoever", aoever, 4)
    cdef long long v_ccmd = _chk("ccmd", ccmd, 4)
    cdef Py_ssize_t cslen = len(config)
    if cslen > CONFIG_MAX:
        raise FieldError(f"config string of {cslen} bytes exceeds 1024")
    out = _frame(dst, src, v_ver, v_flags, v_error, v_major, v_minor, 1, v_tag, 8, config, &a)
    a[0] = <unsigned char>(v_bufcnt >> 8)
    a[1] = <unsigned char>v_bufcnt
    a[2] = <unsigned char>(v_fwver >> 8)
    a[3] = <unsigned char>v_fwver
    a[4] = <unsigned char>v_scnt
    a[5] = <unsigned char>((v_aoever << 4) | v_ccmd)
    a[6] = <unsigned char>(cslen >> 8)
    a[7] = <unsigned char>cslen
    return out


def build_aoe(dst, src, major, minor, cmd, tag, *, flags=0, error=0, payload=b"",
              ver=AOE_VERSION):
    """Build an AoE frame with any command and a raw argument `payload`.

    Returns the frame (no FCS). Raises FieldError if a value does not fit.
    """
    cdef unsigned char *a
    _chk_macs(dst, src)
    cdef long long v_ver = _chk("ver", ver, 4)
    cdef long long v_flags = _chk("flags", flags, 4)
    cdef long long v_error = _chk("error", error, 8)
    cdef long long v_major = _chk("major", major, 16)
    cdef long long v_minor = _chk("minor", minor, 8)
    cdef long long v_cmd = _chk("cmd", cmd, 8)
    cdef long long v_tag = _chk("tag", tag, 32)
    return _frame(dst, src, v_ver, v_flags, v_error, v_major, v_minor, v_cmd, v_tag, 0,
                  payload, &a)


def pad(frame):
    """Return `frame` zero-padded to the 60-byte Ethernet minimum (802.3)."""
    cdef Py_ssize_t n = len(frame)
    cdef bytes out
    if n >= ETH_ZLEN:
        return frame
    out = PyBytes_FromStringAndSize(NULL, ETH_ZLEN)
    cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(out)
    cdef _Buf b = _Buf(frame)
    memcpy(p, b.view.buf, n)
    memset(p + n, 0, ETH_ZLEN - n)
    return out
