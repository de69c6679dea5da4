"""Synthetic session events and their ground truth (``generate``), and a loader for the HTTP API (``load``).

Public entry points: ``generate(GenerateOptions(...), out, truth_path)`` and ``run_load(LoadOptions(...))``;
the ground-truth file's format is described in ``generate``.
Modules are imported lazily by the CLI; importing this package pulls in nothing heavy.
"""
