"""bam_tf.backbone_spec: a --backbone value as a run records it."""

from bam_tf.backbone_spec import DEFAULT_BACKBONE, recorded_backbone


def test_a_local_folder_is_recorded_absolute_and_names_stay_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for folder in ("models/bert", "home/bert", DEFAULT_BACKBONE, "random:layers=1"):
        (tmp_path / folder).mkdir(parents=True)
    assert recorded_backbone("models/bert") == str(tmp_path / "models" / "bert")
    assert recorded_backbone("./models/../models/bert") == str(tmp_path / "models" / "bert")
    assert recorded_backbone("~/bert") == str(tmp_path / "home" / "bert")
    assert recorded_backbone(str(tmp_path / "models" / "bert")) == str(tmp_path / "models" / "bert")
    # names that load_backbone reads before any folder of that name, and names that are no folder here
    assert recorded_backbone(DEFAULT_BACKBONE) == DEFAULT_BACKBONE
    assert recorded_backbone("random:layers=1") == "random:layers=1"
    assert recorded_backbone("bert_tiny_en_uncased") == "bert_tiny_en_uncased"
    assert recorded_backbone("missing/folder") == "missing/folder"  # load_backbone names it: no such directory
