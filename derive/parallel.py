"""Independent items on several processes, in order: the results never depend on the number of processes."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence


def parallel_map(function: Callable, items: Sequence, jobs: int, initializer: Callable, initargs: tuple,
                 progress: Callable[[int, int], None] | None) -> Iterable:
    """``function`` over ``items`` in order, on ``jobs`` processes; the results do not depend on ``jobs``."""
    import multiprocessing

    total = len(items)
    if jobs <= 1 or total < 4:
        initializer(*initargs)
        for i, item in enumerate(items, 1):
            yield function(item)
            if progress:
                progress(i, total)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(jobs, initializer=initializer, initargs=initargs) as pool:
        for i, result in enumerate(pool.imap(function, items, chunksize=1), 1):
            yield result
            if progress:
                progress(i, total)


def default_jobs() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
