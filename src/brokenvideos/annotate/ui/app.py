"""The JSON API and the page (FastAPI). Masks travel as COCO RLE, ``{"size": [h, w], "counts": str}``.

Security model: the server binds to 127.0.0.1 unless told otherwise (``server``), every ``/api/``
call carries the token printed at start-up (``X-Token`` header, or the cookie the page gets when
opened with ``?token=``), request bodies are capped, and no request names a file: videos are ids
looked up in the catalogue, exports go under ``--out``.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError, conlist

from brokenvideos.annotate.ui.session import BadRequest, NotFound, UIError, WouldWait
from brokenvideos.annotate.ui.store import SessionStore
from brokenvideos.errors import BrokenVideosError
from brokenvideos.prompts.taxonomy import DESCRIPTIONS, SUBCATEGORIES, SUBCATEGORY_TO_CATEGORY

log = logging.getLogger(__name__)

TOKEN_COOKIE = "bv_token"
MAX_BODY_BYTES = 64 * 1024  # a prompt is a few hundred bytes; nothing legitimate comes near this
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}  # the only files ever served


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


XY = conlist(float, min_length=2, max_length=2)


class OpenSession(Body):
    video_id: StrictStr


class Prompt(Body):
    frame: StrictInt
    object_id: StrictInt
    points: conlist(XY, max_length=64) | None = None
    labels: list[StrictInt] | None = None
    box: conlist(float, min_length=4, max_length=4) | None = None


class Propagate(Body):
    direction: Literal["both", "forward", "backward"] = "both"
    start_frame: StrictInt | None = None
    stream: StrictBool = False


class Label(Body):
    subcategory: StrictStr


def _one_line(exc: RequestValidationError | ValidationError) -> str:
    """FastAPI lists every problem in detail; the page and scripts get the first, on one line."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    e = errors[0]
    if e.get("type") == "json_invalid":
        return f"malformed JSON: {e.get('ctx', {}).get('error', e.get('msg'))}"
    where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {e.get('msg')}{more}"


def _line(message) -> str:
    return " ".join(str(message).split())


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": _line(message)}, status_code=status)


class Guard:
    """ASGI middleware: token on /api/, a cap on request bodies, no dot-segments in paths.

    The body is read (up to the cap) before the app sees it, so an oversized chunked upload is
    refused as surely as one with an honest Content-Length.
    """

    def __init__(self, app, token: str, max_body: int = MAX_BODY_BYTES):
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            return await self._websocket(scope, receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if _unsafe_path(scope):
            return await _error(404, "not found")(scope, receive, send)
        headers = _headers(scope)
        if path.startswith("/api/"):
            problem = self._token_problem(headers)
            if problem == "missing token":
                return await _error(401, "missing token: send the X-Token header (or open the page URL printed "
                                         "at start-up)")(scope, receive, send)
            if problem:
                return await _error(403, problem)(scope, receive, send)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return await _error(413, f"request body over {self.max_body} bytes")(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body:
                return await _error(413, f"request body over {self.max_body} bytes")(scope, receive, send)
        body, sent = b"".join(chunks), False
        started = time.perf_counter()

        async def timed_send(message):
            # Server-Timing: the app's own share of a round trip (the rest is transport and scheduling)
            if message["type"] == "http.response.start":
                dur = f"app;dur={1000 * (time.perf_counter() - started):.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", dur)]}
            await send(message)

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # disconnect notices, for streaming responses
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, timed_send)

    def _token_problem(self, headers: dict[str, str]) -> str | None:
        """The token from ``X-Token`` or the page's cookie: None when it is right."""
        given = headers.get("x-token") or _cookie(headers.get("cookie", ""), TOKEN_COOKIE)
        if not given:
            return "missing token"
        return None if hmac.compare_digest(given.encode(), self.token.encode()) else "wrong token"

    async def _websocket(self, scope, receive, send):
        """The same token (the page's cookie) and path rules for the click channel, and its Origin
        must be this server: a page on another site cannot open it with the person's cookie. A
        refusal closes the handshake (the client sees HTTP 403), with the reason in the log."""
        headers = _headers(scope)
        origin, host = headers.get("origin"), headers.get("host", "")
        reason = ("unsafe path" if _unsafe_path(scope) else self._token_problem(headers) or
                  (f"origin {origin} is not this server" if origin is not None and origin.split("://", 1)[-1] != host
                   else None))
        if reason is None:
            return await self.app(scope, receive, send)
        log.warning("annotate-ui: websocket %s refused: %s", scope.get("path", ""), reason)
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008})


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _unsafe_path(scope) -> bool:
    path, raw = scope.get("path", ""), scope.get("raw_path", b"").lower()
    return ".." in path or "\\" in path or "\x00" in path or b"%2e%2e" in raw or b"%00" in raw


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _static(name: str) -> str:
    return resources.files("brokenvideos.annotate.ui").joinpath("static", name).read_text(encoding="utf-8")


