"""Encode the next chunk while the model generates for this one (the CPU side of a batch:
chat template, tokenizer, image preprocessing), for the reader and the policy alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

PREFETCH_THREAD = "cropvlm-prefetch"

T = TypeVar("T")
R = TypeVar("R")


def map_prefetched(prepare: Callable[[T], Any], consume: Callable[[Any], R], items: Sequence[T], *,
                   prefetch: bool = True) -> list[R]:
    """`[consume(prepare(item)) for item in items]`, in order, with `prepare(items[i + 1])` in
    one background thread while `consume` runs on item i: at most one prepared item waits.
    An exception from either side is raised here once the thread has stopped; one item, or
    `prefetch=False`, starts no thread."""
    if not prefetch or len(items) < 2:
        return [consume(prepare(item)) for item in items]
    results: list[R] = []
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=PREFETCH_THREAD)
    try:
        future = pool.submit(prepare, items[0])
        for i in range(len(items)):
            ready = future.result()
            if i + 1 < len(items):
                future = pool.submit(prepare, items[i + 1])
            results.append(consume(ready))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # after an error too: no thread outlives the call
    return results
