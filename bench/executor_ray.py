"""``bench run --executor ray``: a run's mask jobs and their cells as Ray tasks; the driver is the only writer.

The driver plans as the serial run does and skips the cells already stored. Each unfinished mask job
becomes one task that crafts (or loads) its masks; each (job, budget, transform) group of that job's
unfinished cells becomes one task that protects the test photos once and embeds and scores them for
every target and protocol (Ray starts it when its masks exist, on whichever node is free). Tasks only
return results: the driver writes masks and cells to the store as they arrive, with the serial run's
atomic writes, so a driver killed at any moment leaves only whole cells and a rerun skips them.

A worker builds its own :class:`Runner` from the RunConfig (models, faces and splits found through the
BENCH_* paths the driver hands it in the task's runtime environment) and keeps it for the run's next
task, so models load once per worker process. The code that makes a row is the serial run's
(:meth:`Runner.job_rows`), so rows match a serial run's except where they say where and how fast they
were made (``provenance``: the worker's machine and thread count; ``t1``/``t2``: craft times).
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from itertools import groupby

from tqdm.auto import tqdm

from .errors import BenchError
from .provenance import config_hash
from .runner import RunConfig, Runner
from .stage_clock import StageClock, cuda_sync, stage
from .store import ResultStore

RAY_MISSING = "--executor ray needs Ray, which is not installed here: pip install -e '.[ray]'"
EXECUTORS = ("serial", "ray")


def import_ray():
    """The ray module, or one clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise BenchError(RAY_MISSING) from None
    return ray


def worker_env() -> dict[str, str]:
    """What a worker needs from the driver's environment: the BENCH_* locations (data, cache, splits ...)."""
    return {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}


def job_spec(job) -> tuple:
    """A mask job by its identity (a MaskJob holds a created method object, rebuilt on the worker)."""
    return job.method_name, job.source, job.seed, job.n_inference


# worker side ------------------------------------------------------------------------------------
_RUNNERS: dict[str, Runner] = {}  # per worker process: the Runner of each run it served


def worker_runner(config: RunConfig, store_root: str) -> Runner:
    """This worker's Runner for the run (built once: models and faces load on first use and stay)."""
    key = config_hash({"config": asdict(config), "store": store_root, "env": worker_env()})
    if key not in _RUNNERS:
        import torch

        # one thread per task: Ray runs as many tasks on a node as it has CPUs
        torch.set_num_threads(1)
        _RUNNERS[key] = Runner(config, ResultStore(store_root), progress=False)
    return _RUNNERS[key]


def _job(runner: Runner, spec: tuple):
    return next(j for j in runner.plan() if job_spec(j) == tuple(spec))


class _NoWrites(ResultStore):
    """The run's store, read-only for a worker: a crafted mask set is handed back instead of saved."""

    def __init__(self, store: ResultStore):
        super().__init__(store.root)
        self.saved: tuple | None = None

    def save_masks(self, mask_key, masks, meta):
        self.saved = (mask_key, meta)
        return None


def craft_task(config: RunConfig, store_root: str, spec: tuple):
    """(MaskSet, info): the job's masks, loaded if the store (shared with the driver) has them, else crafted;
    info says whether to save them (key, meta) and carries this task's stage times."""
    runner = worker_runner(config, store_root)
    job = _job(runner, spec)
    reader = _NoWrites(runner.store)
    bank = replace_store(runner.bank, reader)
    with StageClock(sync=cuda_sync(config.device)) as clock:
        masks = bank.get(job)
    return masks, {"saved": reader.saved, "clock": clock.totals(), "node": _node()}


def replace_store(bank, store):
    """A copy of a MaskBank writing to ``store`` (the worker's Runner keeps its own)."""
    from copy import copy

    out = copy(bank)
    out.store = store
    return out


