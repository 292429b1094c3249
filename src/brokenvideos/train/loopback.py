"""Torch's process-group rendezvous on loopback, for the private one-node Ray cluster.

Ray Train's TorchConfig lets rank 0 create the TCPStore that the workers meet at. Torch binds that
store's server to every interface and offers no bind address, only a socket already bound
(``master_listen_fd``). On the private cluster every worker runs on this host, so rank 0 binds one
to 127.0.0.1 and hands it over: nothing of a training job listens beyond loopback. Joining a real
cluster (``train.ray.address``) keeps Ray's own TorchConfig, whose workers span hosts.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta

import ray
from ray.train.torch import TorchConfig
from ray.train.torch.config import _set_torch_distributed_env_vars, _TorchBackend

LOOPBACK = "127.0.0.1"
_listener: socket.socket | None = None  # rank 0's bound socket, kept open for the store's lifetime


def _bind_loopback() -> int:
    global _listener
    _listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _listener.bind((LOOPBACK, 0))
    _listener.listen()
    return _listener.getsockname()[1]


def _join(world_rank: int, world_size: int, port: int, backend: str, timeout_s: int) -> None:
    import torch.distributed as dist

    timeout = timedelta(seconds=timeout_s)
    if world_rank == 0:
        store = dist.TCPStore(LOOPBACK, port, world_size, is_master=True, timeout=timeout,
                              master_listen_fd=_listener.fileno(), use_libuv=True)
    else:
        store = dist.TCPStore(LOOPBACK, port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group(backend=backend, store=store, rank=world_rank, world_size=world_size, timeout=timeout)


class _LoopbackBackend(_TorchBackend):
    def on_start(self, worker_group, backend_config):
        gpus = worker_group.get_resources_per_worker().get("GPU", 0)
        backend = backend_config.backend or ("nccl" if gpus else "gloo")
        port = worker_group.execute_single(0, _bind_loopback)
        worker_group.execute(_set_torch_distributed_env_vars)  # LOCAL_RANK and friends, as Ray sets them
        ray.get([worker_group.execute_single_async(i, _join, world_rank=i, world_size=len(worker_group), port=port,
                                                   backend=backend, timeout_s=backend_config.timeout_s)
                 for i in range(len(worker_group))])


@dataclass
class LoopbackTorchConfig(TorchConfig):
    @property
    def backend_cls(self):
        return _LoopbackBackend


def torch_config(ray_cfg: dict) -> TorchConfig:
    """The process-group setup for a run: loopback on the private cluster, Ray's on a joined one."""
    return TorchConfig() if ray_cfg.get("address") else LoopbackTorchConfig()
