"""Evaluation protocols: which objects of a video J and F are averaged over.

A protocol is one entry here (and the schema's ``evaluate.protocol`` enum, which a test keeps equal
to this registry). ``metrics.jf.evaluate_video`` reads only these fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    by_instance: bool  # True: every ground-truth instance id is an object, matched by id
    summary: str


PROTOCOLS: dict[str, Protocol] = {
    # MeViS / ReVOS: the referred target is the union of its instances (BrokenVideos' default)
    "mevis": Protocol(by_instance=False, summary="the union of a video's artifact instances is one object"),
    # DAVIS 2017 semi-supervised: per instance id; ids only in the prediction are ignored
    "davis": Protocol(by_instance=True, summary="each ground-truth instance id is an object"),
}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
