"""annotate-ui end to end in a real browser: Debian's chromium driven by Playwright, against the
real `brokenvideos annotate-ui` server (random-weight tiny SAM2 on CPU).

The page is used the way a person uses it (mouse clicks, a dragged box, the subcategory lists,
arrow keys, the buttons); then the exported files are checked and replayed by the annotate step.
The screenshot of the page mid-annotation lands in the test's tmp dir; with
``BROKENVIDEOS_UPDATE_SCREENSHOTS=1`` it also refreshes docs/img/annotate_ui.png.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sam2")

from conftest import REPO  # noqa: E402
from test_annotate_ui_api import replay_with_annotate_step, replayed_dir  # noqa: E402

from brokenvideos.annotate.prompts_file import load_prompts  # noqa: E402
from brokenvideos.io.masks import read_instances, read_video_masks  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOT = REPO / "docs" / "img" / "annotate_ui.png"
WAIT_MS = 180_000  # propagation on a loaded 2-core machine


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():  # never a silent skip: CI runs the setup script
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup_browser.sh (installs Debian's chromium with apt-get)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(annotate_ui_workspace, tmp_path):
    ws = annotate_ui_workspace
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "brokenvideos", "annotate-ui", "--videos", str(ws["videos_dir"]),
                             "--out", str(out), "--config", str(ws["config"]), "--port", "0", "--torch-threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ws["root"])
    try:
        first = proc.stdout.readline().strip()
        m = re.fullmatch(r"serving http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{20,})", first)
        assert m, f"first stdout line {first!r}; stderr: {proc.stderr.read()[-3000:] if proc.poll() is not None else ''}"
        yield {"url": first.split(" ", 1)[1], "base": f"http://127.0.0.1:{m.group(1)}", "token": m.group(2), "out": out}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def canvas_point(page, ws, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of video pixel (x, y) on the (scaled) canvas."""
    box = page.locator("#canvas").bounding_box()
    return box["x"] + (x + 0.5) / ws["W"] * box["width"], box["y"] + (y + 0.5) / ws["H"] * box["height"]


def status(page) -> str:
    return page.locator("#status").inner_text()


