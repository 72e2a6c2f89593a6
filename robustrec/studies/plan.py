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
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from robustrec.errors import ConfigError
from robustrec.files import read_json, write_text_atomic
from robustrec.studies.spec import BASELINE, Study

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
    #: where the cell last ran: the machine's host name (and the Ray node), None before it ran
    host: str | None = None

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
        write_text_atomic(self.path, json.dumps(body, indent=1, allow_nan=False))

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
#: fields added later, which older manifests lack
_CELL_OPTIONAL = {"host": (str, type(None))}
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
        for key, types in {**_CELL_TYPES, **_CELL_OPTIONAL}.items():
            if key not in record:
                continue
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
                if study.audits_test:  # every point on every seed: the audit may pick any run by test
                    others = {(index, seed): _train_cell(study, cells, dataset, model, strategy, index, point, seed)
                              for index, point in points for seed in study.seeds[1:]}
                best = select_point(manifest, search, study.valid_metric)  # the choice itself: validation only
                if best is None:
                    continue
                point = dict(points)[best]
                ids = {study.seeds[0]: search[best]}
                if study.audits_test:
                    ids.update({seed: others[(best, seed)] for seed in study.seeds[1:]})
                else:
                    ids.update({seed: _train_cell(study, cells, dataset, model, strategy, best, point, seed)
                                for seed in study.seeds[1:]})
                chosen[group] = ids
        for model in study.baselines:  # fitted once per seed: no strategies, no grid
            chosen[(dataset, model, BASELINE)] = {seed: _train_cell(study, cells, dataset, model, BASELINE, 0, {}, seed)
                                                  for seed in study.seeds}
        for seed in study.seeds:
            for index, stress in enumerate(study.stresses, 1):
                runs = [(model, strategy, chosen.get((dataset, model, strategy), {}).get(seed))
                        for model in study.models if model in stress.models for strategy in study.strategies]
                runs += [(model, BASELINE, chosen[(dataset, model, BASELINE)][seed])
                         for model in study.baselines if model in stress.models]
                if all(run for _, _, run in runs):
                    cells.append(_stress_cell(dataset, seed, index, stress, runs, by_id(cells), manifest))
    return cells, chosen


def _ordered(study: Study) -> list[str]:
    """Strategies with plain first (others may reuse its point)."""
    return sorted(study.strategies, key=lambda name: name != "plain")


def _points(study, manifest, dataset, model, strategy, chosen) -> list[tuple[int, dict]] | None:
    grid = list(enumerate(study.grids[model]))
    if study.selection != "baseline" or strategy == "plain" or len(grid) == 1:
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
    label = study.label(model)  # a model file: <stem>.<Class>, fit for a folder
    cid = f"train/{dataset}/{label}/{strategy}/g{index}/s{seed}"
    run_dir = Path("runs") / dataset / f"{label}-{strategy}-g{index}-s{seed}"
    cells.append(Cell(cid, "train", {"config": dataclasses.asdict(config), "run_dir": str(run_dir),
                                     "point_index": index, "point": {k: str(v) for k, v in point.items()},
                                     "dataset": dataset, "model": model, "strategy": strategy, "seed": seed}))
    return cid


def by_id(cells: list[Cell]) -> dict[str, Cell]:
    return {cell.id: cell for cell in cells}


