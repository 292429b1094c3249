"""`brokenvideos annotate-ui`: serve the SAM2 annotation page on localhost.

The predictor is the annotate step's own: built from ``annotate.sam2`` of ``--config`` by
``build_predictor`` (same keys, same checkpoint rules, CPU or GPU); ``prompts_file`` and
``simulate`` are not needed here, since a person makes the prompts.

The first stdout line is ``serving http://HOST:PORT/?token=TOKEN`` (scripts read it); the port is
bound before that line is printed, so ``--port 0`` (any free port) is safe to use.
"""

from __future__ import annotations

import logging
import secrets
import socket
import sys
from pathlib import Path

from brokenvideos.errors import BrokenVideosError

log = logging.getLogger(__name__)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def add_arguments(p) -> None:
    p.add_argument("--videos", required=True, help="a folder of .mp4 files or a videos .parquet manifest")
    p.add_argument("--out", required=True, help="where sessions are saved and exports are written")
    p.add_argument("--config", default="config.yaml", help="its annotate.sam2 section builds the predictor")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other than localhost (the token is still required)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def check_host(host: str, allow_remote: bool) -> None:
    if host not in LOCAL_HOSTS and not allow_remote:
        raise BrokenVideosError(f"--host {host} would serve the annotation tool beyond this machine: "
                                "add --allow-remote to do that on purpose (the token is still required)")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for such
    # sockets, and without it Nagle + delayed ACK add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BrokenVideosError(f"--host {host} --port {port}: cannot listen ({exc.strerror}); "
                                "--port 0 picks a free port") from None
    sock.listen(64)
    return sock


def build_store(config_path, videos, out):
    """Catalogue + the annotate step's predictor + a session store (also used by tests/benchmarks)."""
    from brokenvideos.annotate.sam2_annotator import Sam2Settings, build_predictor
    from brokenvideos.annotate.ui.catalogue import Catalogue
    from brokenvideos.annotate.ui.store import SessionStore
    from brokenvideos.config import load_config

    cfg = load_config(config_path)
    settings = Sam2Settings.from_config(cfg["annotate"].get("sam2"), require_prompts=False)
    catalogue = Catalogue.load(videos)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return SessionStore(catalogue, build_predictor(settings), settings, out)


def run(args) -> int:
    check_host(args.host, args.allow_remote)  # before anything slow
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    import uvicorn

    from brokenvideos.annotate.ui.app import create_app

    store = build_store(args.config, args.videos, args.out)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    token = secrets.token_urlsafe(24)
    shown = f"[{host}]" if ":" in host else host
    print(f"serving http://{shown}:{port}/?token={token}", flush=True)
    log.info("annotate-ui: %d videos, saving to %s", len(store.catalogue.entries), args.out)
    server = uvicorn.Server(uvicorn_config(create_app(store, token)))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        store.close_all()
    sys.stdout.flush()
    return 0


def uvicorn_config(app):
    """How the app is served (the CLI, the tests and the benchmark alike)."""
    import uvicorn

    from brokenvideos.annotate.ui.app import MAX_BODY_BYTES

    # ws_max_size: the click channel's frames are capped like request bodies (the app checks too).
    # No per-message deflate: a click's reply is a few hundred bytes, and compressing it on one
    # side and inflating it on the other costs time on a click's budget and saves nothing.
    return uvicorn.Config(app, log_level="warning", access_log=False, ws="websockets-sansio",
                          ws_max_size=MAX_BODY_BYTES, ws_per_message_deflate=False)
