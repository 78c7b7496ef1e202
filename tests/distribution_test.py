"""Data-parallel training equals one device on the same global batch: MirroredStrategy over two logical
CPUs, and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1. The distributed runs also
cut each replica's 4 rows into length groups of 2 (input_pipeline): the reference is one unsplit batch."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "distributed_training.py")


def _run(out, *flags, env=None):
    return subprocess.Popen([sys.executable, SCRIPT, f"--out={out}", *flags], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process):
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-4000:]


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    """Reference runs on one device: without clipping (the step then depends on the gradient's scale, so
    a loss normalised by the per-replica batch would show) and with clipping (applied to the summed
    gradient; clipping each replica's half would differ)."""
    outs = {clip: str(tmp_path_factory.mktemp("single") / "w.npz") for clip in ("0", "0.05")}
    processes = {clip: _run(out, "--strategy=default", f"--clip={clip}") for clip, out in outs.items()}
    for process in processes.values():
        _finish(process)
    return {clip: np.load(out) for clip, out in outs.items()}


def _assert_same_training(result, reference, replicas):
    assert int(result["replicas"]) == replicas
    assert int(reference["length_group_size"]) == 0 and int(result["length_group_size"]) == 2  # groups were used
    assert float(result["loss"]) == pytest.approx(float(reference["loss"]), rel=1e-4)
    weights = [k for k in reference.files if k.startswith("w")]
    for run in (reference, result):  # both trained: weights equal because neither moved would prove nothing
        moved = sum(float(np.abs(run[k] - run[f"initial{k[1:]}"]).sum()) for k in weights)
        assert moved > 1e-3
    for key in weights:
        np.testing.assert_allclose(result[key], reference[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("clip", ["0", "0.05"])
def test_mirrored_over_two_logical_cpus_equals_one_device(single_device, tmp_path, clip):
    out = str(tmp_path / "w.npz")
    _finish(_run(out, "--strategy=mirrored", "--cpu_replicas=2", f"--clip={clip}", "--group_size=2"))
    _assert_same_training(np.load(out), single_device[clip], replicas=2)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_with_two_processes_equals_one_device(single_device, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out = str(tmp_path / "w.npz")
    processes = [_run(out, "--strategy=multi_worker_mirrored", "--clip=0", "--group_size=2",
                      env={"TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                                    "task": {"type": "worker", "index": index}})})
                 for index in range(2)]
    try:
        for process in processes:
            _finish(process)
    finally:
        for process in processes:
            process.kill()
    _assert_same_training(np.load(out), single_device["0"], replicas=2)
