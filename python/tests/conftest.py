import os
import sys

# Let the tests import the fake hub helper next to them.
sys.path.insert(0, os.path.dirname(__file__))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def sim_train():
    """(sim-train binary, repository root); skips (or fails, with ROBOSIM_REQUIRE_SERVER=1) without the binaries."""
    import test_server

    binary = test_server.BIN_DIR / "sim-train"
    if not binary.exists():
        pytest.skip(f"sim-train not built in {test_server.BIN_DIR}")
    return binary, test_server.REPO
