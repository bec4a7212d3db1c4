"""What every suite shares: the run order, by markers (never by file names), and the deployment fixtures.

Stages, in this order; inside a stage, tests keep the order pytest collected them in:
  (no marker)   read-only tests: they look at the deployment and leave it as it was;
  floods        tests that trip per-source limits or bans (rate limits, fail2ban); after the read-only ones;
  outage        tests that stop a service and start it again (a bridge's link cut);
  converges     tests that re-converge the deployment with changed variables (and converge it back);
  runs_last     converging tests whose change the others must never see (a new CA intermediate).
A runs_last test also carries converges, so ``-m converges`` / ``-m "not converges"`` split a suite in two.
The markers are registered in pyproject.toml (--strict-markers).
"""

from __future__ import annotations

import pytest

from tests.support import lab as description

STAGES = ("floods", "outage", "converges", "runs_last")


def stage(item: pytest.Item) -> int:
    """0 for read-only tests, else 1 + the index of the latest stage marker the test carries."""
    return max((STAGES.index(m.name) + 1 for m in item.iter_markers() if m.name in STAGES), default=0)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture scope, which would mix stages again
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=stage)  # stable: collection order inside a stage


# What the deployment suites (behaviour, perimeter, logging) share; the description is read only when a test asks.


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One module-scoped instance of a test per broker of the description (``broker`` argument)."""
    if "broker" in metafunc.fixturenames:
        brokers = description.brokers(description.load())
        metafunc.parametrize("broker", brokers, ids=[b["name"] for b in brokers], scope="module")


@pytest.fixture(scope="session")
def lab() -> dict:
    """The deployment description (tests/support/lab.py)."""
    return description.load()


@pytest.fixture(scope="session")
def publisher(lab) -> dict:
    return description.publisher(lab)


@pytest.fixture(scope="session")
def reader(lab) -> dict:
    return description.reader(lab)


@pytest.fixture(scope="session")
def admin(lab) -> dict:
    return description.admin(lab)


@pytest.fixture(scope="session")
def cert_client(lab) -> dict:
    return description.cert_client(lab)
