"""Module-level functions for numba tests (DataLoader workers import them)."""


def double_plus(x):
    return x * 2 + 1


def minus3(x):
    return x - 3


def not_div3(x):
    return x % 3 != 0


def scale(a):
    return a * 2 + 1


def uses_dict(x):
    return dict(v=x)["v"] + 1  # a Python dict built with dict(): numba cannot type it
