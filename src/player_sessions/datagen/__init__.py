"""Synthetic session events and their ground truth (``generate``), and a loader for the HTTP API (``load``).

Public entry points: ``generate(GenerateOptions(...), out, truth_path)``, ``run_load(LoadOptions(...))``,
``load_truth(path)``, ``starts_in_window(truth, frm, to)``, ``shift_truth(truth, offset)``.
Modules are imported lazily by the CLI; importing this package pulls in nothing heavy.
"""
