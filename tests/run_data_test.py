"""bam_tf.run_data: a split as a run reads it (cap, swapped pairs for training only), on synthetic files."""

from bam_tf.config import BamConfig
from bam_tf.glue_reader import read_split
from bam_tf.run_data import read_run_split
from bam_tf.task_set import GLUE

HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


def _write_stsb(root, split, pairs):
    (root / "STS-B").mkdir(exist_ok=True)
    rows = "".join(f"{i}\tg\tf\ty\t{i}\ts\ts\t{a}\t{b}\t{score}\n" for i, (a, b, score) in enumerate(pairs))
    (root / "STS-B" / f"{split}.tsv").write_text(HEADER + rows)


def test_training_data_is_capped_then_doubled_by_swapped_pairs_and_dev_is_read_as_it_is(tmp_path):
    pairs = [("A cat.", "A dog.", "1.0"), ("Rain.", "Snow.", "2.5"), ("Hi.", "Hello.", "4.0")]
    _write_stsb(tmp_path, "train", pairs)
    _write_stsb(tmp_path, "dev", pairs)
    stsb = GLUE.get("STS-B")
    config = BamConfig(model_dir="unused", glue_dir=str(tmp_path), max_train_examples=2, max_eval_examples=1)
    train = read_run_split(config, stsb, "train")
    assert train.text_a == ["A cat.", "Rain.", "A dog.", "Snow."]  # the first 2 rows, then each swapped
    assert train.text_b == ["A dog.", "Snow.", "A cat.", "Rain."]
    assert [float(label) for label in train.labels] == [1.0, 2.5, 1.0, 2.5]
    assert read_run_split(config, stsb, "dev").text_a == ["A cat."]  # capped, never swapped
    unswapped = BamConfig(model_dir="unused", glue_dir=str(tmp_path), swap_pair_order=False)
    assert read_run_split(unswapped, stsb, "train").fingerprint() == read_split(tmp_path, stsb, "train").fingerprint()
    assert train.fingerprint() != read_run_split(unswapped, stsb, "train").fingerprint()
