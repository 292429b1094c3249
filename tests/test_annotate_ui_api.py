"""annotate-ui's JSON API: the annotation workflow, its exports replayed by the annotate step,
and every bad-input and security case of issue 14 (random-weight tiny SAM2, 256 px, CPU)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

pytest.importorskip("sam2")

from conftest import run_cli  # noqa: E402

from brokenvideos.annotate.export import decode_coco_rle  # noqa: E402
from brokenvideos.annotate.prompts_file import load_prompts  # noqa: E402
from brokenvideos.annotate.ui.app import MAX_BODY_BYTES, create_app  # noqa: E402
from brokenvideos.annotate.ui.catalogue import Catalogue  # noqa: E402
from brokenvideos.annotate.ui.journal import SessionJournal  # noqa: E402
from brokenvideos.annotate.ui.server import build_store, check_host  # noqa: E402
from brokenvideos.annotate.ui.session import BadRequest, Busy  # noqa: E402
from brokenvideos.errors import BrokenVideosError, InputError  # noqa: E402
from brokenvideos.io.masks import read_instances, read_video_masks  # noqa: E402
from brokenvideos.io.video import read_video  # noqa: E402
from brokenvideos.prompts.taxonomy import SUBCATEGORIES  # noqa: E402

TOKEN = "test-token"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier and faster on the shared 2-core machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def store(annotate_ui_workspace, tmp_path_factory):
    store = build_store(annotate_ui_workspace["config"], annotate_ui_workspace["videos_parquet"],
                        tmp_path_factory.mktemp("ui_out"))
    yield store
    store.close_all()


@pytest.fixture(scope="module")
def client(store):
    from fastapi.testclient import TestClient

    with TestClient(create_app(store, TOKEN), headers={"X-Token": TOKEN}) as c:
        yield c


def decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})


def fresh_session(client, video_id: str) -> str:
    """A session with nothing saved (earlier tests may have left prompts on disk)."""
    sid = client.post("/api/sessions", json={"video_id": video_id}).json()["session_id"]
    assert client.delete(f"/api/sessions/{sid}", params={"discard": "true"}).status_code == 200
    r = client.post("/api/sessions", json={"video_id": video_id})
    assert r.status_code == 200 and r.json()["restored"] is False and r.json()["actions"] == []
    return r.json()["session_id"]


def detail(r) -> str:
    d = r.json()["detail"]
    assert isinstance(d, str) and "\n" not in d, d  # one line
    return d


# --- the workflow --------------------------------------------------------------------------------

def test_videos_and_frames(client, annotate_ui_workspace):
    ws = annotate_ui_workspace
    assert client.get("/api/videos").json() == [
        {"video_id": v, "num_frames": ws["T"], "width": ws["W"], "height": ws["H"]} for v in ("clip-a", "clip-b")]
    r = client.get("/api/videos/clip-a/frames/2")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    import io

    jpeg = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), np.float32)
    decoded = read_video(ws["rows"][0]["path"]).astype(np.float32)
    errors = [np.abs(jpeg - f).mean() for f in decoded]
    assert jpeg.shape == decoded[2].shape and int(np.argmin(errors)) == 2 and errors[2] < 8  # frame 2, JPEG-coded
    assert [t["subcategory"] for t in client.get("/api/taxonomy").json()] == SUBCATEGORIES


def test_prompt_propagate_refine_undo_export_replays_identically(client, store, annotate_ui_workspace, tmp_path):
    ws = annotate_ui_workspace
    sid = fresh_session(client, "clip-b")
    (cx, cy), box = ws["click"], ws["box"]
    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]})
    assert r.status_code == 200, r.text
    assert r.json()["frame"] == 0 and decode(r.json()["masks"]["1"])[int(cy), int(cx)] == 1  # mask where clicked
    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 2, "box": list(box)})
    m2 = decode(r.json()["masks"]["2"])
    assert m2.shape == (ws["H"], ws["W"]) and m2[int(box[1]):int(box[3]), int(box[0]):int(box[2])].any()
    for obj, sub in ((1, "visual_breakdown"), (2, "attribute_shift")):
        assert client.put(f"/api/sessions/{sid}/objects/{obj}", json={"subcategory": sub}).json() == \
            {"object_id": obj, "subcategory": sub}

    r = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "both"})
    assert r.status_code == 200 and r.json()["cancelled"] is False
    assert sorted(map(int, r.json()["frames"])) == list(range(ws["T"]))  # forward from frame 0 covers the video
    propagated = store.get(sid).masks.copy()

    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 3, "object_id": 1, "points": [[5, 90]], "labels": [0]})
    assert r.status_code == 200
    r = client.post(f"/api/sessions/{sid}/undo")
    assert r.status_code == 200 and r.json()["undone"]["frame"] == 3
    assert np.array_equal(store.get(sid).masks, propagated)  # undo rebuilt exactly the propagated state
    frames = {int(t): v for t, v in r.json()["frames"].items()}
    for t in range(ws["T"]):
        assert set(frames[t]) == {str(k) for k in np.unique(propagated[t]) if k}

    r = client.post(f"/api/sessions/{sid}/export")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["frames_changed_by_replay"] == []  # prompts, propagate both ways: the replay is the same calls
    out = store.out
    mask_dir = out / "masks" / "clip-b"
    assert doc["paths"]["masks"] == [str(mask_dir / f"{t:05d}.png") for t in range(ws["T"])]
    exported = read_video_masks(mask_dir, ws["T"], (ws["H"], ws["W"]))
    assert np.array_equal(exported, propagated)
    with Image.open(mask_dir / "00000.png") as img:
        assert img.mode == "P"
    assert exported[0][int(cy), int(cx)] == 1
    assert read_instances(mask_dir) == {k: v for k, v in {1: "visual_breakdown", 2: "attribute_shift"}.items()
                                        if (exported == k).any()}
    rle = json.loads((mask_dir / "rle.json").read_text())
    assert np.array_equal(decode_coco_rle(rle), exported)
    prompts = load_prompts(out / "prompts.json").for_video("clip-b")  # schema-valid
    assert [p.frame for p in prompts.instances[1].prompts] == [0] and prompts.instances[2].initial.box == box

    # The annotate step replays prompts.json to the same PNGs.
    row = next(r for r in ws["rows"] if r["video_id"] == "clip-b")
    replayed = replay_with_annotate_step(ws, out / "prompts.json", [row], tmp_path)
    assert np.array_equal(replayed["clip-b"], exported)
    for t in range(ws["T"]):
        assert (replayed_dir(tmp_path, "clip-b") / f"{t:05d}.png").read_bytes() == (mask_dir / f"{t:05d}.png").read_bytes()


def replayed_dir(workdir, video_id):
    return workdir / "results" / "masks" / video_id


def replay_with_annotate_step(ws, prompts_file, rows, workdir) -> dict[str, np.ndarray]:
    """`brokenvideos annotate` with annotate.method: sam2 and the exported prompts_file."""
    import pandas as pd

    from conftest import write_config

    from brokenvideos.io.tables import write_table

    config = write_config(workdir, annotate={"method": "sam2", "export": [],
                                             "sam2": {**ws["sam2"], "prompts_file": str(prompts_file)}})
    write_table(pd.DataFrame(rows), workdir / "shard.parquet", kind="videos")
    torch.set_num_threads(1)
    result = run_cli(["annotate", "--config", config, "--videos", "shard.parquet", "--out", "ann.parquet"], cwd=workdir)
    assert result.code == 0, result.stderr
    return {r["video_id"]: read_video_masks(replayed_dir(workdir, r["video_id"]), ws["T"], (ws["H"], ws["W"]))
            for r in rows}


def test_refinement_after_propagation_is_kept_by_export(client, store, annotate_ui_workspace):
    """prompts, propagate, a − click on a later frame, propagate: still exactly the replay's calls."""
    ws = annotate_ui_workspace
    sid = fresh_session(client, "clip-a")
    (cx, cy) = ws["click"]
    client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]})
    client.put(f"/api/sessions/{sid}/objects/1", json={"subcategory": "motion_anomaly"})
    assert client.post(f"/api/sessions/{sid}/propagate", json={}).status_code == 200
    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 4, "object_id": 1, "points": [[5, 90]], "labels": [0]})
    assert r.status_code == 200 and r.json()["frame"] == 4
    assert client.post(f"/api/sessions/{sid}/propagate", json={"direction": "both"}).status_code == 200
    shown = store.get(sid).masks.copy()
    doc = client.post(f"/api/sessions/{sid}/export").json()
    assert doc["frames_changed_by_replay"] == []
    assert np.array_equal(read_video_masks(store.out / "masks" / "clip-a", ws["T"], (ws["H"], ws["W"])), shown)
    assert [p.frame for p in load_prompts(store.out / "prompts.json").for_video("clip-a").instances[1].prompts] == [0, 4]
    # prompts.json holds both videos exported so far
    assert set(load_prompts(store.out / "prompts.json").videos) >= {"clip-a"}


