"""Module-level functions for tests (module level so that chains using them pickle)."""

from __future__ import annotations

import time


def add_one(x):
    return x + 1


def times_two(x):
    return x * 2


def square(x):
    return x * x


def is_odd(x):
    return x % 2 == 1


def not_div3(x):
    return x % 3 != 0


def to_pair(x):
    return [x, -x]


def add(x, offset=0):
    return x + offset


def fail_on_3(x):
    if x == 3:
        raise ValueError("item 3 is bad")
    return x


def sleepy(x, delay=0.002):
    time.sleep(delay)
    return x


def total(batch):
    return sum(batch)
