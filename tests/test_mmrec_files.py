"""MMRec model files run unchanged (robustrec.models.mmrec): MMRec-style classes written here in tmp
files, importing the ``common`` / ``utils`` modules robustrec supplies."""

from __future__ import annotations

import sys
import textwrap
import types

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli
from robustrec.config import from_dict
from robustrec.errors import ConfigError
from robustrec.training import TrainConfig, Trainer

MF = '''
import numpy as np
import torch.nn as nn
from common.abstract_recommender import GeneralRecommender
from common.loss import BPRLoss, EmbLoss
from common.init import xavier_normal_initialization


class MF(GeneralRecommender):
    def __init__(self, config, dataset):
        super(MF, self).__init__(config, dataset)
        self.reg_weight = config['reg_weight']
        self.user_embedding = nn.Embedding(self.n_users, config['embedding_size'])
        self.item_embedding = nn.Embedding(self.n_items, config['embedding_size'])
        self.loss, self.reg_loss = BPRLoss(), EmbLoss()
        self.apply(xavier_normal_initialization)
        assert dataset.inter_matrix(form='coo').shape == (self.n_users, self.n_items)

    def calculate_loss(self, interaction):
        u, p, n = (self.user_embedding(interaction[0]), self.item_embedding(interaction[1]),
                   self.item_embedding(interaction[2]))
        return self.loss((u * p).sum(-1), (u * n).sum(-1)), self.reg_weight * self.reg_loss(u, p, n)

    def full_sort_predict(self, interaction):
        return self.user_embedding(interaction[0]) @ self.item_embedding.weight.T
'''

#: a LATTICE-like model: a kNN item graph from v_feat and t_feat cached in data_path + dataset,
#: feature tables initialised from the features, an ID item table propagated over the graph
GRAPH = '''
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from common.abstract_recommender import GeneralRecommender
from common.loss import BPRLoss
from utils.utils import build_sim, build_knn_normalized_graph


class Graph(GeneralRecommender):
    def __init__(self, config, dataset):
        super(Graph, self).__init__(config, dataset)
        dim, self.knn_k = config['embedding_size'], config['knn_k']
        self.user_embedding = nn.Embedding(self.n_users, dim)
        self.item_id_embedding = nn.Embedding(self.n_items, dim)
        self.image_embedding = nn.Embedding.from_pretrained(self.v_feat, freeze=False)
        self.image_trs = nn.Linear(self.v_feat.shape[1], dim)
        self.text_trs = nn.Linear(self.t_feat.shape[1], dim)
        folder = os.path.abspath(config['data_path'] + config['dataset'])
        cached = os.path.join(folder, 'mm_adj_{}.pt'.format(self.knn_k))
        if os.path.exists(cached):
            self.mm_adj = torch.load(cached)
        else:
            image = build_knn_normalized_graph(build_sim(self.v_feat), self.knn_k, True, 'sym')
            text = build_knn_normalized_graph(build_sim(self.t_feat), self.knn_k, False, 'sym')
            self.mm_adj = (0.5 * image.to_dense() + 0.5 * text).to_sparse().cuda()
            torch.save(self.mm_adj, cached)
        self.loss = BPRLoss()

    def pre_epoch_processing(self):
        self.epochs_started = getattr(self, 'epochs_started', 0) + 1

    def forward(self):
        items = self.item_id_embedding.weight + torch.sparse.mm(self.mm_adj, self.item_id_embedding.weight)
        items = items + 0.1 * self.image_trs(self.image_embedding.weight) + 0.1 * self.text_trs(self.t_feat)
        return self.user_embedding.weight, items

    def calculate_loss(self, interaction):
        users, items = self.forward()
        u = users[interaction[0]]
        return self.loss((u * items[interaction[1]]).sum(-1), (u * items[interaction[2]]).sum(-1))

    def full_sort_predict(self, interaction):
        users, items = self.forward()
        return users[interaction[0]] @ items.T
'''


def _write(root, name, source, yaml=None, cls=None):
    (root / "models").mkdir(exist_ok=True)
    path = root / "models" / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    if yaml is not None:
        (root / "configs" / "model").mkdir(parents=True, exist_ok=True)
        (root / "configs" / "model" / f"{cls}.yaml").write_text(textwrap.dedent(yaml))
    return path