def test_backward_from_a_chosen_frame_tracks_only_those_frames(client, store, annotate_ui_workspace):
    """Refinement on any frame: a prompt on frame 3 tracked backward covers 3, 2, 1, 0 and nothing after."""
    ws = annotate_ui_workspace
    sid = fresh_session(client, "clip-b")
    cx, cy = ws["click"]
    client.post(f"/api/sessions/{sid}/prompts", json={"frame": 3, "object_id": 1, "points": [[cx + 9, cy]], "labels": [1]})
    r = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "backward", "start_frame": 3})
    assert r.status_code == 200 and r.json()["total"] == 4 and r.json()["done"] == 4
    assert sorted(map(int, r.json()["frames"])) == [0, 1, 2, 3]
    masks = store.get(sid).masks
    assert not masks[4:].any()  # never tracked
    assert store.get(sid).actions[-1] == {"op": "propagate", "start_frame": 3, "tracked": [None, 4],
                                          "direction": "backward"}


def test_cancelled_propagation_stops_early_and_blocks_edits_while_running(client, store, annotate_ui_workspace):
    ws = annotate_ui_workspace
    sid = fresh_session(client, "clip-a")
    cx, cy = ws["click"]
    client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]})
    session = store.get(sid)
    job = session.start_propagation("forward")
    first = job.events.get(timeout=60)
    assert first["type"] == "frame" and first["total"] == ws["T"]
    with pytest.raises(Busy):  # edits wait for the propagation
        session.add_prompt(1, 1, [[cx, cy]], [1])
    r = client.post(f"/api/sessions/{sid}/undo")
    assert r.status_code == 409 and "propagation is running" in detail(r)
    assert client.post(f"/api/sessions/{sid}/propagate/cancel").json() == {"cancelled": True}
    assert job.finished.wait(60)
    events = [first]
    while not job.events.empty():
        events.append(job.events.get())
    assert events[-1]["type"] == "done" and events[-1]["cancelled"] is True and events[-1]["done"] < ws["T"]
    assert session.actions[-1] == {"op": "propagate", "start_frame": None, "tracked": [job.done, None],
                                   "direction": "forward"}
    # the cancelled run is replayed to the same point (what restore and undo rely on)
    before = session.masks.copy()
    session._rebuild()
    assert np.array_equal(session.masks, before)


