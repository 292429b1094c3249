"""annotate-ui latency on this CPU: tiny SAM2 (random weights), 256 px, one torch thread.

Issue 14's targets:
* a click round trip (request to mask drawn on the page) within 1.2x the bare
  ``add_new_points_or_box`` call, timed at two paces, the same on both sides: back to back (the
  next click as soon as the mask is drawn, while the browser still paints the last one; blocks of
  clicks on each side) and at a person's pace (``--pause-ms`` before each click, the two sides
  taking turns click by click, so the machine's load hits both alike);
* propagation frames/s within 10 % of the annotate step's.

What is timed:
* bare: ``predictor.add_new_points_or_box`` in this process, on the same video, the same click
  sequence (per block a new object: first click ``clear_old_points``, later ones refine), the
  same weights;
* page: the same clicks through the real page in Debian's chromium (``bv.prompt``: a message on
  the click channel, JSON, RLE decode of the changed objects, overlay drawn), timed inside the
  page with ``performance.now``; and the server's share of it, and the SAM2 call's share of that,
  as the reply reports them (``server_ms``, ``predictor_ms``);
* http: the same through httpx from Python (request to decoded JSON);
* annotate step: ``Sam2Annotator.annotate`` on a prompt file with the same two prompts, timing
  only its ``propagate_in_video`` loops (frames yielded / seconds);
* ui propagate: ``POST .../propagate`` streamed (as the page uses it), request to last frame.

Blocks (back to back) or single clicks (paced) of the two sides are interleaved so the shared
machine's load hits both alike; medians are printed, and the spread of the ratio block by block.
Usage: ``.venv/bin/python benchmarks/bench_annotate_ui.py [--frames 16] [--clicks 8]
[--blocks 4] [--repeats 3] [--pause-ms 250]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
IMAGE_SIZE, SEED, W, H = 256, 2, 128, 96
CLICK, BOX = (35.0, 35.0), (80.0, 55.0, 115.0, 85.0)


def workspace(root: Path, frames: int) -> dict:
    import pandas as pd
    import torch
    import yaml

    from brokenvideos.annotate.sam2_annotator import Sam2Settings, build_predictor
    from brokenvideos.io.tables import write_table
    from brokenvideos.io.video import sha256_file, write_video

    rng = np.random.default_rng(0)
    clip = rng.integers(0, 60, (frames, H, W, 3)).astype(np.uint8)
    for t in range(frames):
        clip[t, 20:50, 20 + 3 * t % 60:60 + 3 * t % 60] = 220
        clip[t, 55:85, 80:115] = (30, 200, 30)
    (root / "videos").mkdir(parents=True)
    path = root / "videos" / "bench.mp4"
    write_video(path, clip, fps=8)
    row = {"video_id": "bench", "generator": "bench", "prompt_id": "p0", "path": str(path), "label": "broken", "fps": 8,
           "num_frames": frames, "width": W, "height": H, "sha256": sha256_file(path), "source": "bench", "status": "ok"}
    write_table(pd.DataFrame([row]), root / "videos.parquet", kind="videos")
    torch.manual_seed(SEED)
    model = build_predictor(Sam2Settings(checkpoint=None, allow_random_weights=True, image_size=IMAGE_SIZE, device="cpu"))
    ckpt = root / "sam2_tiny_random.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    sam2 = {"checkpoint": str(ckpt), "image_size": IMAGE_SIZE, "device": "cpu"}
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import TINY_CONFIG, _merge

    cfg = _merge(TINY_CONFIG, {"annotate": {"method": "sam2", "sam2": sam2}})
    (root / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    prompts = {"version": 1, "videos": {"bench": {"instances": {
        "1": {"subcategory": "visual_breakdown", "prompts": [{"frame": 0, "points": [list(CLICK)], "labels": [1]}]},
        "2": {"subcategory": "attribute_shift", "prompts": [{"frame": 0, "box": list(BOX)}]}}}}}
    (root / "prompts.json").write_text(json.dumps(prompts))
    return {"root": root, "row": row, "sam2": sam2, "config": root / "config.yaml"}


def paces(pause_ms: float) -> list[tuple[str, float]]:
    return [("back to back", 0.0), ("a person's pace", pause_ms)]


def click_points(block: int, n: int) -> list[list[float]]:
    return [[float(15 + (11 * i + 5 * block) % 95), float(15 + (7 * i + 3 * block) % 65)] for i in range(n)]


class Bare:
    """The predictor alone (the server's own predictor object, its own inference state), on the
    JPEG folder the annotate step would give it; and the annotate step itself."""

    def __init__(self, ws, predictor, settings):
        from brokenvideos.annotate.sam2_annotator import Sam2Session, write_jpeg_frames
        from brokenvideos.io.video import read_video

        self.predictor = predictor
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-bare-"))
        frames = read_video(ws["row"]["path"])
        write_jpeg_frames(frames, self.tmp)
        self.session = Sam2Session(predictor, self.tmp, *frames.shape[:3], settings)

    def click(self, obj: int, i: int, xy: list[float]) -> float:
        """One call, as the server makes it: object ``obj``'s ``i``-th click (the first one starts it)."""
        t0 = time.perf_counter()
        self.predictor.add_new_points_or_box(self.session.state, frame_idx=0, obj_id=obj, points=[xy], labels=[1],
                                             clear_old_points=i == 0)
        return time.perf_counter() - t0

    def clicks(self, block: int, n: int) -> list[float]:
        return [self.click(block + 1, i, xy) for i, xy in enumerate(click_points(block, n))]


class AnnotateStep:
    """``Sam2Annotator.annotate`` (the annotate step's code and its own predictor), timing only its
    ``propagate_in_video`` loops: frames yielded / seconds inside them."""

    def __init__(self, ws):
        from brokenvideos.annotate.sam2_annotator import Sam2Annotator

        cfg = {"method": "sam2", "sam2": {**ws["sam2"], "prompts_file": str(ws["root"] / "prompts.json")}}
        self.annotator = Sam2Annotator(cfg, str(ws["root"] / "results"))

    def fps(self, ws) -> float:
        predictor = self.annotator.predictor
        frames, seconds = 0, 0.0
        real = predictor.propagate_in_video

        def timed(state, **kw):
            nonlocal frames, seconds
            gen = real(state, **kw)
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(gen)
                except StopIteration:
                    seconds += time.perf_counter() - t0
                    return
                seconds += time.perf_counter() - t0
                frames += 1
                yield item

        predictor.propagate_in_video = timed
        try:
            self.annotator.annotate(ws["row"])
        finally:
            del predictor.propagate_in_video
        return frames / seconds


def start_server_thread(ws):
    """The app under uvicorn in this process (shares the machine's scheduling with the bare calls)."""
    import secrets
    import threading

    import uvicorn

    from brokenvideos.annotate.ui.app import create_app
    from brokenvideos.annotate.ui.server import bind, build_store, uvicorn_config

    store = build_store(ws["config"], ws["root"] / "videos", ws["root"] / "ui_out")
    token = secrets.token_urlsafe(24)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(create_app(store, token)))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def stop():
        server.should_exit = True

    return store, stop, f"{base}/?token={token}", base, token


