"""Forging damaged inputs in tests: a CRC-32C (Castagnoli, reflected) to
make a checksum right again after an edit, so the damage reaches the fields
behind it.  Tests only: the driver asks the binaries (scripts/pclib/ask.py)
and computes no checksum."""


def _table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        tab.append(c)
    return tab


_TAB = _table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in bytes(data):
        crc = _TAB[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
