import pytest

from inventory.reports import ledger_discrepancies, month_discrepancies


@pytest.fixture
def ledger_is_consistent(db):
    """Checks after the test that every lot's quantity on hand equals the sum of its
    movements, and the daily rollup agrees."""
    yield
    assert ledger_discrepancies() == []
    assert month_discrepancies() == []
