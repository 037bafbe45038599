"""A small staff guide for the guide page's tests: a Markdown file and its image folder, written into a
temporary directory (tests never write tracked files), with real PNG and SVG images."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

GUIDE = """\
# Prisma Glow for the firm's staff

How to build, test and release an agent.

## Building an agent

Open **Agents** and choose *New agent*. See [releasing](#releasing-it) when it is ready.

![The dashboard after signing in](guide/01-dashboard.png)

### The wizard's steps

| Step | What you give |
|------|---------------|
| Basics | A name and a description |
| Persona | The system prompt |

```python
print("<b>not bold</b>")
```

## Testing it

![](guide/02-console.svg)

## Releasing it

A release is approved by a second person.

## Building an agent

A second heading with the same text gets its own anchor.
"""


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (91, 63, 214)) -> bytes:
    """A valid PNG of one colour (what a browser decodes: naturalWidth is ``width``)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" viewBox="0 0 40 20">'
    '<rect width="40" height="20" fill="#5b3fd6"/></svg>'
)


def write_guide(directory: Path, text: str = GUIDE) -> Path:
    """``directory/guide.md`` with ``text`` and ``directory/guide/`` holding 01-dashboard.png and
    02-console.svg; returns the guide's path (for ``PRISMA_GLOW_GUIDE_PATH``)."""
    path = directory / "guide.md"
    path.write_text(text, encoding="utf-8")
    images = directory / "guide"
    images.mkdir(exist_ok=True)
    (images / "01-dashboard.png").write_bytes(png(320, 200))
    (images / "02-console.svg").write_text(SVG, encoding="utf-8")
    return path
