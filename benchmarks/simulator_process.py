"""The simulated AWS of the benchmarks, in a process of its own, as the real one is: the moto
server (with Valdrix's patches, ``valdrix.simulator.aws_server``) and the ``FaultProxy`` that
adds each call's latency and counts the calls. Its CPU is then neither tool's, and it reports
how much it used.

    python benchmarks/simulator_process.py --latency-ms 50

prints one JSON line (``{"moto": url, "proxy": url}``), then answers a command per line on
its standard input: ``stats`` (the calls counted since the last ``reset``, by
``service:Operation``, and the process's CPU seconds so far), ``reset``. It ends when its
standard input closes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


@dataclass
class SimulatorStats:
    calls: dict[str, int]
    cpu_seconds: float

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class SimulatorProcess:
    """The parent's handle on the simulator process."""

    def __init__(self, latency_ms: float) -> None:
        from valdrix.simulator.aws_server import SIMULATED_AWS_ENV

        self._process = subprocess.Popen(  # noqa: S603 (our interpreter, fixed arguments)
            [sys.executable, __file__, "--latency-ms", str(latency_ms)],
            env={**os.environ, **SIMULATED_AWS_ENV},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        urls = self._read()
        self.moto_url: str = urls["moto"]
        self.proxy_url: str = urls["proxy"]

    @property
    def pid(self) -> int:
        return self._process.pid

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process ended before it answered")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read()

    def stats(self) -> SimulatorStats:
        answer = self._ask("stats")
        return SimulatorStats(answer["calls"], answer["cpu_seconds"])

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def serve(latency_ms: float) -> None:
    from valdrix.simulator.aws_server import start_simulated_aws
    from valdrix.simulator.proxy import FaultProxy, Faults

    aws = start_simulated_aws()
    proxy = FaultProxy(aws.endpoint_url, Faults(latency_seconds=latency_ms / 1000)).start()
    print(json.dumps({"moto": aws.endpoint_url, "proxy": proxy.url}), flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                proxy.calls.clear()
                print(json.dumps({"reset": True}), flush=True)
            elif command == "stats":
                calls = {f"{s}:{o}": n for (s, o), n in sorted(proxy.calls.items())}
                answer = {"calls": calls, "cpu_seconds": round(time.process_time(), 2)}
                print(json.dumps(answer), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        proxy.stop()
        aws.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    serve(parser.parse_args().latency_ms)
