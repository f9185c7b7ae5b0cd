"""A deliberately naive, eager model of squirrel-core's documented semantics, used as the test oracle."""

from __future__ import annotations


def ref_map(items, f):
    return [f(x) for x in items]


def ref_filter(items, p):
    return [x for x in items if p(x)]


def ref_flatten(items):
    return [y for x in items for y in x]


def ref_batched(items, n, collate=None, drop_last=True):
    out = [items[i : i + n] for i in range(0, len(items), n)]
    if out and drop_last and len(out[-1]) < n:
        out.pop()
    return [collate(b) for b in out] if collate else out


def ref_take(items, n):
    return items if n is None else items[:n]


def ref_zip_index(items, pad=None):
    return [(str(i).zfill(pad) if pad is not None else i, x) for i, x in enumerate(items)]


def ref_loop(items, n):
    return items * n
