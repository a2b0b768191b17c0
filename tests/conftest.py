"""Shared fixtures and the hypothesis profiles: `ci` (the default, quick) and `thorough` (far more examples).

Choose one with `pytest --hypothesis-profile=thorough`.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=20, deadline=None)
settings.register_profile("thorough", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def bank():
    from verify.registry import load_bank

    return load_bank()


@pytest.fixture(scope="session")
def run_output(bank):
    from verify.runner import run

    return run(bank.problems)


@pytest.fixture(autouse=True, scope="session")
def _listing_cache(tmp_path_factory):
    """The bank's cached listing (verify.index) goes to a folder of the test session's own."""
    os.environ["VERIFY_CACHE"] = str(tmp_path_factory.mktemp("verify-cache"))
