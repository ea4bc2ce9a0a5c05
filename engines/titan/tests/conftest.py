from pathlib import Path

import pytest
from titan_fixture import write_mixture


@pytest.fixture(scope="session")
def mixture(tmp_path_factory) -> Path:
    """A complete three-source mixture (vocab 512) shared by the tests that only read it."""
    return write_mixture(tmp_path_factory.mktemp("mix") / "smoke")