def _stress_cell(dataset, seed, index, stress, runs, cells: dict[str, Cell], manifest: Manifest) -> Cell:
    """One stress test of one seed's chosen runs of every model and strategy it applies to: one
    report, so edited content is encoded once for all of them and every model sees the same draws.

    Its spec holds the identity of every training cell it reads (``input_identity``), so a
    retrained run changes the spec and the merge redoes exactly the stress cells that read it;
    a kind from a plug-in file adds the file's path and SHA-256, so an edited plug-in reruns too."""
    from robustrec.studies.stresses import plugin_of

    cid = f"stress/{dataset}/s{seed}/{index}-{stress.kind}"
    spec = {"kind": stress.kind, "options": stress.options, "settings": stress.settings, "label": stress.label,
            "stress_index": index, "dataset": dataset, "seed": seed,
            "inputs": [input_identity(cells[run], manifest) for _, _, run in runs],
            "checkpoints": [cells[run].spec["run_dir"] for _, _, run in runs],
            "models": [model for model, _, _ in runs], "strategies": [strategy for _, strategy, _ in runs],
            "report_dir": str(Path("reports") / dataset), "report_name": f"s{seed}-{index}-{stress.kind}"}
    plugin = plugin_of(stress.kind)
    if plugin is not None:  # a user's kind: its file's bytes are part of the identity (an edit reruns)
        spec["plugin"] = {"path": plugin["path"], "sha256": plugin["sha256"]}
    return Cell(cid, "stress", spec, deps=[run for _, _, run in runs])


def spec_digest(spec: dict) -> str:
    """SHA-256 of a cell spec (its JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def input_identity(planned: Cell, manifest: Manifest) -> dict:
    """The identity of a cell another cell reads: its id and spec digest and, once it is done with
    that spec, its output's identity (a training cell's: weights and config SHA-256, data and
    feature fingerprints). Before that the output is None, and the reading cell waits for it."""
    known = manifest.cells.get(planned.id)
    output = None
    if known is not None and known.spec == planned.spec and known.state == "done" and known.result:
        output = known.result.get("identity")
    return {"cell": planned.id, "spec_sha256": spec_digest(planned.spec), "output": output}


def stale_stress_cells(folder: str | Path, manifest: Manifest) -> dict[str, str]:
    """Done stress cells whose reports were measured on weights other than those their run folders
    hold now: cell id -> the first run folder that differs (and how). A study report must not
    combine them with the runs' clean metrics."""
    from robustrec.files import file_sha256

    folder = Path(folder)
    digests: dict[str, str | None] = {}

    def current(run_dir: str) -> str | None:
        if run_dir not in digests:
            weights = folder / run_dir / "model.safetensors"
            digests[run_dir] = file_sha256(weights) if weights.is_file() else None
        return digests[run_dir]

    stale = {}
    for cell in manifest.cells.values():
        if cell.kind != "stress" or cell.state != "done":
            continue
        by_name = {Path(run_dir).name: run_dir for run_dir in cell.spec["checkpoints"]}
        for report_path in cell.result.get("reports", []):
            try:
                report = json.loads((folder / report_path).read_text())
            except (OSError, ValueError):
                stale[cell.id] = f"its report {report_path} is missing or unreadable"
                break
            for entry in report.get("checkpoints", []):
                run_dir = by_name.get(entry.get("name"))
                if run_dir is None:
                    continue
                measured, now = entry.get("weights_sha256"), current(run_dir)
                if now is None:
                    stale[cell.id] = f"{run_dir} has no weights now"
                elif measured is None:
                    stale[cell.id] = f"its report predates weights digests, so it cannot show it measured {run_dir}"
                elif measured != now:
                    stale[cell.id] = f"{run_dir} was retrained after it was measured"
                if cell.id in stale:
                    break
            if cell.id in stale:
                break
    return stale


def refuse_stale(folder: str | Path, manifest: Manifest) -> None:
    """One ConfigError line naming the stress cells measured on other weights than their runs hold."""
    stale = stale_stress_cells(folder, manifest)
    if stale:
        first = next(iter(stale))
        names = ", ".join(stale) if len(stale) <= 4 else ", ".join(list(stale)[:4]) + f" and {len(stale) - 4} more"
        raise ConfigError(f"{len(stale)} stress cell(s) of {folder} are stale ({names}): {first}: {stale[first]}; "
                          f"run `robustrec study run` on this folder again to redo them")


