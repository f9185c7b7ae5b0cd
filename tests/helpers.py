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


def resume_section(make, k):
    """(the state after ``k`` items, the Resume lines explain() shows for a fresh handle that loaded it)."""
    stream = make()
    it = iter(stream)
    for _ in range(k):
        next(it)
    state = stream.state_dict()
    it.close()
    resumed = make()
    resumed.load_state_dict(state)
    text = str(resumed.explain())
    lines = text[text.index("== Resume") :].split("\n== ")[0].splitlines()
    assert lines[1].strip() == "epoch (not set)"
    return state["position"], [line.strip() for line in lines[2:]]