def start_server_process(ws):
    """`brokenvideos annotate-ui` as a person starts it."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "brokenvideos", "annotate-ui", "--videos", str(ws["root"] / "videos"),
                             "--out", str(ws["root"] / "ui_out"), "--config", str(ws["config"]), "--port", "0",
                             "--torch-threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=ws["root"])
    first = proc.stdout.readline().strip()
    m = re.fullmatch(r"serving (http://127\.0\.0\.1:\d+)/\?token=(\S+)", first)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {first!r}")

    def stop():
        proc.terminate()
        proc.wait(timeout=30)

    return None, stop, first.split(" ", 1)[1], m.group(1), m.group(2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--clicks", type=int, default=8, help="clicks per block")
    ap.add_argument("--blocks", type=int, default=4, help="interleaved click blocks per side")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved propagation runs per side")
    ap.add_argument("--pause-ms", type=float, default=250,
                    help="the pause between clicks at a person's pace (also timed back to back)")
    ap.add_argument("--server", choices=["thread", "process"], default="thread",
                    help="thread: uvicorn in this process, sharing the bare calls' predictor (default); "
                         "process: the CLI in its own process (its own predictor, same weights)")
    args = ap.parse_args()

    import httpx
    import torch
    from playwright.sync_api import sync_playwright

    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = Path(tempfile.mkdtemp(prefix="bench-annotate-ui-"))
    ws = workspace(root, args.frames)
    store, stop, url, base, token = (start_server_thread if args.server == "thread" else start_server_process)(ws)
    if store is not None:
        predictor, settings = store.predictor, store.settings
    else:
        from brokenvideos.annotate.sam2_annotator import Sam2Settings, build_predictor

        settings = Sam2Settings.from_config(ws["sam2"], require_prompts=False)
        predictor = build_predictor(settings)
    bare = Bare(ws, predictor, settings)
    step = AnnotateStep(ws)
    h = {"X-Token": token}
    clicks = {pace: {"bare": [], "page": [], "server": [], "predictor": []} for pace, _ in paces(args.pause_ms)}
    ratios = {pace: [] for pace, _ in paces(args.pause_ms)}  # page / bare, block by block: the spread
    http_ms = []
    step_fps, ui_fps = [], []
    try:
        with sync_playwright() as p, httpx.Client(base_url=base, headers=h, timeout=600) as http:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#videos button[data-video-id='bench']")
            page.click("#videos button[data-video-id='bench']")
            page.wait_for_function("() => bv.state.sid !== null && bv.state.video !== null && "
                                   "bv.clicks.ws && bv.clicks.ws.readyState === WebSocket.OPEN")
            sid = page.evaluate("() => bv.state.sid")
            bare.clicks(100, 3)  # warm-up: frame 0 features cached on both sides
            page.evaluate("async () => { bv.state.active = 200; await bv.prompt({points: [[5, 5]], labels: [1]}); }")

            one_click = """async ([obj, p]) => {
                bv.state.active = obj;
                const ms = await bv.prompt({points: [p], labels: [1]});
                return [ms, bv.state.lastPromptServerMs, bv.state.lastPredictorMs];
            }"""
            for k, (pace, pause) in enumerate(paces(args.pause_ms)):
                for block in range(args.blocks):
                    obj = k * args.blocks + block + 1  # a new object per block, on both sides alike
                    pts = click_points(obj - 1, args.clicks)
                    if pause == 0:  # a block on each side: the next click as soon as the last returns
                        bare_ms = [1000 * t for t in bare.clicks(obj - 1, args.clicks)]
                        got = page.evaluate(f"async ([obj, pts]) => {{ const out = []; for (const p of pts) "
                                            f"out.push(await ({one_click})([obj, p])); return out; }}", [obj, pts])
                    else:  # click by click, turn about, each after the same pause
                        bare_ms, got = [], []
                        for i, xy in enumerate(pts):
                            time.sleep(pause / 1000)
                            bare_ms.append(1000 * bare.click(obj, i, xy))
                            time.sleep(pause / 1000)
                            got.append(page.evaluate(one_click, [obj, xy]))
                    clicks[pace]["bare"] += bare_ms
                    for key, values in zip(("page", "server", "predictor"), zip(*got)):
                        clicks[pace][key] += values
                    ratios[pace].append(statistics.median(clicks[pace]["page"][-len(pts):]) / statistics.median(bare_ms))
            # the transport alone: a request that does no work, from the page and from Python
            null_page_ms = page.evaluate("""async () => {
                const out = [];
                for (let i = 0; i < 20; i++) {
                    const t0 = performance.now();
                    await (await fetch("/api/videos", {credentials: "same-origin"})).json();
                    out.push(performance.now() - t0);
                }
                return out;
            }""")
            # the click channel alone: a message the server refuses at once (400, no predictor call),
            # back to back and after each pace's pause (an idle browser and server wake up slower)
            null_ws_ms = {pause: page.evaluate("""async (pause) => {
                const out = [];
                for (let i = 0; i < 20; i++) {
                    await new Promise((r) => setTimeout(r, pause));
                    const t0 = performance.now();
                    await bv.clicks.send({}).catch(() => null);
                    out.push(performance.now() - t0);
                }
                return out;
            }""", pause) for _, pause in paces(args.pause_ms)}
            null_http_ms = []
            for _ in range(20):
                t0 = time.perf_counter()
                http.get("/api/videos").json()
                null_http_ms.append(1000 * (time.perf_counter() - t0))
            # http: the same clicks on fresh objects from Python
            for block in range(args.blocks):
                for x, y in click_points(block, args.clicks):
                    t0 = time.perf_counter()
                    r = http.post(f"/api/sessions/{sid}/prompts",
                                  json={"frame": 0, "object_id": 50 + block, "points": [[x, y]], "labels": [1]})
                    r.json()
                    http_ms.append(1000 * (time.perf_counter() - t0))
            browser.close()

            # propagation: a fresh session with the prompt file's two prompts
            http.delete(f"/api/sessions/{sid}", params={"discard": "true"})
            sid = http.post("/api/sessions", json={"video_id": "bench"}).json()["session_id"]
            http.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [list(CLICK)], "labels": [1]})
            http.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 2, "box": list(BOX)})
            for _ in range(args.repeats):
                step_fps.append(step.fps(ws))
                t0 = time.perf_counter()
                n = 0
                with http.stream("POST", f"/api/sessions/{sid}/propagate", json={"direction": "both", "stream": True}) as r:
                    for line in r.iter_lines():
                        if line and json.loads(line)["type"] == "frame":
                            n += 1
                            t_last = time.perf_counter()
                ui_fps.append(n / (t_last - t0))
                http.post(f"/api/sessions/{sid}/undo")  # back to prompts only (not timed)
    finally:
        stop()

    med = statistics.median
    sf, uf = med(step_fps), med(ui_fps)
    load = os.getloadavg()[0]
    print(f"annotate-ui benchmark: tiny SAM2 (random weights) at {IMAGE_SIZE} px, CPU, 1 torch thread, "
          f"{args.frames}-frame {W}x{H} video, server in a {args.server}, load average {load:.1f} on "
          f"{os.cpu_count()} cores")
    for pace, pause in paces(args.pause_ms):
        c = {k: med(v) for k, v in clicks[pace].items()}
        b = c["bare"]
        how = "in blocks, side by side" if pause == 0 else f"{pause:g} ms before each click, sides taking turns"
        print(f"click round trip, {pace} ({how}), median of "
              f"{len(clicks[pace]['bare'])} clicks:")
        print(f"  bare add_new_points_or_box   {b:7.1f} ms")
        print(f"  page (request to mask drawn) {c['page']:7.1f} ms   = {c['page'] / b:.3f} x bare   (target <= 1.2: "
              f"{'met' if c['page'] / b <= 1.2 else 'NOT met'}; block by block "
              f"{min(ratios[pace]):.2f}-{max(ratios[pace]):.2f} x)")
        print(f"    of which the server        {c['server']:7.1f} ms   = {c['server'] / b:.3f} x bare")
        print(f"      of which SAM2 (+ merge)  {c['predictor']:7.1f} ms   = {c['predictor'] / b:.3f} x bare"
              f"   (the same call as bare, in the server's thread, beside the browser)")
    print(f"http (request to JSON, back to back) {med(http_ms):7.1f} ms   = "
          f"{med(http_ms) / med(clicks['back to back']['bare']):.3f} x that bare")
    print("transport alone: click channel (a refused message) " + ", ".join(
        f"{med(v):.1f} ms after {pause:g} ms idle" for pause, v in null_ws_ms.items()) + "; "
          f"GET /api/videos: page {med(null_page_ms):.1f} ms, http {med(null_http_ms):.1f} ms")
    print(f"propagation, 2 objects, median of {args.repeats} runs:")
    print(f"  annotate step                {sf:7.2f} frames/s")
    print(f"  annotate-ui (streamed)       {uf:7.2f} frames/s = {uf / sf:.3f} x   (target within 10 %: "
          f"{'met' if abs(uf / sf - 1) <= 0.10 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