def test_delete_object_and_more_than_three_objects(client, store, annotate_ui_workspace):
    sid = fresh_session(client, "clip-a")
    for obj in range(1, 6):  # 5 objects: more than Meta's demo allows
        r = client.post(f"/api/sessions/{sid}/prompts",
                        json={"frame": 1, "object_id": obj, "points": [[10 + 20 * obj, 40]], "labels": [1]})
        assert r.status_code == 200
    assert [o["object_id"] for o in client.get(f"/api/sessions/{sid}").json()["objects"]] == [1, 2, 3, 4, 5]
    r = client.delete(f"/api/sessions/{sid}/objects/3")
    assert r.status_code == 200 and [o["object_id"] for o in r.json()["objects"]] == [1, 2, 4, 5]
    assert all(a["object_id"] != 3 for a in store.get(sid).actions)
    assert 3 not in np.unique(store.get(sid).masks)
    r = client.post(f"/api/sessions/{sid}/export")
    assert r.status_code == 400 and detail(r) == "object 1 has no subcategory: pick one before exporting"


# --- security ----------------------------------------------------------------------------------

def test_token_missing_wrong_header_and_cookie(store):
    from fastapi.testclient import TestClient

    with TestClient(create_app(store, TOKEN)) as bare:
        r = bare.get("/api/videos")
        assert r.status_code == 401 and detail(r).startswith("missing token")
        r = bare.get("/api/videos", headers={"X-Token": "nope"})
        assert r.status_code == 403 and detail(r) == "wrong token"
        assert bare.get("/api/videos", headers={"X-Token": TOKEN}).status_code == 200
        assert bare.post("/api/sessions", json={"video_id": "clip-a"}, headers={"X-Token": TOKEN + "x"}).status_code == 403
        assert bare.get("/?token=nope").status_code == 401
        assert bare.get("/api/videos").status_code == 401  # a wrong page token set no cookie
        r = bare.get(f"/?token={TOKEN}")
        assert r.status_code == 200 and "<canvas" in r.text
        cookie = r.headers["set-cookie"]
        assert "bv_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert bare.get("/api/videos").status_code == 200  # the page's cookie is the token
        assert bare.get("/static/app.js").status_code == 200


TRAVERSALS = [
    "/api/videos/../../etc/passwd/frames/0",
    "/api/videos/%2e%2e/frames/0",
    "/api/videos/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/frames/0",
    "/api/videos/..%2f..%2fclip-a/frames/0",
    "/api/videos/%252e%252e%252fclip-a/frames/0",
    "/api/videos/%2Fetc%2Fpasswd/frames/0",
    "/api/videos//etc/passwd/frames/0",
    "/api/videos/..%5c..%5cclip-a/frames/0",
    "/api/videos/clip-a%00/frames/0",
    "/api/videos/clip-a/frames/..%2f0",
    "/static/..%2fapp.py",
    "/static/%2e%2e%2fsession.py",
    "/static/../app.py",
    "/static/index.html%00.js",
]


