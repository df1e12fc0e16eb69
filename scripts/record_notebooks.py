"""Record the example notebooks anew against the scripted LLM, then check that their replay
shows the same; the notebooks and cassettes in ``notebooks/`` are replaced.

Run after changing a notebook or what Pi outputs look like:
``.venv/bin/python scripts/record_notebooks.py [NAME ...]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's tests package

from tests.support.example_notebooks import (
    EXAMPLES,
    NOTEBOOKS,
    comparable,
    copy_examples,
    record,
    replay,
)


def main(names: list[str]) -> int:
    chosen = [example for example in EXAMPLES if not names or example.name in names]
    if not chosen:
        print(f"No such example; choose from {', '.join(e.name for e in EXAMPLES)}.")
        return 2
    for example in chosen:
        with tempfile.TemporaryDirectory() as scratch:
            recording = copy_examples(Path(scratch) / "record")
            recorded = record(example, recording)
            replaying = copy_examples(Path(scratch) / "replay")
            shutil.copy(recording / example.cassette, replaying / example.cassette)
            replayed, requests = replay(example, replaying)
            if requests or comparable(replayed) != comparable(recorded):
                print(f"{example.notebook}: the replay differs from the recording; kept the old.")
                return 1
            shutil.copy(recording / example.notebook, NOTEBOOKS / example.notebook)
            shutil.copy(recording / example.cassette, NOTEBOOKS / example.cassette)
        print(f"Recorded {example.notebook} and {example.cassette}.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
