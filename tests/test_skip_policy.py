"""The no-silent-skips plugin (tests/skip_policy.py), run in-process on tiny test directories."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

PASSING = "def test_ok():\n    assert True\n"


class Run:
    def __init__(self, result):
        self.returncode = int(result.ret)
        self.stdout = result.stdout.str()


def run_pytest(pytester, files: dict[str, str]) -> Run:
    for name, body in files.items():
        (pytester.path / name).write_text(textwrap.dedent(body))
    return Run(pytester.runpytest("-q", "-p", "skip_policy", "-p", "no:cacheprovider"))


def test_allowed_reason_passes(pytester):
    result = run_pytest(pytester, {"test_a.py": PASSING + textwrap.dedent("""
        import pytest

        @pytest.mark.skipif(True, reason="needs a GPU (CUDA kernels)")
        def test_gpu():
            pass

        def test_gpu_inside():
            pytest.skip("needs a GPU")
        """)})
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout
    assert "SKIP NOT ALLOWED" not in result.stdout


def test_other_reason_fails_and_names_the_test(pytester):
    result = run_pytest(pytester, {"test_b.py": PASSING + textwrap.dedent("""
        import pytest

        @pytest.mark.skip(reason="chromium is not installed")
        def test_browser():
            pass

        @pytest.fixture
        def server():
            pytest.skip("port in use")

        def test_with_fixture(server):
            pass
        """)})
    assert result.returncode == 1, result.stdout
    assert "SKIP NOT ALLOWED test_b.py::test_browser: chromium is not installed" in result.stdout
    assert "SKIP NOT ALLOWED test_b.py::test_with_fixture: port in use" in result.stdout
    assert "1 passed, 2 skipped" in result.stdout


def test_module_level_importorskip_fails_and_names_the_file(pytester):
    result = run_pytest(pytester, {"test_ok.py": PASSING, "test_c.py": """
        import pytest

        pytest.importorskip("surely_not_an_installed_module")

        def test_never_collected():
            pass
        """})
    assert result.returncode == 1, result.stdout
    assert "SKIP NOT ALLOWED test_c.py: could not import 'surely_not_an_installed_module'" in result.stdout


def test_xfail_is_not_a_skip_and_failures_keep_their_status(pytester):
    result = run_pytest(pytester, {"test_d.py": """
        import pytest

        @pytest.mark.xfail(reason="known bug", strict=True)
        def test_known():
            assert False
        """})
    assert result.returncode == 0, result.stdout
    assert "1 xfailed" in result.stdout

    result = run_pytest(pytester, {"test_d.py": """
        import pytest

        def test_fails():
            assert False

        @pytest.mark.skip(reason="later")
        def test_later():
            pass
        """})
    assert result.returncode == 1, result.stdout
    assert "SKIP NOT ALLOWED test_d.py::test_later: later" in result.stdout


def test_the_suite_loads_the_policy(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("skip_policy_state"), "tests/conftest.py must load skip_policy"


@pytest.mark.parametrize("reason", ["needs a GPU", "needs a GPU: 24 GB"])
def test_allow_list_is_prefix_match(reason):
    from skip_policy import is_allowed

    assert is_allowed(reason)
    assert not is_allowed("GPU missing") and not is_allowed("could not import 'sam2'")