@pytest.fixture()
def mf_file(tmp_path):
    return _write(tmp_path, "mf", MF, "embedding_size: 16\nreg_weight: [1e-04, 1e-02]\nlearning_rate: [0.001, 0.01]\n"
                                      "weight_size: [64, 64]\nhyper_parameters: [\"reg_weight\", \"learning_rate\"]\n", "MF")


@pytest.fixture()
def graph_file(tmp_path):
    return _write(tmp_path, "graph", GRAPH, "embedding_size: 16\nknn_k: [5, 10]\nhyper_parameters: [\"knn_k\"]\n", "Graph")


def _build(cls, data, seed=0, **params):
    torch.manual_seed(seed)
    return cls(data, from_dict(cls.Params, params, what=cls.name))


def test_yaml_gives_typed_params_and_a_grid(mf_file):
    from robustrec.models.mmrec.loader import load_mmrec_model_class

    cls = load_mmrec_model_class(mf_file, "MF")
    params = cls.Params()
    assert (params.embedding_size, params.reg_weight, params.weight_size) == (16, 1e-4, [64, 64])
    assert cls.param_grid == {"reg_weight": [1e-4, 1e-2], "lr": [0.001, 0.01]}  # MMRec's learning_rate is --lr
    assert not cls.multimodal  # the file never reads v_feat / t_feat
    with pytest.raises(ConfigError, match="learning_rate"):
        from_dict(cls.Params, {"learning_rate": "0.1"}, what=cls.name)
    with pytest.raises(ConfigError, match="embedding_size must be int"):
        from_dict(cls.Params, {"embedding_size": "x"}, what=cls.name)


def test_mf_trains_plain_and_mg_and_noise_changes_scores(mf_file, small_data):
    from robustrec.models.mmrec.loader import load_mmrec_model_class
    from robustrec.perturbations import GaussianEmbeddingNoise

    cls = load_mmrec_model_class(mf_file, "MF")
    users = torch.arange(20)
    for mg in (False, True):
        model = _build(cls, small_data)
        before = model.full_scores(users).clone()
        result = Trainer(TrainConfig(epochs=2, mg=mg, batch_size=512)).fit(model, small_data)
        assert np.isfinite(result.history[-1].loss)
        assert not torch.equal(before, model.full_scores(users))
    assert sorted(model.embedding_tables()) == ["item_item_embedding.weight", "user_user_embedding.weight"]
    noisy = GaussianEmbeddingNoise(sigma=0.1).apply(model, seed=1)
    assert not torch.equal(noisy.full_scores(users), model.full_scores(users))
    assert torch.equal(GaussianEmbeddingNoise(sigma=0.0).apply(model, seed=1).full_scores(users),
                       model.full_scores(users))


def test_feature_model_content_stress_rebuilds_the_graph(graph_file, small_data, tmp_path):
    from robustrec.models.mmrec.loader import load_mmrec_model_class
    from robustrec.perturbations.modality import MissingModality

    cls = load_mmrec_model_class(graph_file, "Graph")
    assert cls.multimodal and cls.Params().knn_k == 5
    model = _build(cls, small_data)
    Trainer(TrainConfig(epochs=2, mg=True, batch_size=512)).fit(model, small_data)
    assert model.mmrec_model.epochs_started == 2  # pre_epoch → pre_epoch_processing
    # the image table was initialised from the features: not an ID table noise may target
    assert sorted(model.embedding_tables()) == ["item_item_id_embedding.weight", "user_user_embedding.weight"]
    assert model._feature_tables == {"image_embedding.weight": "image"}
    users = torch.arange(30)
    clean = model.full_scores(users)
    graph = model.mmrec_model.mm_adj.to_dense()
    stressed = MissingModality("image", small_data.n_items, rate=0.5, fill="zeros").apply(model, seed=3)
    assert not torch.equal(stressed.mmrec_model.mm_adj.to_dense(), graph)  # rebuilt, not read from a cache
    assert not torch.equal(stressed.full_scores(users), clean)
    assert torch.equal(model.full_scores(users), clean)  # the clean model is untouched
    assert torch.equal(MissingModality("image", small_data.n_items, rate=0.0, fill="zeros").apply(model, seed=3).full_scores(users), clean)
    # weights survive the rebuild; the image table is the new features plus what training added
    learned = model.mmrec_model.image_embedding.weight.detach()
    shift = learned - model.feat_image
    new = stressed.mmrec_model.image_embedding.weight.detach()
    assert torch.allclose(new, stressed.feat_image + shift, atol=1e-6)
    assert torch.equal(stressed.mmrec_model.user_embedding.weight, model.mmrec_model.user_embedding.weight)
    assert not list(tmp_path.glob("**/mm_adj_*.pt"))  # cache files go to a scratch folder, removed