@pytest.fixture(scope="module")
def live(store):
    """The app under uvicorn on 127.0.0.1 (a thread), for requests no HTTP client would normalize."""
    import threading

    import uvicorn

    from brokenvideos.annotate.ui.server import bind, uvicorn_config

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(create_app(store, TOKEN)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    sock.close()


def raw_get(port: int, path: str) -> int:
    """Send the request line byte for byte; return the status code."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Token: {TOKEN}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def test_path_traversal_is_404(live):
    assert raw_get(live, "/api/videos/clip-a/frames/0") == 200
    for path in TRAVERSALS:
        assert raw_get(live, path) == 404, path
    assert raw_get(live, "/api/videos") == 200  # still serving


@pytest.mark.parametrize("video_id", ["../clip-a", "/etc/passwd", "%2e%2e", "clip-a/../clip-b", "..", "", "CLIP-A"])
def test_session_video_ids_are_looked_up_not_opened(client, video_id):
    r = client.post("/api/sessions", json={"video_id": video_id})
    assert r.status_code == 404 and detail(r) == f"unknown video {video_id!r}"


def test_unsafe_ids_in_a_manifest_are_refused_and_exports_cannot_leave_out(client, store, annotate_ui_workspace, tmp_path):
    import pandas as pd

    from brokenvideos.io.tables import write_table

    row = {**annotate_ui_workspace["rows"][0], "video_id": "../escape"}
    write_table(pd.DataFrame([row]), tmp_path / "bad.parquet", kind="videos")
    with pytest.raises(InputError, match=r"bad\.parquet: video id '\.\./escape' is not a plain name"):
        Catalogue.load(tmp_path / "bad.parquet")
    # second lock: even a session whose id was tampered with cannot write outside --out
    sid = client.post("/api/sessions", json={"video_id": "clip-a"}).json()["session_id"]
    session = store.get(sid)
    saved = session.entry
    session.entry = replace(saved, video_id="../../escape")
    try:
        with pytest.raises(BadRequest, match="would leave --out"):
            session.export(store.out)
    finally:
        session.entry = saved
    assert not (store.out.parent / "escape").exists()


def test_remote_host_needs_allow_remote(annotate_ui_workspace, tmp_path):
    ws = annotate_ui_workspace
    t0 = time.perf_counter()
    result = run_cli(["annotate-ui", "--videos", ws["videos_dir"], "--out", tmp_path / "o", "--config", ws["config"],
                      "--host", "0.0.0.0"])
    assert result.code == 2 and time.perf_counter() - t0 < 5  # refused before loading any model
    assert result.error == ("error: --host 0.0.0.0 would serve the annotation tool beyond this machine: add "
                            "--allow-remote to do that on purpose (the token is still required)")
    assert result.stdout == ""
    check_host("0.0.0.0", allow_remote=True)
    check_host("127.0.0.1", allow_remote=False)
    with pytest.raises(BrokenVideosError):
        check_host("192.168.1.5", allow_remote=False)


def test_missing_checkpoint_uses_the_annotate_step_rules(annotate_ui_workspace, tmp_path):
    from conftest import write_config

    config = write_config(tmp_path, annotate={"method": "sam2", "sam2": {"checkpoint": str(tmp_path / "no.pt")}})
    result = run_cli(["annotate-ui", "--videos", annotate_ui_workspace["videos_dir"], "--out", tmp_path / "o",
                      "--config", config, "--port", "0"])
    assert result.code == 2 and result.error.startswith(f"error: {tmp_path / 'no.pt'}: SAM2 checkpoint not found")
    assert "sam2.1_hiera_tiny.pt" in result.error


# --- bad input -----------------------------------------------------------------------------------

def test_malformed_json_and_wrong_types(client):
    sid = client.post("/api/sessions", json={"video_id": "clip-a"}).json()["session_id"]
    url = f"/api/sessions/{sid}/prompts"
    r = client.post(url, content=b'{"frame": 0, "object_id": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and detail(r).startswith("malformed JSON")
    r = client.post(url, json={"frame": "0", "object_id": 1, "points": [[1, 1]], "labels": [1]})
    assert r.status_code == 400 and detail(r).startswith("frame: Input should be a valid integer")
    r = client.post(url, json={"frame": 0, "object_id": 1, "points": [[1, 1, 1]], "labels": [1]})
    assert r.status_code == 400 and detail(r).startswith("points.0: List should have at most 2 items")
    r = client.post(url, json={"frame": 0, "object_id": 1, "points": [[1, 1]], "labels": [1], "extra": 1})
    assert r.status_code == 400 and detail(r).startswith("extra: Extra inputs are not permitted")
    r = client.post(url, json={"object_id": 1, "points": [[1, 1]], "labels": [1]})
    assert r.status_code == 400 and detail(r) == "frame: Field required"
    r = client.post(url, json=[1, 2])
    assert r.status_code == 400
    r = client.post(f"/api/sessions/{sid}/propagate", json={"direction": "sideways"})
    assert r.status_code == 400 and detail(r).startswith("direction: Input should be 'both', 'forward' or 'backward'")
    assert client.get("/api/videos").status_code == 200


def test_out_of_range_frames(client, annotate_ui_workspace):
    T = annotate_ui_workspace["T"]
    sid = client.post("/api/sessions", json={"video_id": "clip-a"}).json()["session_id"]
    for frame in (-1, T, 10**9):
        r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": frame, "object_id": 1, "points": [[5, 5]], "labels": [1]})
        assert r.status_code == 400 and detail(r) == f"frame {frame} is outside the video (0..{T - 1})"
    for index in (str(T), "-1", "abc", "1e3", "99999999999999999999"):
        r = client.get(f"/api/videos/clip-a/frames/{index}")
        assert r.status_code == 404 and "outside the video" in detail(r)
    r = client.post(f"/api/sessions/{sid}/propagate", json={"start_frame": T})
    assert r.status_code == 400 and detail(r) == f"frame {T} is outside the video (0..{T - 1})"


@pytest.mark.parametrize("body, message", [
    ({"points": [[129, 5]], "labels": [1]}, "point (129, 5) is outside the 128x96 frame"),
    ({"points": [[-1, 5]], "labels": [1]}, "point (-1, 5) is outside the 128x96 frame"),
    ({"points": [[5, 96.5]], "labels": [0]}, "point (5, 96.5) is outside the 128x96 frame"),
    ({"box": [10, 10, 200, 20]}, "box corner (200, 20) is outside the 128x96 frame"),
    ({"box": [30, 10, 20, 20]}, "box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got [30.0, 10.0, 20.0, 20.0]"),
    ({"points": [[5, 5]], "labels": []}, "1 points but 0 labels"),
    ({"points": [[5, 5]], "labels": [2]}, "label 2 must be 1 (+) or 0 (-)"),
    ({}, "a prompt needs at least one point or a box"),
    ({"object_id": 0, "points": [[5, 5]], "labels": [1]}, "object_id 0 must be an integer in 1..255"),
    ({"object_id": 256, "points": [[5, 5]], "labels": [1]}, "object_id 256 must be an integer in 1..255"),
])
def test_prompts_outside_the_frame_or_inconsistent(client, body, message):
    sid = client.post("/api/sessions", json={"video_id": "clip-a"}).json()["session_id"]
    before = client.get(f"/api/sessions/{sid}").json()["actions"]
    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, **body})
    assert r.status_code == 400 and detail(r) == message
    assert client.get(f"/api/sessions/{sid}").json()["actions"] == before  # nothing recorded


def test_unknown_sessions_objects_and_subcategories(client):
    sid = fresh_session(client, "clip-a")
    client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[5, 5]], "labels": [1]})
    r = client.put(f"/api/sessions/{sid}/objects/9", json={"subcategory": "visual_breakdown"})
    assert r.status_code == 404 and detail(r) == "object 9 is not in this session"
    assert client.delete(f"/api/sessions/{sid}/objects/9").status_code == 404
    for sub in ("not_a_subcategory", "normal", "technical", ""):
        r = client.put(f"/api/sessions/{sid}/objects/1", json={"subcategory": sub})
        assert r.status_code == 400 and detail(r) == f"subcategory {sub!r} is not one of the 11 taxonomy subcategories"
    r = client.put(f"/api/sessions/{sid}/objects/x", json={"subcategory": "visual_breakdown"})
    assert r.status_code == 400
    for method, path in (("GET", ""), ("POST", "/undo"), ("POST", "/export"), ("DELETE", "")):
        r = client.request(method, f"/api/sessions/nope{path}")
        assert r.status_code == 404 and detail(r) == "unknown session 'nope'"
    sid2 = fresh_session(client, "clip-b")
    r = client.post(f"/api/sessions/{sid2}/undo")
    assert r.status_code == 400 and detail(r) == "nothing to undo"
    r = client.post(f"/api/sessions/{sid2}/propagate", json={})
    assert r.status_code == 400 and detail(r) == "nothing to propagate: add a click or a box first"


def test_oversized_bodies(client):
    sid = client.post("/api/sessions", json={"video_id": "clip-a"}).json()["session_id"]
    url = f"/api/sessions/{sid}/prompts"
    big = {"frame": 0, "object_id": 1, "points": [[1, 1]] * 20000, "labels": [1] * 20000}
    r = client.post(url, json=big)
    assert r.status_code == 413 and detail(r) == f"request body over {MAX_BODY_BYTES} bytes"

    def chunks():  # no Content-Length: the cap still holds
        for _ in range(100):
            yield b" " * 1024

    r = client.post(url, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/api/videos").status_code == 200


def test_predictor_failure_is_reported_and_the_session_recovers(client, store, annotate_ui_workspace):
    cx, cy = annotate_ui_workspace["click"]
    sid = fresh_session(client, "clip-a")
    ok = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]})
    before = store.get(sid).masks.copy()
    predictor = store.predictor

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    predictor.add_new_points_or_box = boom
    try:
        r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 2, "object_id": 1, "points": [[9, 9]], "labels": [1]})
        assert r.status_code == 500 and detail(r) == "SAM2 predictor failed: RuntimeError: out of memory (simulated)"
    finally:
        del predictor.add_new_points_or_box
    predictor.propagate_in_video = boom
    try:
        r = client.post(f"/api/sessions/{sid}/propagate", json={})
        assert r.status_code == 500 and detail(r) == "SAM2 predictor failed: RuntimeError: out of memory (simulated)"
        r = client.post(f"/api/sessions/{sid}/propagate", json={"stream": True})
        lines = [json.loads(line) for line in r.text.splitlines()]
        assert lines == [{"type": "error", "detail": "SAM2 predictor failed: RuntimeError: out of memory (simulated)"}]
    finally:
        del predictor.propagate_in_video
    state = client.get(f"/api/sessions/{sid}").json()
    assert len(state["actions"]) == 1  # failures recorded nothing
    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 2, "box": [80, 55, 115, 85]})
    assert r.status_code == 200  # the state was rebuilt from the log first:
    session = store.get(sid)
    assert 2 not in session.sam.state["point_inputs_per_obj"][0]  # the failed click's points are gone
    shown = session.masks.copy()
    session._rebuild()
    assert np.array_equal(session.masks, shown)  # and what is shown is what the log gives
    ids_before = set(np.unique(before[0]))
    assert ids_before == {0, 1} and np.array_equal(decode(ok.json()["masks"]["1"]), before[0] == 1)


# --- restart -----------------------------------------------------------------------------------

def test_session_survives_restart(annotate_ui_workspace, tmp_path):
    """A second server (new predictor, new store) on the same --out restores the prompts and masks."""
    from fastapi.testclient import TestClient

    ws = annotate_ui_workspace
    cx, cy = ws["click"]
    store = build_store(ws["config"], ws["videos_parquet"], tmp_path / "out")
    with TestClient(create_app(store, TOKEN), headers={"X-Token": TOKEN}) as c:
        sid = c.post("/api/sessions", json={"video_id": "clip-a"}).json()["session_id"]
        c.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]})
        c.put(f"/api/sessions/{sid}/objects/1", json={"subcategory": "uncanny_valley"})
        c.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 2, "box": list(ws["box"])})
        assert c.post(f"/api/sessions/{sid}/propagate", json={"direction": "forward"}).json()["done"] == ws["T"]
        c.post(f"/api/sessions/{sid}/prompts", json={"frame": 2, "object_id": 1, "points": [[5, 90]], "labels": [0]})
        before = c.get(f"/api/sessions/{sid}").json()
    store.close_all()
    del store
    lines = (tmp_path / "out" / "sessions" / "clip-a.json").read_text().splitlines()
    assert len(lines) == 2 and "append" in json.loads(lines[1])  # the propagation's snapshot, then the click
    saved = SessionJournal(tmp_path / "out" / "sessions" / "clip-a.json").read()
    assert [a["op"] for a in saved["actions"]] == ["prompt", "prompt", "propagate", "prompt"]

    store = build_store(ws["config"], ws["videos_parquet"], tmp_path / "out")
    with TestClient(create_app(store, "another-token"), headers={"X-Token": "another-token"}) as c:
        after = c.post("/api/sessions", json={"video_id": "clip-a"}).json()
    store.close_all()
    assert after["restored"] is True and after["session_id"] != before["session_id"]
    assert after["actions"] == before["actions"] and after["objects"] == before["objects"]
    assert after["frames"] == before["frames"]  # the same masks, rebuilt from the saved prompts
    assert after["objects"][0]["subcategory"] == "uncanny_valley"
    assert any(after["frames"][str(t)] for t in range(ws["T"]))


def _prompt(obj, frame=0, xy=(10.0, 10.0)):
    return {"op": "prompt", "object_id": obj, "frame": frame, "points": [list(xy)], "labels": [1]}


def test_journal_appends_clicks_and_drops_only_a_torn_last_line(tmp_path, caplog):
    path = tmp_path / "s.json"
    j = SessionJournal(path)
    assert not j.exists
    j.rewrite({"video_id": "v", "objects": {"1": {"subcategory": None}}, "actions": [_prompt(1)]})
    j.append(_prompt(2))
    j.append(_prompt(1, frame=3))
    assert SessionJournal(path).read()["actions"] == [_prompt(1), _prompt(2), _prompt(1, frame=3)]
    j.rewrite({"video_id": "v", "objects": {}, "actions": []})  # a rewrite folds the clicks away...
    j.append(_prompt(4))  # ...and appends go to the new file, not the renamed-over one
    assert SessionJournal(path).read()["actions"] == [_prompt(4)]
    j.close()

    # a server killed mid-write: the last line is torn (no newline); it is dropped with a warning
    path.write_text(path.read_text() + '{"append": {"op": "pro')
    assert SessionJournal(path).read()["actions"] == [_prompt(4)]
    assert "torn last line" in caplog.text
    # a bad line anywhere else is not a crash's doing: refused
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "garbage", lines[1]]) + "\n")
    with pytest.raises(ValueError, match="line 2"):
        SessionJournal(path).read()


def test_a_click_appends_one_line_and_an_old_format_file_restores(client, store, annotate_ui_workspace):
    cx, cy = annotate_ui_workspace["click"]
    sid = fresh_session(client, "clip-a")
    session = store.get(sid)
    client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]})
    size = session.saved_path.stat().st_size
    client.post(f"/api/sessions/{sid}/prompts", json={"frame": 0, "object_id": 1, "points": [[5, 5]], "labels": [0]})
    added = session.saved_path.read_bytes()[size:]
    assert added.count(b"\n") == 1 and json.loads(added)["append"]["labels"] == [0]
    shown = client.get(f"/api/sessions/{sid}").json()
    # format 1 (one indented object, what earlier versions wrote) still opens, and is upgraded
    path = session.saved_path
    client.delete(f"/api/sessions/{sid}")
    doc = SessionJournal(path).read()
    path.write_text(json.dumps({"format": 1, "video_id": "clip-a", "objects": doc["objects"],
                                "actions": doc["actions"]}, indent=2))
    again = client.post("/api/sessions", json={"video_id": "clip-a"}).json()
    assert again["restored"] is True and again["frames"] == shown["frames"]
    assert json.loads(path.read_text().splitlines()[0])["format"] == 2


def test_a_label_saved_during_a_click_neither_drops_nor_repeats_it(client, store, annotate_ui_workspace,
                                                                   monkeypatch):
    import threading

    cx, cy = annotate_ui_workspace["click"]
    sid = fresh_session(client, "clip-a")
    session = store.get(sid)
    session.add_prompt(0, 1, [[cx, cy]], [1])
    in_click, real_append = threading.Event(), session.journal.append

    def slow_append(action):  # the click is logged in memory and about to reach the file
        in_click.set()
        time.sleep(0.3)
        real_append(action)

    monkeypatch.setattr(session.journal, "append", slow_append)
    # a PUT runs in a worker thread while the click runs on the event loop
    labeller = threading.Thread(target=lambda: (in_click.wait(), session.set_subcategory(1, "motion_anomaly")))
    labeller.start()
    session.add_prompt(2, 1, [[5.0, 5.0]], [0])
    labeller.join()
    saved = SessionJournal(session.saved_path).read()
    assert saved["actions"] == session.actions and len(session.actions) == 2
    assert saved["objects"]["1"]["subcategory"] == "motion_anomaly"


def test_a_failed_save_is_logged_and_the_click_still_answers(client, store, annotate_ui_workspace, caplog,
                                                             monkeypatch):
    cx, cy = annotate_ui_workspace["click"]
    sid = fresh_session(client, "clip-a")
    session = store.get(sid)
    session.add_prompt(0, 1, [[cx, cy]], [1])

    def full(action):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session.journal, "append", full)
    r = client.post(f"/api/sessions/{sid}/prompts", json={"frame": 1, "object_id": 1, "points": [[cx, cy]],
                                                          "labels": [1]})
    assert r.status_code == 200 and "1" in r.json()["masks"]
    assert "cannot save" in caplog.text and "No space left" in caplog.text
    monkeypatch.undo()
    session.save()  # the next rewrite holds everything again
    assert SessionJournal(session.saved_path).read()["actions"] == session.actions


# --- the click channel (WebSocket) ---------------------------------------------------------------

def test_click_channel_replies_with_exactly_the_changed_objects(client, store, annotate_ui_workspace):
    cx, cy = annotate_ui_workspace["click"]
    sid = fresh_session(client, "clip-a")
    for obj, xy in ((1, [cx, cy]), (2, [60, 40]), (3, [100, 20])):
        assert client.post(f"/api/sessions/{sid}/prompts",
                           json={"frame": 1, "object_id": obj, "points": [xy], "labels": [1]}).status_code == 200
    before = store.get(sid).masks[1].copy()
    with client.websocket_connect(f"/api/sessions/{sid}/clicks") as ws:
        ws.send_text(json.dumps({"id": 7, "frame": 1, "object_id": 2, "points": [[62, 44], [cx, cy]], "labels": [1, 1]}))
        reply = ws.receive_json()
    after = store.get(sid).masks[1]
    assert reply["id"] == 7 and reply["frame"] == 1 and 0 < reply["predictor_ms"] <= reply["server_ms"]
    changed = {int(k) for k in np.unique(np.concatenate([before[before != after], after[before != after]])) if k}
    assert changed, "the second click was meant to move pixels between objects"
    assert {int(k) for k in reply["masks"]} == changed | {2}
    # the page's view (before, patched with the reply) is the server's frame
    shown = before.copy()
    for k, rle in reply["masks"].items():
        shown[shown == int(k)] = 0
        shown[decode(rle).astype(bool)] = int(k)
    assert np.array_equal(shown, after)
    # and the click is logged like a POST's: the HTTP state and a rebuild agree
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["actions"][-1] == {"op": "prompt", "object_id": 2, "frame": 1, "points": [[62.0, 44.0], [cx, cy]],
                                    "labels": [1, 1]}
    session = store.get(sid)
    session._rebuild()
    assert np.array_equal(session.masks[1], after)


@pytest.mark.parametrize("message, status, start", [
    ("{not json", 400, "malformed JSON"),
    ("[1, 2]", 400, "a click is a JSON object"),
    (json.dumps({"frame": "0", "object_id": 1, "points": [[5, 5]], "labels": [1]}), 400, "frame: "),
    (json.dumps({"frame": 999, "object_id": 1, "points": [[5, 5]], "labels": [1]}), 400, "frame 999 is outside"),
    (json.dumps({"frame": 0, "object_id": 1, "points": [[500, 5]], "labels": [1]}), 400, "point (500, 5) is outside"),
    (json.dumps({"frame": 0, "object_id": 1, "points": [[5, 5]], "labels": [1], "extra": 1}), 400, "extra: "),
    (json.dumps({"frame": 0, "object_id": 1, "pad": "x" * MAX_BODY_BYTES}), 413, "message over"),
])
def test_click_channel_refuses_bad_messages_and_keeps_serving(client, annotate_ui_workspace, message, status, start):
    cx, cy = annotate_ui_workspace["click"]
    sid = fresh_session(client, "clip-b")
    with client.websocket_connect(f"/api/sessions/{sid}/clicks") as ws:
        ws.send_text(message)
        reply = ws.receive_json()
        assert reply["status"] == status and reply["detail"].startswith(start), reply
        assert "\n" not in reply["detail"]
        ws.send_bytes(json.dumps({"id": "ok", "frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]}).encode())
        reply = ws.receive_json()
        assert reply["id"] == "ok" and "1" in reply["masks"] and decode(reply["masks"]["1"]).any()


def test_click_channel_unknown_session_busy_and_predictor_failure(client, store, annotate_ui_workspace):
    cx, cy = annotate_ui_workspace["click"]
    with client.websocket_connect("/api/sessions/nope/clicks") as ws:
        ws.send_text(json.dumps({"id": 1, "frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]}))
        reply = ws.receive_json()
        assert reply["id"] == 1 and reply["status"] == 404 and "nope" in reply["detail"]
    sid = fresh_session(client, "clip-a")
    predictor = store.predictor

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    predictor.add_new_points_or_box = boom
    try:
        with client.websocket_connect(f"/api/sessions/{sid}/clicks") as ws:
            ws.send_text(json.dumps({"id": 2, "frame": 0, "object_id": 1, "points": [[cx, cy]], "labels": [1]}))
            reply = ws.receive_json()
    finally:
        del predictor.add_new_points_or_box
    assert reply == {"id": 2, "status": 500, "detail": "SAM2 predictor failed: RuntimeError: out of memory (simulated)",
                     "server_ms": reply["server_ms"]}
    assert client.get(f"/api/sessions/{sid}").json()["actions"] == []


def test_click_channel_needs_the_token_and_this_origin(store, client):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    sid = fresh_session(client, "clip-a")
    url = f"/api/sessions/{sid}/clicks"
    with TestClient(create_app(store, TOKEN)) as bare:
        for headers in ({}, {"X-Token": "nope"}, {"Cookie": "bv_token=nope"},
                        {"X-Token": TOKEN, "Origin": "http://evil.example"}):
            with pytest.raises(WebSocketDisconnect) as refused:
                with bare.websocket_connect(url, headers=headers):
                    pass
            assert refused.value.code == 1008, headers
        for headers in ({"X-Token": TOKEN}, {"Cookie": f"bv_token={TOKEN}", "Origin": "http://testserver"}):
            with bare.websocket_connect(url, headers=headers) as ws:
                ws.send_text("{}")
                assert ws.receive_json()["status"] == 400


def test_click_channel_on_the_real_server(live, client):
    """Through uvicorn's WebSocket stack: a foreign Origin gets HTTP 403 at the handshake, a frame
    over the cap closes the connection (1009) and nothing else is affected."""
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    sid = fresh_session(client, "clip-b")
    url = f"ws://127.0.0.1:{live}/api/sessions/{sid}/clicks"
    cookie = {"Cookie": f"bv_token={TOKEN}"}
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=cookie, origin="http://evil.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{live}/api/sessions/%2e%2e/clicks", additional_headers=cookie, open_timeout=10)
    with connect(url, additional_headers=cookie, origin=f"http://127.0.0.1:{live}", open_timeout=10) as ws:
        ws.send(json.dumps({"frame": 0, "object_id": 1, "points": [[20, 20]], "labels": [1]}))
        assert json.loads(ws.recv(timeout=60))["frame"] == 0
        ws.send("x" * (MAX_BODY_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd.code == 1009
    assert client.get("/api/videos").status_code == 200
