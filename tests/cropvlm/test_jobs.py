"""`run_jobs`: model calls one encode ahead in one thread, taken lazily from an iterator that
may read earlier jobs' results (plain Python, no model)."""

from __future__ import annotations

import threading

import pytest

from cropvlm.jobs import PREFETCH_THREAD, Job, run_jobs


def jobs(log: list, finished: list, count: int, fail_at: int | None = None):
    for i in range(count):
        # the contract: job i is taken only once job i - 2 has finished
        log.append(("take", i, tuple(finished)))

        def prepare(i=i):
            log.append(("prepare", i, threading.current_thread().name))
            if i == fail_at:
                raise ValueError(f"cannot encode {i}")
            return i * 10

        def run(ready, i=i):
            log.append(("run", i, threading.current_thread().name))
            return ready + 1

        yield Job(prepare, run, lambda out, i=i: finished.append((i, out)), name="even" if i % 2 == 0 else "odd")


@pytest.mark.parametrize("prefetch", [True, False])
def test_jobs_run_in_order_and_are_taken_only_after_the_one_before_the_previous_finished(prefetch):
    log, finished = [], []
    seconds = run_jobs(jobs(log, finished, 5), prefetch=prefetch)
    assert finished == [(0, 1), (1, 11), (2, 21), (3, 31), (4, 41)]
    for _, i, done in (entry for entry in log if entry[0] == "take"):
        assert {j for j, _ in done} >= set(range(i - 1 if prefetch else i))
    runs = [thread for kind, _, thread in log if kind == "run"]
    assert not any(t.startswith(PREFETCH_THREAD) for t in runs)  # the model runs in the caller
    prepares = [thread for kind, _, thread in log if kind == "prepare"]
    assert not prepares[0].startswith(PREFETCH_THREAD)  # nothing runs yet: the caller encodes the first
    assert all(t.startswith(PREFETCH_THREAD) for t in prepares[1:]) == prefetch
    assert set(seconds) == {"even", "odd"} and all(s >= 0 for s in seconds.values())


def test_an_error_while_preparing_a_later_job_surfaces_and_no_thread_is_left():
    log, finished = [], []
    with pytest.raises(ValueError, match="cannot encode 3"):
        run_jobs(jobs(log, finished, 5, fail_at=3))
    assert [i for i, _ in finished] == [0, 1]  # job 2 ran but the error came before it finished
    assert not [t for t in threading.enumerate() if t.name.startswith(PREFETCH_THREAD)]


def test_no_jobs_and_one_job_start_no_thread(monkeypatch):
    from cropvlm import jobs as module

    monkeypatch.setattr(module, "ThreadPoolExecutor", lambda *a, **k: pytest.fail("a thread pool was started"))
    assert run_jobs(iter(())) == {}
    finished = []
    run_jobs([Job(lambda: 1, lambda x: x + 1, finished.append, name="only")])
    assert finished == [2]