def test_cli_train_noise_and_reload(mf_file, graph_file, synthetic_dir, tmp_path, capsys):
    from robustrec.checkpoints import load_model

    ck = tmp_path / "ck"
    code, out, err = run_cli(capsys, "train", "--model", f"mmrec:{graph_file}:Graph", "--epochs", "2", "-q",
                             "--threads", "1", "--data-dir", synthetic_dir, "--checkpoint-dir", ck,
                             "--param", "knn_k=3", "--mg")
    assert code == 0, out + err
    (run,) = ck.iterdir()
    model, data, _ = load_model(run)
    assert model.params.knn_k == 3
    again, _, _ = load_model(run, data=data)
    users = torch.arange(10)
    assert torch.equal(model.full_scores(users), again.full_scores(users))
    code, out, err = run_cli(capsys, "perturb", "modality", str(run), "--missing", "image", "--rate", "0.5",
                             "--threads", "1", "--report-dir", tmp_path / "reports")
    assert code == 0, out + err
    assert len(list((tmp_path / "reports").glob("*.json"))) == 1


def test_unsupplied_module_is_one_line_and_writes_nothing(tmp_path, synthetic_dir, capsys):
    path = _write(tmp_path, "gnn", "import torch_geometric\nfrom common.abstract_recommender import GeneralRecommender\n")
    ck = tmp_path / "ck"
    line = assert_one_line_error(*run_cli(capsys, "train", "--model", f"mmrec:{path}:GNN", "--epochs", "1",
                                          "--data-dir", synthetic_dir, "--checkpoint-dir", ck), "torch_geometric")
    assert "not installed" in line
    assert not ck.exists()
    path = _write(tmp_path, "other", "from common.trainer import Trainer\n")
    assert_one_line_error(*run_cli(capsys, "train", "--model", f"mmrec:{path}:X", "--data-dir", synthetic_dir,
                                   "--checkpoint-dir", ck), "common.trainer", "does not supply")
    assert not ck.exists()


def test_the_users_own_common_module_is_restored(mf_file):
    from robustrec.models.mmrec.imports import load_module

    mine = types.ModuleType("common")
    sys.modules["common"] = mine
    try:
        load_module(mf_file)
        assert sys.modules["common"] is mine
        assert "common.loss" not in sys.modules and "utils.utils" not in sys.modules
    finally:
        del sys.modules["common"]


def test_random_draws_while_scoring_are_seeded(mf_file, small_data):
    """A model that samples at inference (LGMRec's Gumbel-softmax) scores the same every time."""
    from robustrec.models.mmrec.loader import load_mmrec_model_class

    path = mf_file.parent / "noisy.py"
    path.write_text(MF.replace("MF", "Noisy").replace(
        "return self.user_embedding(interaction[0]) @ self.item_embedding.weight.T",
        "return self.user_embedding(interaction[0]) @ (self.item_embedding.weight + torch.rand(1)).T").replace(
        "import numpy as np", "import numpy as np\nimport torch"))
    model = _build(load_mmrec_model_class(path, "Noisy"), small_data)
    users = torch.arange(5)
    state = torch.get_rng_state()
    assert torch.equal(model.full_scores(users), model.full_scores(users))
    assert torch.equal(torch.get_rng_state(), state)


def test_features_only_in_the_loss_make_content_stress_unaffected(mf_file, graph_file, small_data):
    """BM3's features shape only its training loss: a content stress cannot change its scores."""
    from robustrec.models.mmrec.loader import load_mmrec_model_class
    from robustrec.perturbations.modality import model_unaffected_reason

    path = mf_file.parent / "lossfeat.py"
    path.write_text(MF.replace("MF", "LossFeat").replace(
        "self.reg_weight * self.reg_loss(u, p, n)", "self.reg_weight * (self.t_feat[interaction[1]] ** 2).mean()"))
    loss_only = _build(load_mmrec_model_class(path, "LossFeat"), small_data)
    assert loss_only.multimodal and not loss_only.features_at_inference
    assert "do not enter its scores" in model_unaffected_reason(loss_only, "text")
    graph = _build(load_mmrec_model_class(graph_file, "Graph"), small_data)
    assert graph.features_at_inference and model_unaffected_reason(graph, "image") is None


