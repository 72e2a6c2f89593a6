"""Pipelines every front end shares (docs/design.md §4–§5: library first, thin CLI).

- ``training.train_run``: data → model → trainer → run folder;
- ``stresses``: the stress kinds as plug-ins (one module per kind: spec, run, report settings;
  the registry, entry points and ``--plugins`` files), run by ``runner.run_study`` (and the
  per-kind ``*_study`` modules) over loaded checkpoints; ``stress`` re-exports them;
- ``spec`` / ``plan`` / ``execute`` / ``report``: study files, their cells and manifest, the
  executors (in process, local process pool, Ray) and the study report.
"""
