#!/usr/bin/env python3
"""Writes 04-big.eml: a deterministic message just over 1 MiB (base64 attachment of
pseudo-random bytes from a fixed LCG seed, plus text lines that start with a dot)."""
import base64, os

here = os.path.dirname(os.path.abspath(__file__))
state = 20251124
raw = bytearray()
while len(raw) < 800 * 1024:
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    raw += state.to_bytes(8, "little")
b64 = base64.b64encode(bytes(raw)).decode()
lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
head = """From: Archive Bot <archive@example.org>
To: alice@example.org
Subject: Monthly archive (large attachment)
Date: Wed, 26 Nov 2025 03:00:00 +0000
Message-ID: <archive-0004@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="big-boundary"

--big-boundary
Content-Type: text/plain; charset=us-ascii

The attachment holds last month's archive.
.this line starts with a dot
..and this one with two

--big-boundary
Content-Type: application/octet-stream; name="archive.bin"
Content-Disposition: attachment; filename="archive.bin"
Content-Transfer-Encoding: base64

"""
with open(os.path.join(here, "04-big.eml"), "w", newline="\n") as f:
    f.write(head + "\n".join(lines) + "\n--big-boundary--\n")
