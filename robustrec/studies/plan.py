"""A study's cells and its manifest: what has to run, what ran, and what each cell produced.

Cells are pure functions of their spec (``execute.run_cell``): a training cell is a TrainConfig
and a run folder; a stress cell is a stress spec, its evaluation settings and the run folders
it reads. The manifest (``study.json`` in the study folder) holds every cell's spec, state
(pending, running, done, failed, blocked), result or one-line error, and is rewritten
atomically after every change, so a killed study is resumed by running it again: done cells
are skipped, everything else is redone (a training cell continues from its last epoch).

Cells appear as their inputs become known: the grid search of a model × strategy first (first
seed), then the chosen point on the other seeds, then one stress cell per dataset × seed × stress
with that seed's chosen run of every model and strategy (one report: edited photos and texts are
encoded once for all of them, and every model sees the same draws).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from robustrec.errors import ConfigError
from robustrec.files import read_json, write_text_atomic
from robustrec.studies.spec import Study

MANIFEST = "study.json"
FORMAT = "robustrec-study"
STATES = ("pending", "running", "done", "failed", "blocked")


@dataclass
class Cell:
    id: str
    kind: str  # "train" or "stress"
    spec: dict
    deps: list[str] = field(default_factory=list)
    state: str = "pending"
    result: dict | None = None
    error: str | None = None
    detail: str | None = None  # a failure's traceback, for the curious
    seconds: float | None = None
    attempts: int = 0

    def record(self) -> dict:
        return dataclasses.asdict(self)


class Manifest:
    """The study folder's ``study.json``: the study, and every cell by id."""

    def __init__(self, folder: Path, study: Study, cells: dict[str, Cell] | None = None) -> None:
        self.folder = Path(folder)
        self.study = study
        self.cells: dict[str, Cell] = cells or {}

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    @classmethod
    def open(cls, folder: Path, study: Study) -> "Manifest":
        """The manifest of ``folder`` for ``study``: resumed if one exists (unfinished cells go
        back to pending; cells whose spec changed with the study file are redone), else new."""
        manifest = cls(folder, study)
        if manifest.path.exists():
            stored = read_manifest(folder)
            if stored["study"]["name"] != study.name:
                raise ConfigError(f"{folder} holds study {stored['study']['name']!r}, not {study.name!r}; give "
                                  f"another --out (a study folder resumes the study that made it)")
            for record in stored["cells"].values():
                cell = Cell(**record)
                if cell.state in ("running", "blocked"):
                    cell.state = "pending"
                manifest.cells[cell.id] = cell
        return manifest

    def counts(self) -> dict[str, int]:
        out = {state: 0 for state in STATES}
        for cell in self.cells.values():
            out[cell.state] += 1
        return out

    def save(self) -> None:
        body = {"format": FORMAT, "version": 1, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "study": self.study.to_dict(), "fingerprint": self.study.fingerprint(),
                "cells": {cid: cell.record() for cid, cell in self.cells.items()}}
        write_text_atomic(self.path, json.dumps(body, indent=1))

    def merge(self, planned: list[Cell]) -> list[Cell]:
        """Add newly planned cells; a known cell whose spec changed is reset; a cell no longer
        planned (the study file changed) leaves the manifest. Returns the new or reset cells."""
        wanted = {cell.id for cell in planned}
        for cid in [cid for cid in self.cells if cid not in wanted]:
            del self.cells[cid]
        changed = []
        for cell in planned:
            known = self.cells.get(cell.id)
            if known is None or known.spec != cell.spec:
                self.cells[cell.id] = cell
                changed.append(cell)
            else:
                known.deps = cell.deps
        return changed


def read_manifest(folder: str | Path) -> dict:
    """The parsed ``study.json`` of a study folder; one-line ConfigErrors when it is absent,
    corrupt, or not shaped like a manifest (a study object, cells by id with their fields)."""
    from robustrec.studies.spec import study_from_dict

    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{folder} is not a study folder: no {MANIFEST} (run `robustrec study run FILE` first)")
    body = read_json(path, "study manifest", ConfigError)
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a robustrec study manifest")
    bad = _shape_problem(body)
    if bad is None:
        try:
            study_from_dict(body["study"])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            bad = f"its study is malformed ({exc})"
    if bad:
        raise ConfigError(f"{path} is a malformed study manifest: {bad}; run the study file again into "
                          f"a new --out folder")
    return body


#: the fields every manifest cell record has, and their types (NoneType: may be null)
_CELL_TYPES = {"id": (str,), "kind": (str,), "spec": (dict,), "deps": (list,), "state": (str,),
               "result": (dict, type(None)), "error": (str, type(None)), "detail": (str, type(None)),
               "seconds": (int, float, type(None)), "attempts": (int,)}
_STUDY_TYPES = {"name": (str,), "path": (str,), "data_dir": (str,), "datasets": (list,), "models": (list,),
                "strategies": (dict,), "seeds": (list,), "selection": (str,), "train": (dict,), "grids": (dict,),
                "stresses": (list,)}


