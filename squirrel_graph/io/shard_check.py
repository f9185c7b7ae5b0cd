"""Foreign-shard detection: a file that is not a shard of the store's format is an error, never fake samples.

The rule, applied to every shard before it is decoded (constant cost: it looks at the first 4 KiB at most):

1. The file must be gzip: a 0-byte file, or one that does not start with the gzip magic ``1f 8b``, is a
   :class:`CorruptShardError`. A valid gzip holding nothing (what ``store.set([])`` writes) is a legal empty shard.
2. messagepack: every byte ``0x00-0x7f`` is a whole msgpack int, so ASCII text "decodes" as a stream of small
   ints. The decompressed payload is refused as text when all of these hold:

   a. its first byte (after a UTF-8 BOM) is printable ASCII, TAB, LF, CR, FF or ESC, i.e. the first sample would
      be an int in 9..126. Shards whose first sample is a dict, list, str, bytes, float, None, bool, array or
      another int start with a byte outside that set and pass here, at once;
   b. its first 4 KiB are UTF-8 text: valid UTF-8, no control character but TAB, LF, CR, FF and ESC (ANSI colours);
   c. its first line (leading blanks skipped) is ASCII and ends within those 4 KiB; or it is longer and looks like
      a JSON line (``{"`` or ``[``, with a comma) or prose (at least 5% spaces, 16 distinct characters);
   d. it is at least 16 bytes long, or it is lines of JSON objects or arrays.

   It is refused too when it starts with the signature of a known file type (gzip, i.e. compressed twice, zip,
   PNG, JPEG, numpy .npy, parquet, xz, zstd, PDF, ELF): as msgpack each is an exact run of 3 to 8 bytes.

   So a legitimate shard is refused only if its first samples are ints spelling a printable ASCII line followed by
   a 10 and the rest of its first 4 KiB is text too, or if it begins with one of those exact byte runs. The error
   names the shard and what it looks like (JSON lines, CSV, text, a zip archive...).
3. JSON lines: only text can be JSON, so when a line does not parse the error says what the shard looks like
   (messagepack, binary data, a known file type, CSV, text) instead of only "line 1 is not valid JSON".
"""

from __future__ import annotations

import codecs
import json
import re

import msgpack

from squirrel_graph.errors import CorruptShardError

#: how much of a decompressed shard is looked at (the cost per shard is bounded by this, whatever its size)
SNIFF_BYTES = 4096
#: shorter payloads are text only if they are lines of JSON objects/arrays: a few small ints are legal samples
MIN_TEXT_BYTES = 16
GZIP_MAGIC = b"\x1f\x8b"
_BOM = codecs.BOM_UTF8
#: the only control characters text may hold (ESC: ANSI colours in build logs; FF: page breaks in GNU texts)
_TEXT_CONTROLS = b"\t\n\r\x0c\x1b"
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + _TEXT_CONTROLS + bytes(range(0x80, 0x100))
_TEXT_START = frozenset(range(0x20, 0x7F)) | frozenset(_TEXT_CONTROLS)
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_MAGIC = (  # (offset, signature, what it is); gzip with its method byte (deflate)
    (0, b"\x1f\x8b\x08", "gzip data (compressed twice?)"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"\x93NUMPY", "a numpy .npy file"),
    (0, b"PAR1", "a parquet file"),
    (0, b"\xfd7zXZ\x00", "xz data"),
    (0, b"\x28\xb5\x2f\xfd", "zstd data"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"\x7fELF", "an ELF executable"),
    (0, b"BZh", "bzip2 data"),
    (257, b"ustar", "a tar archive"),
)
#: signatures that make a messagepack payload foreign outright: as msgpack each is an exact run of 3 to 8 bytes
#: (e.g. the ints 80, 75, 3, 4 for zip) that no writer of ours starts a shard with but by a coincidence
_REFUSED = {magic: name for offset, magic, name in _MAGIC if offset == 0 and magic != b"BZh"}
_REFUSED_PREFIXES = tuple(_REFUSED)


def _text(head: bytes, complete: bool) -> str | None:
    """``head`` decoded if it is UTF-8 text: no control character but tab, LF, CR, FF and ESC (``complete``: no
    character may be cut at its end; non-ASCII characters other than C1 controls are all text)."""
    if head.translate(None, _TEXT_BYTES):  # a C0 control character or DEL
        return None
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError:
        return None
    return None if not text.isascii() and _C1_CONTROLS.search(text) else text.removeprefix("\ufeff")


def _first_lines(text: str, n: int = 2) -> list[str]:
    return [line for line in (raw.strip() for raw in text.split("\n")[:-1]) if line][:n]


def text_kind(text: str) -> str:
    """What a text looks like: JSON lines, JSON, CSV/TSV, XML/HTML or plain text (logs, source...)."""
    lines = _first_lines(text)
    first = lines[0] if lines else text.strip()
    if first.startswith(("{", "[")):
        if not lines:  # the first line is longer than what was looked at
            return "JSON lines"
        try:
            json.loads(first)
        except ValueError:
            return "JSON"
        return "JSON lines"
    if first.startswith("<"):
        return "XML/HTML text"
    if len(lines) == 2:  # a header of short fields, as many in the next line (a log's "12:00:01,182" is not one)
        for sep, name in ((",", "CSV text"), ("\t", "TSV text"), (";", "CSV text")):
            n = lines[0].count(sep)
            if n and n == lines[1].count(sep) and max(map(len, lines[0].split(sep))) <= 32:
                return name
    return "text"


