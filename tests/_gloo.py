"""Running a test module as two gloo ranks on this machine (loopback only)."""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

#: Environment of every rank: one thread each, loopback, warnings are errors.
RANK_ENV = {
    "OMP_NUM_THREADS": "1",
    "GLOO_SOCKET_IFNAME": "lo",
    "MASTER_ADDR": "127.0.0.1",
    "PYTHONWARNINGS": "error",
}


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_two_ranks(script: str, out: Path, timeout: float, **env: str) -> None:
    """Run ``python script RANK PORT OUT`` for ranks 0 and 1 and wait for both.

    Each rank writes its results under ``out``; a rank that fails (or outlives
    ``timeout`` seconds) fails the test with its log.
    """
    port = free_port()
    environment = {**os.environ, **RANK_ENV, **env}
    processes = [
        subprocess.Popen(
            [sys.executable, script, str(rank_id), str(port), str(out)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank_id in range(2)
    ]
    logs = []
    try:
        for process in processes:
            logs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log


def join_group(rank_id: int, port: int, seconds: float = 60.0) -> None:
    """Join the two-rank gloo group on 127.0.0.1:``port`` as ``rank_id`` (in a worker);
    a collective that waits longer than ``seconds`` fails instead of hanging."""
    import torch.distributed as dist

    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank_id,
        world_size=2,
        timeout=datetime.timedelta(seconds=seconds),
    )


def json_results(script: str, out: Path, timeout: float) -> list[dict]:
    """Run ``script`` as two ranks (:func:`run_two_ranks`) and read back what each wrote
    to ``out/rank{RANK}.json``."""
    run_two_ranks(script, out, timeout=timeout)
    return [json.loads((out / f"rank{rank_id}.json").read_text()) for rank_id in range(2)]
