"""The study file: a typed, validated description of models × strategies × grids × seeds × stresses.

A study file is TOML. Every key is checked (unknown keys, models, strategies and stress kinds are
one-line errors naming the key) before any work starts::

    name = "mg-lfm2k"
    data_dir = "../shared/datasets"      # relative to the study file
    datasets = ["lfm2k"]
    models = ["vbpr", "freedom"]         # or "mymodel.py:MyRec" (relative to the study file),
                                         # "mmrec:models/smore.py:SMORE": robustrec.models.sources
    strategies = ["plain", "mg"]         # built in: plain, mg, sam, asam, sgbd; or [strategy.NAME]
    seeds = [0, 1, 2]                    # the first seed searches the grid
    selection = "each"                   # or "baseline": other strategies reuse plain's point

    [train]                              # TrainConfig fields every training shares
    epochs = 50
    patience = 10

    [train.freedom]                      # ...and per model (fixed, not searched)
    epochs = 30

    [grid.freedom]                       # model hyper-parameters (or lr, weight_decay, ...); an
    dropout = [0.8, 0.9]                 # mmrec: model without one searches its YAML's grid

    plugins = ["my_stress.py"]           # stress kinds of the user's own (relative to the study file)

    [[stress]]                           # any `robustrec perturb` kind, its options as flags
    kind = "noise"
    sigma = [1e-3]
    repeats = 10                         # also seed, split, metric, k; models = [...] to restrict it

``baselines`` (default ``["pop"]``; ``[]`` turns them off) names models with nothing to learn
(pop, itemknn, itemknncbf): each is fitted once per dataset × seed with the [train] settings,
under the strategy name "baseline" (no strategies, no grid), appears in the clean table, and the
study report marks every model × strategy whose clean metric does not beat it beyond seed noise
(``studies.baselines``). Stress tests leave baselines out unless a [[stress]] lists them in its
``models``.

Selection uses validation only: per dataset × model × strategy, every grid point is trained with
the first seed and the point with the best validation ``train.valid_metric`` (Recall@20 by
default; ties go to the earlier point) is trained with the other seeds. Test numbers are never
read for the choice.

Everything is checked before any work: names that become folders (the study, datasets,
strategies) must be plain folder names, seeds lie in [0, 2^63-1], every dataset exists under
``data_dir`` (or is the built-in synthetic one) and has the modalities the study's [train] and
stress tests name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from robustrec.errors import ConfigError
from robustrec.paths import check_folder_name
from robustrec.config import MAX_SEED

#: how grid points are chosen; "test" and "test-epoch" are protocol audits: every grid point is
#: trained on every seed (the choice itself stays on validation) and the report adds, clearly
#: labelled optimistic, the gains a protocol selecting on test would publish (``studies.audit``)
SELECTIONS = ("each", "baseline", "test", "test-epoch")
#: strategies a study may name without defining them
BUILTIN_STRATEGIES = {
    "plain": {},
    "mg": {"mg": True},
    "sam": {"step": "sam"},
    "asam": {"step": "asam"},
    "sgbd": {"step": "sgbd"},
}
#: the keys a [strategy.NAME] table may set (TrainConfig fields of the step)
STRATEGY_KEYS = ("mg", "mg_form", "alpha1", "alpha2", "beta", "step", "rho")
#: TrainConfig fields a study sets per cell itself, never from [train] or a grid
CELL_KEYS = ("model", "dataset", "data_dir", "seed", "model_params", *STRATEGY_KEYS, "sam_rho", "track_test",
             "model_source")
#: keys of a [[stress]] table that go to the evaluation settings rather than the kind's options
STRESS_SETTINGS = ("repeats", "seed", "split", "metric", "k")
TOP_KEYS = ("name", "data_dir", "datasets", "models", "strategies", "seeds", "selection", "train", "grid",
            "strategy", "stress", "plugins", "baselines")
#: the baselines a study fits unless its file says ``baselines = [...]``
DEFAULT_BASELINES = ["pop"]
#: the strategy name baseline rows and cells carry (no study strategy may take it)
BASELINE = "baseline"


@dataclass
class StressEntry:
    kind: str
    options: dict
    settings: dict
    #: the models it applies to (a study's ID-only models have no features to fault, say)
    models: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """Short name for file names and tables: kind plus its options, e.g. noise-sigma=0.001."""
        parts = [f"{k}={_flat(v)}" for k, v in sorted(self.options.items())]
        return "-".join([self.kind, *parts]).replace("/", "_").replace(" ", "")


@dataclass
class Study:
    """A validated study file (``load_study``); ``grids`` hold every model's points in order."""

    name: str
    path: Path
    data_dir: str
    datasets: list[str]
    models: list[str]
    strategies: dict[str, dict]
    seeds: list[int]
    selection: str
    train: dict
    grids: dict[str, list[dict]]
    stresses: list[StressEntry] = field(default_factory=list)
    #: [train.MODEL] tables: TrainConfig fields for one model (over [train], under its grid)
    train_models: dict[str, dict] = field(default_factory=dict)
    #: models with nothing to learn fitted per dataset × seed (manifests written before: none)
    baselines: list[str] = field(default_factory=list)
    #: model as written -> its canonical reference, for models from files (paths made absolute
    #: from the study file's folder); built-in and entry-point names are their own reference
    references: dict[str, str] = field(default_factory=dict)
    #: model as written -> the MMRec model YAML its grid comes from (an ``mmrec:`` model without
    #: a [grid.MODEL] table of its own searches its YAML's grid)
    grid_sources: dict[str, str] = field(default_factory=dict)

    def reference(self, model: str) -> str:
        """The model reference ``TrainConfig.model`` gets for ``model`` as the study writes it."""
        return self.references.get(model, model)

    def label(self, model: str) -> str:
        """``model`` as a folder name and cell-id part (``<stem>.<Class>`` for a model file)."""
        from robustrec.models.sources import parse_reference

        return parse_reference(self.reference(model)).label
    #: the stress plug-in files it loads (absolute paths; ``load_plugins``)
    plugins: list[str] = field(default_factory=list)

    def load_plugins(self) -> list[dict]:
        """Import the study's plug-in files (again: a process pool's or Ray's worker); one line if
        one is missing or broken."""
        from robustrec.studies.stresses import load_plugins

        return load_plugins(self.plugins)

    @property
    def audits_test(self) -> bool:
        """A protocol audit: every grid point trained on every seed (selection 'test'/'test-epoch')."""
        return self.selection in ("test", "test-epoch")

    @property
    def valid_metric(self) -> str:
        """The validation metric grid points are chosen on (TrainConfig's unless [train] sets it)."""
        from robustrec.training import TrainConfig

        return self.train.get("valid_metric", TrainConfig.valid_metric)

    def fingerprint(self) -> str:
        """Changes whenever anything that defines the cells changes."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        return out

    def train_config(self, dataset: str, model: str, strategy: str, point: dict, seed: int):
        """The TrainConfig of one training cell (validated); ``strategy`` "baseline" fits
        baseline ``model`` (plain, the [train] settings, default hyper-parameters)."""
        from robustrec.config import from_dict
        from robustrec.models import get_model_class
        from robustrec.training import TrainConfig
        from robustrec.training.config import DEFAULT_RHO

        if strategy == BASELINE:
            values = {**self.train, "model": model, "dataset": dataset, "data_dir": self.data_dir, "seed": seed}
            if not get_model_class(model).multimodal:
                values.pop("modalities", None)
            return from_dict(TrainConfig, values, f"baseline {model}").validate()
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        model_params = {k: str(v) for k, v in point.items() if k not in train_fields}
        cls = get_model_class(self.reference(model))
        from_dict(cls.Params, model_params, model)  # names and types
        training = {k: v for k, v in point.items() if k in train_fields}
        values = {**self.train, **self.train_models.get(model, {}), **training, "model": self.reference(model),
                  "dataset": dataset,
                  "data_dir": self.data_dir,
                  "seed": seed, "model_params": model_params}
        if not cls.multimodal:
            values.pop("modalities", None)  # [train] modalities are for the study's multimodal models
        step = dict(self.strategies[strategy])
        kind = step.pop("step", "plain")
        rho = step.pop("rho", None)
        if kind == "mg":
            kind, step["mg"] = "plain", True
        if kind == "sgbd":
            step["mg"] = True
        values.update(step, step=kind, sam_rho=DEFAULT_RHO.get(kind, 0.0) if rho is None else rho)
        if self.selection == "test-epoch":
            values["track_test"] = True  # per-epoch test metrics, read only by the audit
        return from_dict(TrainConfig, values, f"training of {model} ({strategy})").validate()


def study_from_dict(values: dict) -> Study:
    """The Study a manifest recorded (``Study.to_dict``)."""
    values = dict(values)
    values["path"] = Path(values["path"])
    values["stresses"] = [StressEntry(**entry) for entry in values.get("stresses", [])]
    return Study(**values)


def _flat(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def load_study(path: str | Path, data: bool = True) -> Study:
    """Read and validate a study file; every mistake is a one-line ConfigError. ``data``: also
    check that its datasets and the modalities it names exist (``check_data``)."""
    from robustrec.files import read_toml

    path = Path(path)
    study = parse_study(read_toml(path, "study file"), path)
    if data:
        check_data(study)
    return study


def parse_study(raw: dict, path: Path) -> Study:
    from robustrec.studies.stresses import available_stresses, load_plugins, stress_spec

    _unknown(raw, TOP_KEYS, "study file")
    where = f"{path.name}"
    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p for p in plugins):
        raise ConfigError(f"{where}: plugins must be a list of Python files, got {plugins!r}")
    try:
        loaded = load_plugins(plugins, relative_to=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    kinds = available_stresses()
    datasets = _names(raw, "datasets", where)
    for dataset in datasets:
        check_folder_name(dataset, f"{where}: dataset name")
    models = _names(raw, "models", where)
    references = _model_references(models, path, where)
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of integers, got {seeds!r}")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise ConfigError(f"{where}: seeds must lie between 0 and 2^63-1, got {bad[0]}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds lists a seed twice: {seeds}")
    strategies = _strategies(raw, where)
    selection = raw.get("selection", "each")
    if selection not in SELECTIONS:
        raise ConfigError(f"{where}: selection must be 'each' (every strategy searches its grid), 'baseline' "
                          f"(other strategies reuse plain's point), or, for a protocol audit, 'test' / 'test-epoch' "
                          f"(every point on every seed; the report adds the optimistic test-selected gains), "
                          f"got {selection!r}")
    if selection == "baseline" and "plain" not in strategies:
        raise ConfigError(f"{where}: selection = 'baseline' needs the plain strategy in strategies")
    train = raw.get("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"{where}: [train] must be a table of TrainConfig fields")
    train = dict(train)
    from robustrec.training import TrainConfig

    train_fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in CELL_KEYS]
    train_models = {key: train.pop(key) for key in list(train) if isinstance(train[key], dict)}
    for model, table in train_models.items():
        if model not in models:
            raise ConfigError(f"{where}: [train.{model}] names a model that is not in models ({', '.join(models)})")
        _unknown(table, train_fields, f"[train.{model}]")
    _unknown(train, train_fields, "[train]")
    grids, grid_sources = _grids(raw.get("grid", {}), models, where, references, train_models)
    for model, table in train_models.items():
        both = sorted(set(table) & set(grids[model][0]))
        if both:
            raise ConfigError(f"{where}: {both[0]} is set in both [train.{model}] and [grid.{model}]; keep one "
                              f"(a grid with one value is the same fixed setting)")
    data_dir = str((path.parent / raw.get("data_dir", "data")).resolve()) if not Path(
        str(raw.get("data_dir", "data"))).is_absolute() else str(raw["data_dir"])
    name = raw.get("name") or path.stem
    if not isinstance(name, str):
        raise ConfigError(f"{where}: name must be a string, got {name!r}")
    check_folder_name(name, f"{where}: name (the study folder's default name)")
    baselines = _baselines(raw, models, references, strategies, where)
    study = Study(name=name, path=path.resolve(), data_dir=data_dir, datasets=datasets, models=models,
                  strategies=strategies, seeds=seeds, selection=selection, train=train, grids=grids,
                  train_models=train_models, references=references, baselines=baselines,
                  plugins=[record["path"] for record in loaded], grid_sources=grid_sources)
    stresses = raw.get("stress", [])
    if not isinstance(stresses, list):
        raise ConfigError(f"{where}: stress must be an array of tables ([[stress]])")
    for index, table in enumerate(stresses, 1):
        table = dict(table)
        kind = table.pop("kind", None)
        if kind not in kinds:
            raise ConfigError(f"{where}: [[stress]] #{index} needs kind = one of {', '.join(kinds)} (or a kind of "
                              f"a file in plugins), got {kind!r}")
        settings = {key: table.pop(key) for key in STRESS_SETTINGS if key in table}
        applies = table.pop("models", models)
        if not isinstance(applies, list) or not applies or any(m not in [*models, *baselines] for m in applies):
            raise ConfigError(f"{where}: [[stress]] #{index} models must be a non-empty list of the study's models "
                              f"and baselines ({', '.join([*models, *baselines])}), got {applies!r}")
        try:
            stress_spec(kind, table, f"[[stress]] #{index} ({kind})")  # checks the options now
        except ConfigError as exc:
            extra = ", ".join([*STRESS_SETTINGS, "models"])
            raise ConfigError(f"{exc} (and {extra})" if "known:" in str(exc) else str(exc)) from None
        _stress_settings(settings, f"[[stress]] #{index}")
        study.stresses.append(StressEntry(kind, table, settings, applies))
    # every training cell's config must validate now, not in the middle of the study
    for dataset, model, strategy in itertools.product(datasets, models, strategies):
        for point in grids[model]:
            for seed in seeds:
                study.train_config(dataset, model, strategy, point, seed)
    for dataset, model in itertools.product(datasets, baselines):
        study.train_config(dataset, model, BASELINE, {}, seeds[0])
    return study


def _baselines(raw: dict, models: list[str], references: dict[str, str], strategies: dict,
               where: str) -> list[str]:
    """The study's baselines: ``baselines`` (default ``DEFAULT_BASELINES``), each a registered
    model with nothing to learn; such models belong there, never in ``models``."""
    from robustrec.models import available_models, get_model_class

    known = available_models()
    fitted = sorted(name for name, cls in known.items() if not getattr(cls, "trainable", True))
    for model in models:
        if not getattr(get_model_class(references.get(model, model)), "trainable", True):
            raise ConfigError(f"{where}: {model!r} has nothing to learn: list it in baselines, not models "
                              f"(baselines = [{', '.join(repr(m) for m in fitted)}])")
    baselines = raw.get("baselines", DEFAULT_BASELINES)
    if not isinstance(baselines, list) or not all(isinstance(b, str) and b for b in baselines):
        raise ConfigError(f"{where}: baselines must be a list of names ([] for none), got {baselines!r}")
    if len(set(baselines)) != len(baselines):
        raise ConfigError(f"{where}: baselines lists a name twice: {baselines}")
    for name in baselines:
        if name not in fitted:
            raise ConfigError(f"{where}: unknown baseline {name!r}; baselines are models with nothing to learn: "
                              f"{', '.join(fitted)}")
    if baselines and BASELINE in strategies:
        raise ConfigError(f"{where}: the strategy name {BASELINE!r} is reserved for the baselines' rows; "
                          f"rename the strategy")
    return list(baselines)


def check_data(study: Study) -> None:
    """Every dataset exists under the study's data_dir (the built-in synthetic one is made on first
    use) and has the modalities its trainings and stress tests name: one ConfigError line, before
    any work."""
    from robustrec.data import SYNTHETIC
    from robustrec.data.mmrec import feature_modalities
    from robustrec.models import get_model_class

    root = Path(study.data_dir)
    for dataset in study.datasets:
        folder = root / dataset
        if dataset == SYNTHETIC and not (folder / f"{dataset}.inter").is_file():
            from robustrec.synthetic.folder import MODALITIES

            available = MODALITIES
        elif (folder / f"{dataset}.inter").is_file():
            available = feature_modalities(folder)
        else:
            here = sorted(p.name for p in root.iterdir() if (p / f"{p.name}.inter").is_file()) if root.is_dir() else []
            known = f"datasets there: {', '.join(here)}" if here else "no dataset there"
            raise ConfigError(f"{study.path.name}: unknown dataset {dataset!r}: no {folder / (dataset + '.inter')} "
                              f"({known}; built in: {SYNTHETIC}); check datasets and data_dir")
        has = ", ".join(available) or "none"
        for model in study.baselines:
            if get_model_class(model).multimodal and not available:
                raise ConfigError(f"{study.path.name}: baseline {model!r} needs item features, which dataset "
                                  f"{dataset} lacks (no <modality>_feat.npy); drop it from baselines")
        for model in study.models:
            wanted = {**study.train, **study.train_models.get(model, {})}.get("modalities")
            if wanted and get_model_class(study.reference(model)).multimodal:
                missing = [m for m in wanted if m not in available]
                if missing:
                    raise ConfigError(f"{study.path.name}: [train] modalities names {missing[0]}, which dataset "
                                      f"{dataset} lacks (its modalities: {has})")
        for index, stress in enumerate(study.stresses, 1):
            for modality in stress_modalities(stress.kind, stress.options):
                if modality not in available:
                    hint = (f"; make it with `robustrec features extract --dataset {dataset} --modalities {modality}`"
                            if modality in ("image", "text") else "")
                    raise ConfigError(f"{study.path.name}: [[stress]] #{index} ({stress.kind}) needs the {modality} "
                                      f"modality, which dataset {dataset} lacks (its modalities: {has}){hint}")


def _model_references(models: list[str], path: Path, where: str) -> dict[str, str]:
    """Each model of a study file that comes from a file -> its canonical reference (relative
    paths from the study file's folder); every model is loaded now, so an unknown name, a
    missing file or a broken class is one line before any work. Labels must be distinct."""
    from robustrec.models import get_model_class
    from robustrec.models.sources import parse_reference

    references, labels = {}, {}
    for model in models:
        ref = parse_reference(model, path.parent.resolve())
        try:
            get_model_class(ref.text)
        except ConfigError as exc:
            raise ConfigError(f"{where}: models: {exc}") from None
        if ref.kind != "name":
            references[model] = ref.text
        if ref.label in labels:
            raise ConfigError(f"{where}: models {labels[ref.label]!r} and {model!r} would share the folder name "
                              f"{ref.label!r}; rename one file or class")
        labels[ref.label] = model
    return references


def stress_modalities(kind: str, options: dict) -> list[str]:
    """The item modalities a stress test of ``kind`` with ``options`` needs in the dataset."""
    from robustrec.studies.stresses import stress_spec

    return stress_spec(kind, options).stress_modalities()


def _stress_settings(settings: dict, where: str) -> None:
    from robustrec.config import from_dict
    from robustrec.studies.runner import StudySettings

    from_dict(StudySettings, settings, where).validate()


def _unknown(table: dict, known, where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)} in {where}; known: {', '.join(known)}")


def _names(raw: dict, key: str, where: str) -> list[str]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: {key} must be a non-empty list of names, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: {key} lists a name twice: {value}")
    return value


def _strategies(raw: dict, where: str) -> dict[str, dict]:
    defined = raw.get("strategy", {})
    if not isinstance(defined, dict):
        raise ConfigError(f"{where}: [strategy.NAME] tables define strategies")
    for name, table in defined.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [strategy.{name}] must be a table")
        _unknown(table, STRATEGY_KEYS, f"[strategy.{name}]")
    names = raw.get("strategies", ["plain", "mg"])
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: strategies must be a non-empty list of names, got {names!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: strategies lists a name twice: {names}")
    out = {}
    for name in [*names, *defined]:
        check_folder_name(name, f"{where}: strategy name")
    for name in names:
        if name in defined:
            base = BUILTIN_STRATEGIES.get(name, {})
            out[name] = {**base, **defined[name]}
        elif name in BUILTIN_STRATEGIES:
            out[name] = dict(BUILTIN_STRATEGIES[name])
        else:
            raise ConfigError(f"{where}: unknown strategy {name!r}; built in: {', '.join(BUILTIN_STRATEGIES)}, "
                              f"or define it in a [strategy.{name}] table")
    return out


def _grids(raw: dict, models: list[str], where: str, references: dict[str, str],
           train_models: dict[str, dict]) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Every model's grid points, and model -> the MMRec YAML a grid was read from: an
    ``mmrec:`` model without a [grid.MODEL] table searches its YAML's grid (less the keys its
    [train.MODEL] fixes); a [grid.MODEL] table, even an empty one, replaces that grid."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [grid.MODEL] tables hold the grids")
    extra = sorted(set(raw) - set(models))
    if extra:
        raise ConfigError(f"{where}: [grid.{extra[0]}] names a model that is not in models ({', '.join(models)})")
    grids, sources = {}, {}
    for model in models:
        table = raw.get(model)
        if table is None:
            table, source = _yaml_grid(references.get(model), train_models.get(model, {}))
            if source:
                sources[model] = source
        axes = []
        for key, values in table.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                raise ConfigError(f"{where}: [grid.{model}] {key} is an empty list; give at least one value")
            if len(set(map(str, values))) != len(values):
                raise ConfigError(f"{where}: [grid.{model}] {key} lists a value twice: {values}")
            axes.append([(key, value) for value in values])
        grids[model] = [dict(combo) for combo in itertools.product(*axes)] if axes else [{}]
    return grids, sources


def _yaml_grid(reference: str | None, fixed: dict) -> tuple[dict, str | None]:
    """The grid of an ``mmrec:`` model's YAML (``param_grid``: its ``hyper_parameters`` keys,
    ``learning_rate`` as ``lr``), without the keys ``fixed`` ([train.MODEL]) sets and with each
    value once; the YAML's path (None: not an MMRec model, or no grid)."""
    from robustrec.models import get_model_class
    from robustrec.models.sources import parse_reference

    if reference is None or parse_reference(reference).kind != "mmrec":
        return {}, None
    cls = get_model_class(reference)
    grid = {}
    for key, values in getattr(cls, "param_grid", {}).items():
        if key not in fixed:
            once = {}
            for value in values:
                once.setdefault(str(value), value)
            grid[key] = list(once.values())
    yaml = getattr(getattr(cls, "mmrec_yaml", None), "path", None)
    return (grid, str(yaml)) if grid and yaml else ({}, None)


def example_studies() -> list[Path]:
    """The example study files shipped in the package (``robustrec/examples/studies``)."""
    folder = Path(__file__).resolve().parent.parent / "examples" / "studies"
    return sorted(folder.glob("*.toml"))


def copy_examples(folder: str | Path) -> list[Path]:
    """Copy the example study files into ``folder`` (created; files already there are kept);
    returns the files written."""
    from robustrec.paths import check_output_dir
    from robustrec.reports.schema import write_atomic

    folder = check_output_dir(folder, "--copy")
    written = []
    for source in example_studies():
        target = Path(folder) / source.name
        if not target.exists():
            text = source.read_text(encoding="utf-8")
            written.append(write_atomic(target, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8")))
    return written
