"""What the GPU benchmarks measure besides wall time: GPU utilisation sampled from
`nvidia-smi`, and where each model's time goes (processor calls, vision encoder +
`generate`), timed by wrapping those calls while a block runs, so the library itself carries
no timers. Used by `gpu_extract.py` and `gpu_grpo.py`."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any


class GpuUtilSampler(threading.Thread):
    """`nvidia-smi --query-gpu=utilization.gpu` every `interval` seconds while running."""

    def __init__(self, interval: float = 0.2, index: int = 0) -> None:
        super().__init__(daemon=True)
        self.interval, self.index = interval, index
        self.samples: list[float] = []
        self.available = shutil.which("nvidia-smi") is not None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while self.available and not self._stop_event.wait(self.interval):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"--id={self.index}"],
                    capture_output=True, text=True, timeout=5,
                ).stdout.strip()
                self.samples.append(float(out.splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                pass

    def stop(self) -> dict:
        self._stop_event.set()
        self.join(timeout=5)
        if not self.samples:
            return {"util_mean": None, "util_max": None, "util_samples": 0}
        return {"util_mean": round(statistics.fmean(self.samples), 1), "util_max": max(self.samples),
                "util_samples": len(self.samples)}


@contextlib.contextmanager
def stage_seconds(models: dict[str, Any]) -> Iterator[dict[str, float]]:
    """Seconds per named model in processor calls (`scoring.encode_ahead`, in whichever thread runs
    it: with the reader's prefetch it overlaps generation) and in `model.generate`, keyed
    `{name}_preprocess_s` / `{name}_generate_s`; by wrapping both while the block runs, so the
    library itself carries no timers. Clear the dict to start a new count."""
    from cropvlm.hf import scoring

    seconds: dict[str, float] = defaultdict(float)
    lock = threading.Lock()  # the reader's prefetch thread adds too
    names = {id(model): name for name, model in models.items()}

    def timed(fn, key):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    seconds[key(args)] += time.perf_counter() - started

        return wrapper

    encode = scoring.encode_ahead
    scoring.encode_ahead = timed(encode, lambda args: f"{names[id(args[0].model)]}_preprocess_s")  # args[0]: Loaded
    for name, model in models.items():
        # the vision encoder run before `generate` (scoring.encode_distinct) counts as generation too
        for method in ("generate", "get_image_features"):
            setattr(model, method, timed(getattr(model, method), lambda args, name=name: f"{name}_generate_s"))
    try:
        yield seconds
    finally:
        scoring.encode_ahead = encode
        for model in models.values():
            del model.generate, model.get_image_features  # the class's methods again
