import json
import os

import numpy as np
import pytest

from bam_tf.backbone import BackboneError, load_backbone, packaged_minilm_dir
from bam_tf.text_encoding import TextEncoder


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("all-MiniLM-L6-v2")


def test_default_backbone_is_the_packaged_minilm(minilm):
    assert os.path.isfile(os.path.join(packaged_minilm_dir(), "model.safetensors"))
    assert (minilm.backbone.num_layers, minilm.backbone.hidden_dim) == (6, 384)
    # Ids from the model's own tokenizer.json vocabulary: hello=7592, world=2088; café loses its accent.
    assert [list(ids) for ids in minilm.tokenizer(["Hello world", "Café"])] == [[7592, 2088], [7668]]


def _mean_pooled(loaded, sentences):
    encoder = TextEncoder(loaded.tokenizer, 32)
    features = encoder(np.array(sentences))
    hidden = loaded.backbone(features)["sequence_output"].numpy()
    mask = features["padding_mask"].numpy()[..., None]
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_pretrained_weights_are_really_loaded(minilm):
    # all-MiniLM-L6-v2 is trained so that mean-pooled paraphrases are close; random weights are not.
    a, b, c = _mean_pooled(minilm, ["A man is playing a guitar.", "A person plays the guitar.",
                                    "Stock markets fell sharply on Monday."])
    assert a @ b > 0.6
    assert a @ b > a @ c + 0.3


def test_random_backbone_has_the_requested_shape():
    loaded = load_backbone("random:layers=1,hidden=16,heads=2,intermediate=32")
    assert (loaded.backbone.num_layers, loaded.backbone.hidden_dim) == (1, 16)
    assert loaded.tokenizer.vocabulary_size() == loaded.backbone.vocabulary_size


@pytest.mark.parametrize("spec, message", [
    ("random:layers=two", "expected layers=N"),
    ("random:depth=2", "expected layers=N"),
    ("./no/such/dir", "no such directory"),
])
def test_bad_backbone_values_are_explained(spec, message):
    with pytest.raises(BackboneError, match=message):
        load_backbone(spec)


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(BackboneError, match="neither metadata.json"):
        load_backbone(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(BackboneError, match="only BERT"):
        load_backbone(str(tmp_path))
