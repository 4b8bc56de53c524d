"""Encode the next model call's inputs while the model runs this one (the CPU side of a batch:
chat template, tokenizer, image preprocessing), for the reader, the policy, and the two
interleaved (`cropvlm.pipeline`: the reader's first chunk is encoded while the policy still
generates for the next wave of pages).

A model call is a `Job`: `prepare` (CPU work, run in one background thread, one job ahead),
`run` (the model, in the calling thread) and `finish` (decoding, in the calling thread while
no `prepare` runs: a fast tokenizer used from two threads at once fails with "Already
borrowed"). `run_jobs` takes the next job from its iterator only once the job *before the
previous one* has finished, so a lazy iterator can build a job from earlier jobs' results.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

PREFETCH_THREAD = "cropvlm-prefetch"


@dataclass(frozen=True)
class Job:
    prepare: Callable[[], Any]  # CPU: encode inputs (thread-safe, may run in the prefetch thread)
    run: Callable[[Any], Any]  # the model on the prepared inputs (calling thread)
    finish: Callable[[Any], None]  # decode `run`'s output into results (calling thread, no prepare running)
    name: str = ""  # whose seconds these are (e.g. "policy", "reader")


def run_jobs(jobs: Iterable[Job], *, prefetch: bool = True) -> dict[str, float]:
    """Runs `jobs` in order, `prepare` of job i + 1 in one background thread while job i runs
    (the first job's in the calling thread: nothing runs yet; one job starts no thread).

    Job i + 1 is taken from `jobs` after job i - 1 finished (without prefetch: after job i
    finished). Returns the calling thread's seconds per job name: waiting for a job's inputs
    and running it count for that job, finishing it for it too, and taking a job from the
    iterator (which may cut crops, say) for the job taken. An exception from either thread is
    raised here once the background thread has stopped; no thread outlives the call."""
    seconds: dict[str, float] = defaultdict(float)
    iterator = iter(jobs)

    def take() -> Job | None:
        started = time.perf_counter()
        job = next(iterator, None)
        if job is not None:
            seconds[job.name] += time.perf_counter() - started
        return job

    def timed(job: Job, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            seconds[job.name] += time.perf_counter() - started

    if not prefetch:
        while (job := take()) is not None:
            timed(job, lambda j=job: j.finish(j.run(j.prepare())))
        return dict(seconds)
    pool: ThreadPoolExecutor | None = None  # started at the second job: one job needs no thread
    try:
        current = take()
        ready = timed(current, current.prepare) if current is not None else None  # nothing to overlap yet
        future = None
        previous: tuple[Job, Any] | None = None
        while current is not None:
            if future is not None:
                ready = timed(current, future.result)
            if previous is not None:
                timed(previous[0], previous[0].finish, previous[1])
            upcoming = take()
            if upcoming is not None:
                pool = pool or ThreadPoolExecutor(max_workers=1, thread_name_prefix=PREFETCH_THREAD)
                future = pool.submit(upcoming.prepare)
            previous = (current, timed(current, current.run, ready))
            current = upcoming
        if previous is not None:
            timed(previous[0], previous[0].finish, previous[1])
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)  # after an error too
    return dict(seconds)