def score_task(config: RunConfig, store_root: str, spec: tuple, masks, budget: float, chain: str, cell_ids: list[str]):
    """([(key, row)], info: stage times, node) for the given cells of one job at one budget and transform chain."""
    runner = worker_runner(config, store_root)
    job = _job(runner, spec)
    wanted = set(cell_ids)
    todo = [c for c in runner.cells(job) if c[0] == budget and c[1].spec == chain and ResultStore.cell_id(c[-1]) in wanted]
    with StageClock(sync=cuda_sync(config.device)) as clock:
        rows = list(runner.job_rows(job, masks, todo))
    return rows, {"clock": clock.totals(), "node": _node()}


def _node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


# driver side ------------------------------------------------------------------------------------
class RayRunner(Runner):
    """A Runner whose loop fans out over a Ray cluster (``address``: None starts a local one; 'auto' or
    'host:port' joins a running one). Same plan, same store, same rows; only the driver writes."""

    def __init__(self, config: RunConfig, store: ResultStore | None = None, progress: bool = True,
                 address: str | None = None):
        self.ray = import_ray()  # before anything loads
        self.address = address
        self.nodes: set[str] = set()  # the cluster nodes that ran this run's tasks
        super().__init__(config, store, progress)

    def profile(self) -> dict:
        # stage seconds add up over the workers: together they may pass the wall time
        return {**super().profile(), "executor": "ray", "ray_nodes": len(self.nodes)}

    def _run(self) -> list[dict]:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.address, include_dashboard=False, logging_level="warning")
        try:
            self._fan_out(ray)
        finally:
            if started_here:
                ray.shutdown()
        return self.planned_rows()

    def _task_options(self) -> dict:
        on_gpu = str(self.cfg.device).startswith("cuda")
        return {"num_cpus": 1, "num_gpus": 1 if on_gpu else 0, "max_retries": 1,
                "runtime_env": {"env_vars": worker_env()}}

    def _fan_out(self, ray) -> None:
        self.nodes = set()
        opts = self._task_options()
        craft = ray.remote(craft_task).options(num_returns=2, **opts)
        score = ray.remote(score_task).options(**opts)
        # a worker sees only the GPU Ray gave it, as 'cuda'
        cfg = replace(self.cfg, device="cuda") if opts["num_gpus"] else self.cfg
        root = str(self.store.root.resolve())
        pending = self.pending()
        bar = tqdm(total=sum(n for *_, n in pending), desc="cells", disable=not self.progress, unit="cell")
        waiting: dict = {}  # object ref -> ("masks", masks ref) or ("cells", None)
        for job, todo, n in pending:
            bar.update(n - len(todo))
            if not todo:
                continue
            spec = job_spec(job)
            masks_ref, info_ref = craft.remote(cfg, root, spec)
            waiting[info_ref] = ("masks", masks_ref)
            # cells() runs budget, then chain, outermost: each group is one protected photo set
            for (budget, chain), group in groupby(todo, key=lambda c: (c[0], c[1].spec)):
                ids = [ResultStore.cell_id(c[-1]) for c in group]
                waiting[score.remote(cfg, root, spec, masks_ref, budget, chain, ids)] = ("cells", None)
        try:
            while waiting:
                done, _ = ray.wait(list(waiting), num_returns=1)
                kind, masks_ref = waiting.pop(done[0])
                if kind == "masks":
                    info = ray.get(done[0])
                    self.clock.merge(info["clock"])
                    self.nodes.add(info["node"])
                    if info["saved"] is not None:  # crafted by the worker: the driver stores it
                        key, meta = info["saved"]
                        with stage("masks:save"):
                            self.store.save_masks(key, ray.get(masks_ref).masks, meta)
                    continue
                rows, info = ray.get(done[0])
                self.clock.merge(info["clock"])
                self.nodes.add(info["node"])
                for key, row in rows:
                    with stage("write", items=1):
                        self.store.put(key, row)
                    bar.update(1)
        finally:  # interrupted (Ctrl-C, a failed task): what is stored stays, the rest is dropped
            for ref in waiting:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 (already finished or gone: nothing to cancel)
                    pass
            bar.close()