def _study(root, data_dir, extra=""):
    path = root / "s.toml"
    path.write_text(f'name = "mm"\ndata_dir = "{data_dir}"\ndatasets = ["synthetic"]\n'
                    f'models = ["mmrec:models/mf.py:MF"]\nstrategies = ["plain"]\nseeds = [0, 1]\n'
                    f'[train]\nepochs = 1\nbatch_size = 512\n{extra}')
    return path


def test_a_study_searches_the_yaml_grid_unless_its_own_grid_replaces_it(mf_file, synthetic_dir, tmp_path):
    from robustrec.studies.spec import load_study

    model = "mmrec:models/mf.py:MF"
    study = load_study(_study(tmp_path, synthetic_dir), data=False)
    assert [(p["reg_weight"], p["lr"]) for p in study.grids[model]] == [
        (1e-4, 0.001), (1e-4, 0.01), (1e-2, 0.001), (1e-2, 0.01)]
    assert study.grid_sources == {model: str(tmp_path / "configs" / "model" / "MF.yaml")}
    assert study.train_config("synthetic", model, "plain", study.grids[model][3], 0).lr == 0.01
    own = load_study(_study(tmp_path, synthetic_dir, f'[grid."{model}"]\nreg_weight = [0.5]\n'), data=False)
    assert own.grids[model] == [{"reg_weight": 0.5}] and own.grid_sources == {}  # replaced, not merged
    fixed = load_study(_study(tmp_path, synthetic_dir, f'[train."{model}"]\nlr = 0.1\n'), data=False)
    assert fixed.grids[model] == [{"reg_weight": 1e-4}, {"reg_weight": 1e-2}]  # [train.MODEL] fixes lr


def test_cli_study_with_an_mmrec_model_searches_its_yaml_on_validation(mf_file, synthetic_dir, tmp_path, capsys):
    from robustrec.checkpoints import load_model
    from robustrec.errors import CheckpointError
    from robustrec.studies.plan import Manifest, plan, read_manifest
    from robustrec.studies.spec import load_study

    study_file, out = _study(tmp_path, synthetic_dir), tmp_path / "out"
    code, text, err = run_cli(capsys, "study", "check", study_file, "--out", out)
    assert code == 0, text + err
    assert "4 point(s) from its MMRec YAML" in text and "reg_weight: 0.0001, 0.01; lr: 0.001, 0.01" in text
    assert max(map(len, text.splitlines())) <= 80
    code, text, err = run_cli(capsys, "study", "run", study_file, "--out", out, "--threads", "1", "--workers", "1",
                              "-q")
    assert code == 0, text + err
    cells = {cid: c for cid, c in read_manifest(out)["cells"].items() if "/mf.MF/" in cid}  # not baselines
    search = {cid: c for cid, c in cells.items() if cid.endswith("/s0")}
    assert len(search) == 4 and len(cells) == 5  # the 2 × 2 YAML grid on seed 0, the chosen point on seed 1
    (chosen,) = [c for cid, c in cells.items() if cid.endswith("/s1")]
    scores = {c["spec"]["point_index"]: c["result"]["valid"]["recall@20"] for c in search.values()}
    assert chosen["spec"]["point_index"] == max(scores, key=lambda i: (scores[i], -i))  # validation only
    code, text, err = run_cli(capsys, "study", "report", out)
    assert code == 0, text + err
    assert "mmrec:models/mf.py:MF on synthetic" in text
    # an edited YAML is an edited source: the cells retrain, a run of the old YAML is refused
    run = out / chosen["spec"]["run_dir"]
    yaml = tmp_path / "configs" / "model" / "MF.yaml"
    yaml.write_text(yaml.read_text() + "# edited\n")
    study = load_study(study_file, data=False)
    replanned = [cell for cell in plan(study, Manifest(out, study)) if cell.id in cells]
    assert len(replanned) >= 4 and all(cell.spec != cells[cell.id]["spec"] for cell in replanned)
    with pytest.raises(CheckpointError, match="model YAML of .* changed since it was trained"):
        load_model(run)
