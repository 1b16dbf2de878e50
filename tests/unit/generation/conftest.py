import pytest
from generation_fakes import FakeAccounting


@pytest.fixture
def accounting() -> FakeAccounting:
    return FakeAccounting()
