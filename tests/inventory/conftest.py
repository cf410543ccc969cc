import pytest

from inventory.reports import ledger_discrepancies, month_discrepancies, rollup_discrepancies


@pytest.fixture
def ledger_is_consistent(db):
    """Checks after the test that every lot's quantity on hand equals the sum of its
    movements, and that both rollups agree with it, row by row."""
    yield
    assert ledger_discrepancies() == []
    assert month_discrepancies() == []
    assert rollup_discrepancies() == []