def _shape_problem(body: dict) -> str | None:
    """What is wrong with the shape of a manifest's ``study`` and ``cells`` (None: nothing)."""
    study, cells = body.get("study"), body.get("cells")
    if not isinstance(study, dict):
        return "no \"study\" object"
    for key, types in _STUDY_TYPES.items():
        if key == "stresses" and key not in study:  # manifests written before stress cells
            continue
        if not isinstance(study.get(key), types):
            return f"study field {key!r} missing or of the wrong type"
    if not isinstance(cells, dict):
        return "no \"cells\" object"
    for cid, record in cells.items():
        if not isinstance(record, dict):
            return f"cell {cid!r} is not an object"
        fields = {f.name: f for f in dataclasses.fields(Cell)}
        unknown = sorted(set(record) - set(fields))
        if unknown:
            return f"cell {cid!r} has unknown fields {', '.join(unknown)}"
        missing = [name for name in _CELL_TYPES if name not in record]
        if missing:
            return f"cell {cid!r} has no {', '.join(missing)}"
        for key, types in _CELL_TYPES.items():
            if not isinstance(record[key], types) or (key == "attempts" and isinstance(record[key], bool)):
                return f"cell {cid!r} field {key!r} is of the wrong type"
        if record["id"] != cid:
            return f"cell {cid!r} has id {record['id']!r}"
        if record["state"] not in STATES:
            return f"cell {cid!r} has state {record['state']!r} (not one of {', '.join(STATES)})"
        if record["kind"] not in ("train", "stress"):
            return f"cell {cid!r} has kind {record['kind']!r} (not train or stress)"
    return None


def plan(study: Study, manifest: Manifest) -> list[Cell]:
    """Every cell whose spec is known now, given the finished cells of ``manifest``."""
    return _walk(study, manifest)[0]


def chosen_runs(study: Study, manifest: Manifest) -> dict[tuple[str, str, str], dict[int, str]]:
    """(dataset, model, strategy) -> seed -> the training cell of the chosen grid point (known ones)."""
    return _walk(study, manifest)[1]


def _walk(study: Study, manifest: Manifest):
    cells: list[Cell] = []
    chosen: dict[tuple, dict[int, str]] = {}  # (dataset, model, strategy) -> seed -> train cell id
    for dataset in study.datasets:
        for model in study.models:
            for strategy in _ordered(study):
                points = _points(study, manifest, dataset, model, strategy, chosen)
                if points is None:
                    continue  # waits for plain's choice (selection = "baseline")
                group = (dataset, model, strategy)
                if len(points) == 1:
                    index, point = points[0]
                    ids = {seed: _train_cell(study, cells, dataset, model, strategy, index, point, seed)
                           for seed in study.seeds}
                    chosen[group] = ids
                    continue
                search = {index: _train_cell(study, cells, dataset, model, strategy, index, point, study.seeds[0])
                          for index, point in points}
                best = select_point(manifest, search, study.valid_metric)
                if best is None:
                    continue
                point = dict(points)[best]
                ids = {study.seeds[0]: search[best]}
                ids.update({seed: _train_cell(study, cells, dataset, model, strategy, best, point, seed)
                            for seed in study.seeds[1:]})
                chosen[group] = ids
        for seed in study.seeds:
            for index, stress in enumerate(study.stresses, 1):
                runs = [(model, strategy, chosen.get((dataset, model, strategy), {}).get(seed))
                        for model in study.models if model in stress.models for strategy in study.strategies]
                if all(run for _, _, run in runs):
                    cells.append(_stress_cell(dataset, seed, index, stress, runs, by_id(cells)))
    return cells, chosen


def _ordered(study: Study) -> list[str]:
    """Strategies with plain first (others may reuse its point)."""
    return sorted(study.strategies, key=lambda name: name != "plain")


def _points(study, manifest, dataset, model, strategy, chosen) -> list[tuple[int, dict]] | None:
    grid = list(enumerate(study.grids[model]))
    if study.selection == "each" or strategy == "plain" or len(grid) == 1:
        return grid
    plain = chosen.get((dataset, model, "plain"))
    if not plain:
        return None
    cell = manifest.cells.get(plain[study.seeds[0]])
    index = cell.spec["point_index"] if cell else None
    return None if index is None else [(index, study.grids[model][index])]


def select_point(manifest: Manifest, search: dict[int, str], metric: str) -> int | None:
    """The grid point with the best validation ``metric`` once every search cell finished (ties:
    the earlier point); None while one is unfinished or when all failed."""
    cells = [manifest.cells.get(cid) for cid in search.values()]
    if any(cell is None or cell.state not in ("done", "failed") for cell in cells):
        return None
    scores = {index: manifest.cells[cid].result["valid"][metric] for index, cid in search.items()
              if manifest.cells[cid].state == "done"}
    if not scores:
        return None
    return max(scores, key=lambda index: (scores[index], -index))


def _train_cell(study, cells, dataset, model, strategy, index, point, seed) -> str:
    config = study.train_config(dataset, model, strategy, point, seed)
    cid = f"train/{dataset}/{model}/{strategy}/g{index}/s{seed}"
    run_dir = Path("runs") / dataset / f"{model}-{strategy}-g{index}-s{seed}"
    cells.append(Cell(cid, "train", {"config": dataclasses.asdict(config), "run_dir": str(run_dir),
                                     "point_index": index, "point": {k: str(v) for k, v in point.items()},
                                     "dataset": dataset, "model": model, "strategy": strategy, "seed": seed}))
    return cid


def by_id(cells: list[Cell]) -> dict[str, Cell]:
    return {cell.id: cell for cell in cells}


def _stress_cell(dataset, seed, index, stress, runs, cells: dict[str, Cell]) -> Cell:
    """One stress test of one seed's chosen runs of every model and strategy it applies to: one
    report, so edited content is encoded once for all of them and every model sees the same draws."""
    cid = f"stress/{dataset}/s{seed}/{index}-{stress.kind}"
    spec = {"kind": stress.kind, "options": stress.options, "settings": stress.settings, "label": stress.label,
            "stress_index": index, "dataset": dataset, "seed": seed,
            "checkpoints": [cells[run].spec["run_dir"] for _, _, run in runs],
            "models": [model for model, _, _ in runs], "strategies": [strategy for _, strategy, _ in runs],
            "report_dir": str(Path("reports") / dataset), "report_name": f"s{seed}-{index}-{stress.kind}"}
    return Cell(cid, "stress", spec, deps=[run for _, _, run in runs])