def _snippet(text: str) -> str:
    line = next((s for s in (raw.strip() for raw in text.split("\n")) if s), "")
    return repr(line[:60] + ("..." if len(line) > 60 else ""))


def _long_line_is_text(line: str) -> bool:
    """A first line longer than what is looked at is text if it starts a JSON line or reads like prose (spaces)."""
    if line.startswith(('{"', "[")):
        return "," in line
    return line.count(" ") * 20 >= len(line) and len(set(line[:512])) >= 16


def _json_objects(text: str) -> bool:
    """Whether a (short) ``text`` is lines of JSON objects or arrays, each ended by a newline."""
    lines = text.split("\n")
    if len(lines) < 2 or lines[-1].strip() or not any(line.strip() for line in lines):
        return False
    try:
        return all(isinstance(json.loads(line), (dict, list)) for line in lines if line.strip())
    except ValueError:
        return False


def foreign_kind(payload: bytes) -> str | None:
    """For a messagepack reader: what the decompressed ``payload`` is if it is foreign by the rule of this module
    (text, which would decode as a stream of small ints, or a known file type), else None. Looks at 4 KiB at most."""
    if payload.startswith(_REFUSED_PREFIXES):
        return next(name for magic, name in _REFUSED.items() if payload.startswith(magic))
    start = len(_BOM) if payload.startswith(_BOM) else 0
    if len(payload) <= start or payload[start] not in _TEXT_START:
        return None  # the common case: a dict, list, array... sample starts with a byte >= 0x80
    text = _text(payload[start:SNIFF_BYTES], complete=len(payload) <= SNIFF_BYTES)
    if text is None or (len(payload) < MIN_TEXT_BYTES and not _json_objects(text)):
        return None
    line, newline, _ = text.lstrip().partition("\n")
    if not line.isascii():  # the first samples would not all be small ints
        return None
    if not newline and (len(payload) <= SNIFF_BYTES or not _long_line_is_text(line)):
        return None  # no line break after the first visible character
    return f"{text_kind(text)} ({_snippet(text)})"


def describe(data: bytes) -> str | None:
    """What ``data`` (a file's or a decompressed payload's bytes) looks like, if it is text or a known file type."""
    for offset, magic, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    head = data[:SNIFF_BYTES]
    text = _text(head, complete=len(data) <= SNIFF_BYTES) if head else None
    if text is None or not text.strip():
        return None
    return f"{text_kind(text)} ({_snippet(text)})"


def _looks_like_msgpack(payload: bytes) -> bool:
    """Whether the first 4 KiB of ``payload`` decode as msgpack objects (the last one may be cut)."""
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=SNIFF_BYTES)
    unpacker.feed(payload[:SNIFF_BYTES])
    try:
        for _ in unpacker:
            pass
    except Exception:
        return False
    return unpacker.tell() > 0 or len(payload) > SNIFF_BYTES


def describe_not_json(payload: bytes) -> str:
    """What a decompressed payload that is not valid JSON lines looks like, for the error message."""
    found = describe(payload)
    if found is not None:
        return found
    return "messagepack" if _looks_like_msgpack(payload) else "binary data"


def check_gzip_file(raw: bytes, fp: str) -> None:
    """Refuse a 0-byte file or a non-gzip one in place of a shard, naming the shard and what the file looks like."""
    if not raw:
        raise CorruptShardError(
            f"corrupt shard {fp}: the file is empty (0 bytes), not a gzip shard (an empty shard, as "
            "store.set([]) writes it, is a gzip of nothing); was its write interrupted?"
        )
    if raw[:2] != GZIP_MAGIC:
        looks = describe(raw) or f"binary data starting with {raw[:8].hex(' ')}"
        raise CorruptShardError(f"corrupt shard {fp}: not a gzip file: looks like {looks}")


def check_msgpack_payload(payload: bytes, fp: str) -> None:
    """Refuse a decompressed payload that is text (JSON lines, CSV, a log...) or a known file type, before it
    decodes as fake samples."""
    kind = foreign_kind(payload)
    if kind is not None:
        hint = "; is this a JsonlDriver store?" if kind.startswith("JSON lines") else "; a foreign file?"
        raise CorruptShardError(f"corrupt shard {fp}: looks like {kind}, not messagepack{hint}")


def json_error(fp: str, lineno: int, exc: Exception, payload: bytes) -> CorruptShardError:
    """The error for a JSON-lines shard whose line ``lineno`` does not parse, saying what the shard looks like."""
    looks = describe_not_json(payload)
    hint = "; is this a MessagepackDriver store?" if looks == "messagepack" else ""
    if looks.startswith("JSON"):  # JSON after all: the line itself is bad (a cut or edited shard)
        return CorruptShardError(f"corrupt shard {fp}: line {lineno} is not valid JSON ({exc})")
    return CorruptShardError(
        f"corrupt shard {fp}: looks like {looks}, not JSON lines{hint} (line {lineno} is not valid JSON: {exc})"
    )


def describe_failure(payload: bytes) -> str:
    """A suffix for a messagepack decoding error: what the payload looks like, if that is known."""
    found = describe(payload)
    return f"; the data looks like {found}" if found else ""