def create_app(store: SessionStore, token: str, max_body: int = MAX_BODY_BYTES) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.close_all()

    app = FastAPI(title="brokenvideos annotate-ui", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.store = store

    @app.exception_handler(UIError)
    async def ui_error(request: Request, exc: UIError):
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return _error(400, _one_line(exc))

    @app.exception_handler(BrokenVideosError)
    async def bad_input(request: Request, exc: BrokenVideosError):
        return _error(500, str(exc))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # reported, and the server keeps serving
        log.exception("annotate-ui: %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error: {exc.__class__.__name__}: {exc}")

    # --- the page --------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, token: str | None = None):
        given = token or request.cookies.get(TOKEN_COOKIE)
        if not given or not hmac.compare_digest(given.encode(), store_token.encode()):
            return HTMLResponse("<p>Open the URL that <code>brokenvideos annotate-ui</code> printed "
                                "(it carries the token).</p>", status_code=401)
        response = HTMLResponse(_static("index.html"))
        response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
        return response

    store_token = token

    @app.get("/static/{name}")
    def static(name: str):
        if name not in STATIC_FILES:
            raise NotFound("not found")
        return Response(_static(name), media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})

    # --- videos ----------------------------------------------------------------------------

    @app.get("/api/taxonomy")
    def taxonomy():
        return [{"subcategory": s, "category": SUBCATEGORY_TO_CATEGORY[s], "description": DESCRIPTIONS[s]}
                for s in SUBCATEGORIES]

    @app.get("/api/videos")
    def videos():
        return [e.to_json() for e in store.catalogue.entries.values()]

    @app.get("/api/videos/{video_id}/frames/{index}")
    def frame(video_id: str, index: str):
        entry = store.catalogue.get(video_id)
        if entry is None:
            raise NotFound(f"unknown video {video_id!r}")
        if not index.isdigit() or int(index) >= entry.num_frames:
            raise NotFound(f"frame {index!r} is outside the video (0..{entry.num_frames - 1})")
        return Response(store.catalogue.frame_jpeg(video_id, int(index)), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    # --- sessions --------------------------------------------------------------------------

    @app.post("/api/sessions")
    def open_session(body: OpenSession):
        session, restored = store.open(body.video_id)
        return {**session.state_json(), "restored": restored}

    @app.get("/api/sessions/{sid}")
    def session_state(sid: str):
        return store.get(sid).state_json()

    @app.delete("/api/sessions/{sid}")
    def close_session(sid: str, discard: bool = False):
        store.close(sid, discard=discard)
        return {"closed": sid, "discarded": discard}

    @app.post("/api/sessions/{sid}/prompts")
    async def prompt(sid: str, body: Prompt):
        # A click is the latency-critical call (issue 14: within 1.2x the bare predictor call). When
        # the predictor is idle it runs right here on the event loop, saving two thread hand-offs
        # that cost milliseconds each on a loaded CPU; when busy it waits in a worker thread.
        session = store.get(sid)
        args = (body.frame, body.object_id, body.points, body.labels, body.box)
        try:
            return session.add_prompt(*args, wait=False)
        except WouldWait:
            return await run_in_threadpool(session.add_prompt, *args)

    @app.websocket("/api/sessions/{sid}/clicks")
    async def clicks(ws: WebSocket, sid: str):
        # The page's click channel: one open connection instead of a request per click (an idle
        # fetch from chromium costs ~7 ms here, a WebSocket message ~1 ms), and the reply carries
        # only the objects the click changed. Each message is a prompt body (+ an optional "id"
        # echoed back); each reply is {"id", "frame", "masks", "server_ms", "predictor_ms"} or
        # {"id", "status", "detail"}, and the connection stays open after a refused message.
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            started = time.perf_counter()
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            reply = await _click(sid, text)
            reply["server_ms"] = round(1000 * (time.perf_counter() - started), 2)
            await ws.send_text(json.dumps(reply))

    async def _click(sid: str, text: str) -> dict:
        if len(text.encode()) > max_body:
            return {"id": None, "status": 413, "detail": f"message over {max_body} bytes"}
        try:
            doc = json.loads(text)
        except ValueError as exc:
            return {"id": None, "status": 400, "detail": f"malformed JSON: {exc}"}
        if not isinstance(doc, dict):
            return {"id": None, "status": 400, "detail": "a click is a JSON object (the prompt body)"}
        ident = doc.pop("id", None)
        try:
            body = Prompt.model_validate(doc)
            session = store.get(sid)
            args = (body.frame, body.object_id, body.points, body.labels, body.box)
            try:  # as the POST route: on the event loop when the predictor is idle
                out = session.add_prompt(*args, wait=False, changed_only=True)
            except WouldWait:
                out = await run_in_threadpool(session.add_prompt, *args, changed_only=True)
        except ValidationError as exc:
            return {"id": ident, "status": 400, "detail": _one_line(exc)}
        except UIError as exc:
            return {"id": ident, "status": exc.status, "detail": _line(exc)}
        except BrokenVideosError as exc:
            return {"id": ident, "status": 500, "detail": _line(exc)}
        except Exception as exc:  # reported on the page, and the channel keeps serving
            log.exception("annotate-ui: click on session %s failed", sid)
            return {"id": ident, "status": 500, "detail": f"internal error: {exc.__class__.__name__}: {exc}"}
        # of the server's time, the SAM2 call (with the merge of its objects' logits)
        return {"id": ident, **out, "predictor_ms": session.last_predictor_ms}

    @app.put("/api/sessions/{sid}/objects/{object_id}")
    def label(sid: str, object_id: int, body: Label):
        return store.get(sid).set_subcategory(object_id, body.subcategory)

    @app.delete("/api/sessions/{sid}/objects/{object_id}")
    def delete_object(sid: str, object_id: int):
        return store.get(sid).delete_object(object_id)

    @app.post("/api/sessions/{sid}/undo")
    def undo(sid: str):
        return store.get(sid).undo()

    @app.post("/api/sessions/{sid}/propagate")
    def propagate(sid: str, body: Propagate):
        session = store.get(sid)
        job = session.start_propagation(body.direction, body.start_frame)
        if body.stream:
            def events():
                try:
                    while True:
                        event = job.events.get()
                        yield json.dumps(event) + "\n"
                        if event["type"] in ("done", "error"):
                            return
                except GeneratorExit:  # the page went away: stop tracking for it
                    job.cancel.set()
                    raise
            return StreamingResponse(events(), media_type="application/x-ndjson")
        job.finished.wait()
        if job.error:
            return _error(500, job.error)
        return {"frames": {str(t): m for t, m in sorted(job.frames.items())}, "cancelled": job.cancelled,
                "done": job.done, "total": job.total}

    @app.post("/api/sessions/{sid}/propagate/cancel")
    def cancel(sid: str):
        return {"cancelled": store.get(sid).cancel_propagation()}

    @app.post("/api/sessions/{sid}/export")
    def export(sid: str):
        return store.get(sid).export(Path(store.out))

    app.add_middleware(Guard, token=token, max_body=max_body)
    return app


__all__ = ["BadRequest", "create_app"]
