"""No silent skips: a pytest plugin (loaded by tests/conftest.py) that fails the run when a test or a
whole module is skipped for a reason that is not on the allow-list below.

A skipped test is a test that did not run, and a green run with skips hides missing setup (an
uninstalled package, a missing browser). Each test should need only what it uses and the setup
(`make setup`) installs all of it, so a skip here is a bug in the test or in the setup, unless it
is one of the few things no CPU-only machine of this project can provide.

The allow-list: a skip passes when its reason starts with one of these phrases (case-sensitive).
Write the reason exactly like this, e.g. ``pytest.mark.skipif(not cuda, reason="needs a GPU")``.
"""

from __future__ import annotations

import pytest

ALLOWED_SKIP_REASONS = {
    "needs a GPU": "CI and the developers' machines have no accelerator; the code path runs where one is lent",
    "needs root to mount a tmpfs": "a full disk is a small tmpfs, which only root can mount; CI runs as root",
}

_SKIPPED_PREFIX = "Skipped: "


def skip_reason(report) -> str | None:
    """The reason of a skipped test or collection report, None for any other outcome (xfail is not
    a skip: it ran)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason[len(_SKIPPED_PREFIX):] if reason.startswith(_SKIPPED_PREFIX) else reason


def is_allowed(reason: str) -> bool:
    return any(reason.startswith(phrase) for phrase in ALLOWED_SKIP_REASONS)


class SkipPolicy:
    def __init__(self):
        self.disallowed: list[tuple[str, str]] = []  # (test or file, reason)

    def _record(self, report):
        reason = skip_reason(report)
        if reason is not None and not is_allowed(reason):
            self.disallowed.append((report.nodeid or str(report.fspath), reason))

    def pytest_runtest_logreport(self, report):
        self._record(report)

    def pytest_collectreport(self, report):
        # a module-level importorskip or pytest.skip(allow_module_level=True) skips a whole file
        self._record(report)

    def pytest_terminal_summary(self, terminalreporter):
        if self.disallowed:
            terminalreporter.section("skips not on the allow-list (tests/skip_policy.py)", red=True, bold=True)
            for where, reason in self.disallowed:
                terminalreporter.line(f"SKIP NOT ALLOWED {where}: {reason}")
            terminalreporter.line(f"allowed reasons start with: {sorted(ALLOWED_SKIP_REASONS)}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        # only turn a green run red; failures and interruptions keep their own exit status
        if self.disallowed and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config):
    config.pluginmanager.register(SkipPolicy(), "skip_policy_state")
