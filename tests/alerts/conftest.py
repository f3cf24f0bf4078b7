"""The alert tests' shared helpers assert too: let pytest show their diffs."""

import pytest

pytest.register_assert_rewrite("tests.alerts.support")
