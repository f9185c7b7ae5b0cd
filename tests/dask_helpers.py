"""Module-level functions for dask tests (dask worker processes import them by name)."""


def square(x):
    return x**2


def linear_fn(x, a=1):
    return a * x + 1


def multiply(x, factor=1):
    return x * factor


def fail_on_7(x):
    if x == 7:
        raise ValueError("seven")
    return x


def keep_not_div3(x):
    return x % 3 != 0


def sample_id(s):
    return s["i"]


def slow_id(s):
    import time

    time.sleep(0.02)
    return s["i"]
