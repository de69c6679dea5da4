"""What more than one test tier uses: the frozen clock, event factories, the reader of the generator's
ground truth and the `serve` processes of the tests.

Tests import from here, never from a conftest module: a conftest holds fixtures, and another tier's
conftest is not loaded for a run that does not collect that tier.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
