"""The Ray engine of a batch (docs/batch.md): a Ray session, the check that ``--out`` is shared by every node, and
the items through a Ray Data pipeline of :mod:`geovid.distributed` actors."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geovid.batch.control import BatchControl, probe_out
from geovid.batch.kinds import KindSpec
from geovid.errors import GeovidError, InputError
from geovid.runs.store import one_line

if TYPE_CHECKING:
    from geovid.batch.driver import _Tracker

#: How to get the Ray engine (the one line printed when Ray is missing).
INSTALL_RAY = "pip install 'geovid[ray]'"
#: After Ctrl-C: how long the running items get to stop at their next progress report (a second Ctrl-C stops
#: waiting at once; runs still ``running`` after that are marked ``interrupted`` by the driver).
GRACE_S = 30.0


def require_ray() -> Any:
    """The ``ray`` module (with Ray Data), or InputError saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError(f"--engine ray needs Ray, which is not installed: {INSTALL_RAY}") from None
    return ray


def _quiet_ray_data() -> None:
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    for name in ("enable_operator_progress_bars", "print_on_execution_start", "enable_auto_log_stats"):
        if hasattr(ctx, name):
            setattr(ctx, name, False)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    """Ray, started here (a local cluster with ``num_cpus`` CPUs, or joined at ``address``) and shut down at the
    end; an already initialised Ray (a user's session, the tests) is used as it is and left running."""
    ray = require_ray()
    own = not ray.is_initialized()
    if own:
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        # Ray's C++ side logs to stderr past logging_level (e.g. one line per actor about its restart policy);
        # RAY_BACKEND_LOG_LEVEL=info (set by the user) brings it back.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        try:
            from geovid.media.decode import quiet_native_stderr

            with quiet_native_stderr():  # what Ray's processes print while they start (they also log to files)
                if address:
                    ray.init(address=address, **quiet)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, **quiet)
        except Exception as err:
            where = f"join the Ray cluster at {address}" if address else "start a local Ray cluster"
            raise GeovidError(f"cannot {where}: {one_line(err)}") from None
    _quiet_ray_data()
    try:
        yield ray
    finally:
        if own:
            with contextlib.suppress(Exception):
                ray.shutdown()


def check_out_shared(ray: Any, out: Path, control: BatchControl) -> None:
    """Every live Ray node reads the driver's token in ``out`` and writes there, or InputError (one line)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(probe_out)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    refs = [(n, probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
             .remote(str(control.path), control.token)) for n in nodes]
    for node, ref in refs:
        host = node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or node["NodeID"][:8]
        try:
            host, err = ray.get(ref, timeout=300)
        except Exception as exc:
            err = f"the check could not run there ({one_line(exc)})"
        if err:
            raise InputError(f"--out {out} must be a folder that every Ray worker can write (a shared filesystem); "
                             f"node {host}: {err}")


def _default_workers(ray: Any, cpus: float, gpus: float) -> int:
    res = ray.cluster_resources()
    n = res.get("GPU", 0) / gpus if gpus else res.get("CPU", 1) / cpus
    return max(1, int(n))


def _run_ray(ray: Any, spec: KindSpec, ctor: dict[str, Any], todo: list[dict[str, Any]], tracker: _Tracker,
             control: BatchControl, workers: int, cpus: float, gpus: float) -> tuple[bool, str | None]:
    """The items through a Ray Data pipeline; returns (interrupted, engine error)."""
    import ray.data

    remote: dict[str, Any] = {"num_cpus": cpus}
    if gpus:
        remote["num_gpus"] = gpus
    ds = ray.data.from_items(todo, override_num_blocks=len(todo))  # one block per item: items spread one by one
    ds = ds.map_batches(spec.worker(), fn_constructor_kwargs=ctor, batch_size=1,
                        compute=ray.data.ActorPoolStrategy(size=min(workers, len(todo)),
                                                           max_tasks_in_flight_per_actor=1),
                        **remote)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def consume() -> None:
        try:
            for row in ds.iter_rows():
                events.put(("row", row))
        except BaseException as err:  # handed to the main thread
            events.put(("error", err))
        else:
            events.put(("end", None))

    threading.Thread(target=consume, name="geovid-batch-ray", daemon=True).start()
    interrupted, deadline, error = False, None, None
    while True:
        try:
            try:
                what, payload = events.get(timeout=0.5)
            except queue.Empty:
                tracker.set_running(control.started())
                if deadline is not None and time.monotonic() > deadline:
                    break
                continue
            if what == "row":
                tracker.finish(payload)
            elif what == "error":
                error = f"Ray engine failed: {one_line(payload)}"
                break
            else:
                break
        except KeyboardInterrupt:
            if interrupted:
                break
            interrupted, deadline = True, time.monotonic() + GRACE_S
            control.cancel()
    return interrupted, error
