"""Pipelines every front end shares (docs/design.md §4–§5: library first, thin CLI).

- ``training.train_run``: data → model → trainer → run folder;
- ``stress``: the stress tests as typed specs, run by ``runner.run_study`` (and the per-kind
  ``*_study`` modules) over loaded checkpoints;
- ``spec`` / ``plan`` / ``execute`` / ``report``: study files, their cells and manifest, the
  executors (in process, local process pool, Ray) and the study report.
"""