def describe_plan(study: Study, folder: str | Path | None = None) -> dict:
    """What ``study`` will run, without running anything: training cells per dataset × model ×
    strategy (grid points searched on the first seed, then the chosen point on the others), stress
    cells and their evaluations, an upper bound on training epochs, and — when ``folder`` holds
    finished cells of this study — a time estimate from their measured seconds."""
    from robustrec.config import from_dict
    from robustrec.studies.stresses import stress_spec

    groups = []
    for dataset in study.datasets:
        for model in study.models:
            for strategy in study.strategies:
                points = study.grids[model]
                reuse = study.selection == "baseline" and strategy != "plain" and len(points) > 1
                searched = 1 if reuse else len(points)
                trainings = (searched * len(study.seeds) if study.audits_test
                             else searched + len(study.seeds) - 1)
                config = study.train_config(dataset, model, strategy, points[0], study.seeds[0])
                groups.append({"dataset": dataset, "model": model, "strategy": strategy, "points": searched,
                               "searched": {k: list(dict.fromkeys(str(p[k]) for p in points)) for k in points[0]
                                            if len({str(p[k]) for p in points}) > 1} if not reuse else {},
                               "grid_from": study.grid_sources.get(model),
                               "reuses_plain_point": reuse, "trainings": trainings,
                               "epochs": max(study.train_config(dataset, model, strategy, p, study.seeds[0]).epochs
                                             for p in points),
                               "patience": config.patience})
        groups += [{"dataset": dataset, "model": model, "strategy": BASELINE, "points": 1, "searched": {},
                    "reuses_plain_point": False, "trainings": len(study.seeds), "epochs": 1, "patience": 1}
                   for model in study.baselines]
    stresses = []
    for index, stress in enumerate(study.stresses, 1):
        spec = stress_spec(stress.kind, stress.options, f"[[stress]] #{index}")
        levels = max(len(v) if isinstance(v, list) else 1 for v in [*stress.options.values(), 0])
        settings = from_dict(_settings_class(), dict(stress.settings), "stress settings")
        runs = sum(1 if model in study.baselines else len(study.strategies) for model in stress.models)
        stresses.append({"index": index, "kind": spec.kind, "label": stress.label, "models": stress.models,
                         "levels": levels, "repeats": settings.repeats,
                         "evaluations_per_cell": runs * (1 + levels * settings.repeats)})
    n_stress = len(study.datasets) * len(study.seeds) * len(stresses)
    out = {"study": study.name, "groups": groups, "stresses": stresses,
           "training_cells": sum(g["trainings"] for g in groups),
           "max_epochs": sum(g["trainings"] * g["epochs"] for g in groups),
           "stress_cells": n_stress,
           "evaluations": len(study.datasets) * len(study.seeds) * sum(s["evaluations_per_cell"] for s in stresses),
           "estimate": None}
    if folder is not None and (Path(folder) / MANIFEST).is_file():
        out["estimate"] = _estimate(folder, study, out)
    return out


def _settings_class():
    from robustrec.studies.runner import StudySettings

    return StudySettings


def _estimate(folder, study: Study, described: dict) -> dict | None:
    """Seconds left, from the mean measured seconds of the folder's finished cells of each kind."""
    try:
        body = read_manifest(folder)
    except ConfigError:
        return None
    if body["study"].get("name") != study.name:
        return None
    done = {"train": [], "stress": []}
    for record in body["cells"].values():
        if record.get("state") == "done" and record.get("seconds") is not None and record.get("kind") in done:
            done[record["kind"]].append(float(record["seconds"]))
    if not done["train"] and not done["stress"]:
        return None
    mean = {kind: (sum(v) / len(v) if v else None) for kind, v in done.items()}
    left_train = max(0, described["training_cells"] - len(done["train"]))
    left_stress = max(0, described["stress_cells"] - len(done["stress"]))
    seconds = left_train * (mean["train"] or mean["stress"]) + left_stress * (mean["stress"] or mean["train"])
    return {"seconds_left": seconds, "done": {k: len(v) for k, v in done.items()},
            "mean_seconds": mean, "from": str(folder)}
