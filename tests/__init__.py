"""ResetAccess's tests, one folder per component; what they share is the tests.support package."""

import pytest

# The shared checks (Run.assert_*, the agent's helpers) report their failures as tests' do.
pytest.register_assert_rewrite("tests.support")
