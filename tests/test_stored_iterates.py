"""``make_optimizer`` gives, bit for bit, the iterates recorded before the optimizer was rebuilt
from projection and route objects (``tests/optimizer_iterates.py`` made the file)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from optimizer_iterates import DATA, DTYPES, LEVELS, cases, flatten, run_case  # noqa: E402

from mdq_teach.nn import make_optimizer  # noqa: E402

STORED = np.load(DATA)


@pytest.mark.parametrize("case", cases(), ids=[c[0] for c in cases()])
def test_iterates_match_the_stored_ones(case):
    key, method, options, lname, dname = case
    record = run_case(make_optimizer, method, options, LEVELS[lname], DTYPES[dname])
    assert list(STORED[key + "|names"]) == sorted(record)
    got, want = torch.from_numpy(flatten(record)), torch.from_numpy(STORED[key])
    assert got.dtype == want.dtype and torch.equal(got, want), key