def test_annotate_in_a_real_browser(browser, server, annotate_ui_workspace, tmp_path):
    ws = annotate_ui_workspace
    T, H, W = ws["T"], ws["H"], ws["W"]
    (cx, cy), box = ws["click"], ws["box"]
    page = browser.new_page(viewport={"width": 1400, "height": 720})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(WAIT_MS)

    # open the page and a video
    page.goto(server["url"])
    page.wait_for_selector("#videos button[data-video-id='clip-a']")
    assert page.locator("#videos button").count() == 2
    page.click("#videos button[data-video-id='clip-a']")
    page.wait_for_function("() => document.querySelector('#status').textContent.includes('click on the artifact')")
    assert page.locator("#frame-label").inner_text() == f"frame 0 / {T - 1}"
    page.wait_for_function("() => bv.clicks.ws && bv.clicks.ws.readyState === WebSocket.OPEN")

    # object 1: a + click, labelled
    page.mouse.click(*canvas_point(page, ws, cx, cy))
    page.wait_for_function("() => bv.state.objects.length === 1")
    page.select_option("[data-testid=subcategory-1]", "visual_breakdown")
    page.wait_for_function("() => document.querySelector('#status').textContent === 'object 1: visual_breakdown'")

    # object 2: a box, labelled
    page.click("#new-object")
    page.check("[data-testid=tool-box]")
    page.mouse.move(*canvas_point(page, ws, box[0], box[1]))
    page.mouse.down()
    page.mouse.move(*canvas_point(page, ws, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2), steps=4)
    page.mouse.move(*canvas_point(page, ws, box[2], box[3]), steps=4)
    page.mouse.up()
    page.wait_for_function("() => bv.state.objects.length === 2")
    page.select_option("[data-testid=subcategory-2]", "attribute_shift")
    page.wait_for_function("() => document.querySelector('#status').textContent === 'object 2: attribute_shift'")

    # propagate (streamed, with progress)
    page.click("#propagate")
    page.wait_for_selector("body[data-propagated='1']")
    assert status(page) == f"propagated {T} frames"
    assert page.locator("#progress").evaluate("p => [p.value, p.max]") == [T, T]
    assert page.evaluate("() => Object.keys(bv.state.frames).length") == T

    # refine frame 3 with a − click on object 1 (reached with the arrow keys)
    page.locator("#canvas").focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert page.locator("#frame-label").inner_text() == f"frame 3 / {T - 1}"
    page.locator("[data-testid=object-1] .swatch").click()
    page.check("[data-testid=tool-negative]")
    page.mouse.click(*canvas_point(page, ws, 100, 20))
    page.wait_for_function("() => bv.state.actions.filter(a => a.op === 'prompt').length === 3")
    assert "frame 3, object 1" in status(page)
    assert page.evaluate("() => bv.clicks.sent") == 3  # every prompt went over the click channel

    shot = tmp_path / "annotate_ui.png"  # mid-annotation: two objects, a refinement on frame 3
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("BROKENVIDEOS_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # undo the refinement, export
    page.click("#undo")
    page.wait_for_function("() => document.querySelector('#status').textContent === 'undid prompt on frame 3'")
    page.click("#export")
    page.wait_for_selector("body[data-exported='1']")
    assert status(page) == "exported", status(page)  # no frame changed by the replay
    assert errors == []

    # what the page shows is what was exported (this also checks the page's RLE decoder)
    shown = np.array(page.evaluate(f"""() => {{
        const out = [];
        for (let t = 0; t < {T}; t++) out.push(Array.from(bv.idMap(t)));
        return out;
    }}"""), np.uint8).reshape(T, H, W)
    page.close()

    out = server["out"]
    mask_dir = out / "masks" / "clip-a"
    assert sorted(p.name for p in mask_dir.glob("*.png")) == [f"{t:05d}.png" for t in range(T)]
    for name in ("instances.json", "rle.json"):
        assert (mask_dir / name).is_file()
    exported = read_video_masks(mask_dir, T, (H, W))
    assert np.array_equal(shown, exported)

    prompts = load_prompts(out / "prompts.json").for_video("clip-a")
    assert sorted(prompts.instances) == [1, 2] and all(len(i.prompts) == 1 for i in prompts.instances.values())
    click = prompts.instances[1].initial.points[0]
    assert prompts.instances[1].subcategory == "visual_breakdown" and prompts.instances[2].subcategory == "attribute_shift"
    assert abs(click[0] - cx) <= 1 and abs(click[1] - cy) <= 1
    x0, y0, x1, y1 = prompts.instances[2].initial.box
    assert max(abs(a - b) for a, b in zip((x0, y0, x1, y1), box)) <= 1.5
    # non-empty where clicked: object 1 at the click, object 2 inside its box
    assert exported[0][int(round(click[1])), int(round(click[0]))] == 1
    assert (exported[0][int(y0):int(y1), int(x0):int(x1)] == 2).any()
    assert read_instances(mask_dir) == {1: "visual_breakdown", 2: "attribute_shift"}
    saved = json.loads((out / "sessions" / "clip-a.json").read_text())
    assert [a["op"] for a in saved["actions"]] == ["prompt", "prompt", "propagate"]

    # the annotate step replays prompts.json to identical PNGs
    row = next(r for r in ws["rows"] if r["video_id"] == "clip-a")
    replayed = replay_with_annotate_step(ws, out / "prompts.json", [row], tmp_path / "replay")
    assert np.array_equal(replayed["clip-a"], exported)
    for t in range(T):
        assert (replayed_dir(tmp_path / "replay", "clip-a") / f"{t:05d}.png").read_bytes() == \
            (mask_dir / f"{t:05d}.png").read_bytes()


def test_the_pages_rle_decoder_equals_pycocotools(browser, server):
    """The page draws what the server sent: its decoder against pycocotools' on random masks,
    the empty and the full mask, odd sizes and runs that wrap a column."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(14)
    masks = [np.zeros((5, 7), np.uint8), np.ones((5, 7), np.uint8), np.eye(9, 4, dtype=np.uint8)]
    masks += [(rng.random((h, w)) < p).astype(np.uint8) for h, w, p in ((96, 128, 0.3), (13, 31, 0.9), (1, 17, 0.5))]
    blob = np.zeros((48, 64), np.uint8)
    blob[10:30, 5:40] = 1
    masks.append(blob)
    rles = []
    for m in masks:
        r = mask_utils.encode(np.asfortranarray(m))
        rles.append({"size": r["size"], "counts": r["counts"].decode("ascii")})
    page = browser.new_page()
    page.goto(server["url"])
    page.wait_for_function("() => typeof decodeRle === 'function'")
    got = page.evaluate("(rles) => rles.map((r) => { const m = decodeRle(r); return m ? Array.from(m) : null; })", rles)
    page.close()
    for m, g in zip(masks, got):
        if not m.any():
            assert g is None  # an emptied object: nothing to draw
        else:
            assert np.array_equal(np.asarray(g, np.uint8).reshape(m.shape), mask_utils.decode(
                mask_utils.encode(np.asfortranarray(m))))
