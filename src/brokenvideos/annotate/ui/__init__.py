"""``brokenvideos annotate-ui``: the SAM2 annotation tool in a browser, served on localhost.

A person clicks (+/−), draws boxes, propagates, refines and labels artifact instances; the
server drives the annotate step's own SAM2 video predictor and keeps every prompt on disk as it
is made. Export writes DAVIS palette PNGs, ``instances.json``, COCO RLE and a prompt file that
``annotate.method: sam2`` replays to the same masks.

Modules: ``catalogue`` (which videos, by id only), ``session`` (one video's prompts, predictor
state and masks), ``store`` (sessions by id, saved under ``--out``), ``app`` (the JSON API and the
page), ``server`` (the CLI step: host policy, token, uvicorn).
"""
