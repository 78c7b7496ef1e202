"""Tests for reading GLUE TSV files; synthetic files in tmp_path plus the real data when GLUE_DIR is set."""

import os
import pathlib

import numpy as np
import pytest

from bam_tf.glue_reader import GlueDataError, TaskData, read_split
from bam_tf.glue_tasks import TASKS
from bam_tf.task_set import glue_task

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"


def _write(root: pathlib.Path, relpath: str, content: str | bytes) -> str:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def test_cola_without_header_or_final_newline(tmp_path):
    _write(tmp_path, "CoLA/dev.tsv",
           "gj04\t1\t\tThe sailors rode.\ngj04\t0\t*\tRode the the.\nw_80\t1\t\tLast one.")
    data = read_split(tmp_path, glue_task("cola"), "dev")
    assert data.text_a == ["The sailors rode.", "Rode the the.", "Last one."]
    assert data.text_b is None
    assert data.labels.dtype == np.int32 and data.labels.tolist() == [1, 0, 1]
    assert data.ids == ["dev-0", "dev-1", "dev-2"] and data.official_index == ["0", "1", "2"]
    assert data.source == str(tmp_path / "CoLA" / "dev.tsv") and len(data) == 3


def test_mrpc_bom_is_stripped_and_quotes_kept_verbatim(tmp_path):
    _write(tmp_path, "MRPC/train.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                       "1\t11\t12\tHe said \" hi .\t' quoted \" text '\n"
                                       "0\t13\t14\t\"Whole\"\t\"\"\n")
    data = read_split(tmp_path, glue_task("MRPC"), "train")
    assert data.text_a == ['He said " hi .', '"Whole"']
    assert data.text_b == ["' quoted \" text '", '""']
    assert data.labels.tolist() == [1, 0]
    assert data.official_index == ["0", "1"]  # the #1 ID column is per sentence, not an example index


def test_crlf_line_ends_and_whitespace_kept(tmp_path):
    _write(tmp_path, "SST-2/train.tsv", "sentence\tlabel\r\ngood film \t1\r\n\t0\r\n")
    data = read_split(tmp_path, glue_task("SST-2"), "train")
    assert data.text_a == ["good film ", ""]  # empty text is valid input
    assert data.labels.tolist() == [1, 0]


def test_carriage_return_inside_a_line_is_an_error(tmp_path):
    path = _write(tmp_path, "RTE/dev.tsv", RTE_HEADER + "0\ta\rb\tc\tentailment\n")
    with pytest.raises(GlueDataError, match="carriage return inside a line") as e:
        read_split(tmp_path, glue_task("RTE"), "dev")
    assert str(e.value).startswith(f"{path}:2: ")


def test_empty_final_line_is_skipped(tmp_path):
    _write(tmp_path, "RTE/dev.tsv", RTE_HEADER + "0\ta\tb\tentailment\n\n")
    assert len(read_split(tmp_path, glue_task("RTE"), "dev")) == 1


def test_blank_line_in_the_middle_is_an_error(tmp_path):
    path = _write(tmp_path, "RTE/dev.tsv", RTE_HEADER + "0\ta\tb\tentailment\n\n1\tc\td\tentailment\n")
    with pytest.raises(GlueDataError, match="expected 4 columns, found 0") as e:
        read_split(tmp_path, glue_task("RTE"), "dev")
    assert str(e.value).startswith(f"{path}:3: ")


@pytest.mark.parametrize("content,message", [
    (RTE_HEADER, "only a header row"),
    ("", "file is empty"),
])
def test_file_without_data_rows(tmp_path, content, message):
    path = _write(tmp_path, "RTE/dev.tsv", content)
    with pytest.raises(GlueDataError, match=message) as e:
        read_split(tmp_path, glue_task("RTE"), "dev")
    assert str(e.value).startswith(f"{path}: ")


@pytest.mark.parametrize("bad_line,found", [("1\tonly two\tlabel", 3), ("1\ta\tb\tc\tentailment", 5)])
def test_wrong_column_count_names_the_line(tmp_path, bad_line, found):
    path = _write(tmp_path, "RTE/train.tsv", RTE_HEADER + "0\ta\tb\tentailment\n" + bad_line + "\n")
    with pytest.raises(GlueDataError) as e:
        read_split(tmp_path, glue_task("RTE"), "train")
    assert str(e.value) == f"{path}:3: expected 4 columns, found {found}"


def test_unknown_label_lists_valid_labels(tmp_path):
    path = _write(tmp_path, "RTE/train.tsv", RTE_HEADER + "0\ta\tb\tmaybe\n")
    message = "unknown RTE label 'maybe'; valid labels: entailment, not_entailment"
    with pytest.raises(GlueDataError, match=message) as e:
        read_split(tmp_path, glue_task("RTE"), "train")
    assert str(e.value).startswith(f"{path}:2: ")


def _stsb_row(score: str) -> str:
    return f"0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA b.\tC d.\t{score}\n"


_STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


@pytest.mark.parametrize("score,message", [
    ("abc", "is not a number"), ("", "is not a number"), ("5.5", "outside"), ("-0.1", "outside"),
    ("nan", "outside"),
])
def test_bad_stsb_score(tmp_path, score, message):
    path = _write(tmp_path, "STS-B/dev.tsv", _STSB_HEADER + _stsb_row("1.0") + _stsb_row(score))
    with pytest.raises(GlueDataError, match=message) as e:
        read_split(tmp_path, glue_task("STS-B"), "dev")
    assert str(e.value).startswith(f"{path}:3: ")


def test_stsb_scores_are_float32(tmp_path):
    rows = _stsb_row("5.000") + _stsb_row("0") + _stsb_row("3.99999999999999")
    _write(tmp_path, "STS-B/train.tsv", _STSB_HEADER + rows)
    data = read_split(tmp_path, glue_task("STS-B"), "train")
    assert data.labels.dtype == np.float32
    np.testing.assert_allclose(data.labels, [5.0, 0.0, 4.0], atol=1e-6)
    assert data.text_a == ["A b."] * 3 and data.text_b == ["C d."] * 3


def test_test_split_is_unlabeled_with_official_index(tmp_path):
    _write(tmp_path, "RTE/test.tsv", "index\tsentence1\tsentence2\n7\ta\tb\n9\tc\td\n")
    data = read_split(tmp_path, glue_task("RTE"), "test")
    assert data.labels is None
    assert data.ids == ["test-0", "test-1"] and data.official_index == ["7", "9"]


def test_mnli_matched_and_mismatched(tmp_path):
    prefix = "\t".join(["5", "p", "q", "fiction", "(", ")", "(", ")"])
    _write(tmp_path, "MNLI/dev_matched.tsv", "h\n".replace("h", "\t".join(f"c{i}" for i in range(16)))
           + f"{prefix}\tPremise.\tHypothesis.\tneutral\tneutral\tneutral\tneutral\tneutral\tcontradiction\n")
    _write(tmp_path, "MNLI/dev_mismatched.tsv", "\t".join(f"c{i}" for i in range(16)) + "\n"
           + f"{prefix}\tP2.\tH2.\tneutral\t\t\t\t\tneutral\n")
    _write(tmp_path, "MNLI/train.tsv", "\t".join(f"c{i}" for i in range(12)) + "\n"
           + f"{prefix}\tP3.\tH3.\tentailment\tentailment\n")
    matched = read_split(tmp_path, glue_task("MNLI"), "dev")
    assert (matched.text_a, matched.text_b, matched.labels.tolist()) == (["Premise."], ["Hypothesis."], [2])
    assert matched.official_index == ["5"]
    mismatched = read_split(tmp_path, glue_task("MNLI-mm"), "dev")
    assert mismatched.text_a == ["P2."] and mismatched.labels.tolist() == [1]
    assert read_split(tmp_path, glue_task("MNLI"), "train").labels.tolist() == [0]


def test_qqp_train_and_test(tmp_path):
    _write(tmp_path, "QQP/train.tsv", "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                                      "133273\t213221\t213222\tHow?\tWhy?\t1\n")
    _write(tmp_path, "QQP/test.tsv", "id\tquestion1\tquestion2\n0\tWho?\tWhat?\n")
    train = read_split(tmp_path, glue_task("QQP"), "train")
    assert (train.text_a, train.text_b, train.labels.tolist(), train.official_index) == (
        ["How?"], ["Why?"], [1], ["133273"])
    test = read_split(tmp_path, glue_task("QQP"), "test")
    assert (test.text_a, test.text_b, test.labels) == (["Who?"], ["What?"], None)


def test_ax_reads_the_diagnostic_file(tmp_path):
    _write(tmp_path, "diagnostic/diagnostic.tsv", "index\tsentence1\tsentence2\n0\tThe cat sat.\tIt did not.")
    data = read_split(tmp_path, glue_task("AX"), "test")
    assert (data.text_a, data.text_b, data.labels) == (["The cat sat."], ["It did not."], None)


def test_missing_split_lists_present_files(tmp_path):
    _write(tmp_path, "RTE/train.tsv", RTE_HEADER + "0\ta\tb\tentailment\n")
    _write(tmp_path, "RTE/notes.txt", "x")
    with pytest.raises(GlueDataError, match="missing dev file for RTE; files present: notes.txt, train.tsv") as e:
        read_split(tmp_path, glue_task("RTE"), "dev")
    assert str(e.value).startswith(str(tmp_path / "RTE" / "dev.tsv") + ": ")


def test_missing_task_folder_lists_present_folders(tmp_path):
    _write(tmp_path, "RTE/train.tsv", RTE_HEADER)
    with pytest.raises(GlueDataError, match="no MNLI folder for task MNLI-mm; folders present: RTE"):
        read_split(tmp_path, glue_task("MNLI-mm"), "dev")


def test_missing_glue_dir(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(GlueDataError, match="GLUE data directory does not exist") as e:
        read_split(str(missing), glue_task("RTE"), "train")
    assert str(e.value).startswith(f"{missing}: ")


def test_split_the_task_does_not_have(tmp_path):
    with pytest.raises(ValueError, match="MNLI-mm has no 'train' split; available: dev, test"):
        read_split(tmp_path, glue_task("MNLI-mm"), "train")


def test_invalid_utf8_names_the_line(tmp_path):
    path = _write(tmp_path, "RTE/train.tsv", RTE_HEADER.encode() + b"0\ta\xff\tb\tentailment\n")
    with pytest.raises(GlueDataError, match="not valid UTF-8") as e:
        read_split(tmp_path, glue_task("RTE"), "train")
    assert str(e.value).startswith(f"{path}:2: ")


def test_unreadable_file(tmp_path):
    (tmp_path / "RTE" / "train.tsv").mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(GlueDataError, match="cannot read file: not a regular file"):
        read_split(tmp_path, glue_task("RTE"), "train")


def test_max_examples(tmp_path):
    rows = "".join(f"{i}\ta{i}\tb{i}\tentailment\n" for i in range(5))
    _write(tmp_path, "RTE/train.tsv", RTE_HEADER + rows + "garbage line after the rows we keep\n")
    data = read_split(tmp_path, glue_task("RTE"), "train", max_examples=2)
    assert data.text_a == ["a0", "a1"] and data.ids == ["train-0", "train-1"]
    assert len(read_split(tmp_path, glue_task("RTE"), "train", max_examples=0)) == 0
    with pytest.raises(ValueError):
        read_split(tmp_path, glue_task("RTE"), "train", max_examples=-1)


# ---- TaskData ----

def _data(text_a=("a", "b", "c"), text_b=("x", "y", "z"), labels=(0, 1, 0), split="train") -> TaskData:
    n = len(text_a)
    return TaskData(
        task=glue_task("RTE"), split=split, ids=[f"{split}-{i}" for i in range(n)], text_a=list(text_a),
        text_b=None if text_b is None else list(text_b),
        labels=None if labels is None else np.asarray(labels, np.int32),
        official_index=[str(i) for i in range(n)], source="test")


def test_fingerprint_is_deterministic_and_ignores_source(tmp_path):
    content = RTE_HEADER + "0\ta\tb\tentailment\n1\tc\td\tnot_entailment\n"
    _write(tmp_path / "one", "RTE/train.tsv", content)
    _write(tmp_path / "two", "RTE/train.tsv", content)
    one = read_split(tmp_path / "one", glue_task("RTE"), "train")
    two = read_split(tmp_path / "two", glue_task("RTE"), "train")
    assert one.fingerprint() == two.fingerprint() == one.fingerprint()
    assert len(one.fingerprint()) == 64


def test_fingerprint_is_sensitive():
    base = _data().fingerprint()
    variants = [
        _data(text_a=("a", "b", "d")),
        _data(text_b=("x", "y", "zz")),
        _data(labels=(0, 1, 1)),
        _data(labels=None),
        _data(split="dev"),
        _data(text_a=("b", "a", "c")),
        _data(text_a=("ab", "", "c")),  # vs ("a", "b", "c"): boundaries must matter
    ]
    fingerprints = {v.fingerprint() for v in variants}
    assert base not in fingerprints and len(fingerprints) == len(variants)
    assert _data(text_a=("ab", "c"), text_b=("x", "y"), labels=(0, 0)).fingerprint() != \
        _data(text_a=("a", "bc"), text_b=("x", "y"), labels=(0, 0)).fingerprint()
    swapped_texts = _data(text_a=("x", "y", "z"), text_b=("a", "b", "c"))
    assert swapped_texts.fingerprint() != base


def test_take():
    data = _data()
    assert data.take(None) is data
    first = data.take(2)
    assert first.ids == ["train-0", "train-1"] and first.text_b == ["x", "y"] and first.labels.tolist() == [0, 1]
    assert len(data) == 3  # the original is untouched
    assert len(data.take(10)) == 3 and len(data.take(0)) == 0
    with pytest.raises(ValueError):
        data.take(-1)


def test_with_swapped_pairs():
    data = _data()
    swapped = data.with_swapped_pairs()
    assert len(swapped) == 6 and len(set(swapped.ids)) == 6
    assert swapped.ids[3:] == ["train-0/swap", "train-1/swap", "train-2/swap"]
    assert swapped.text_a == ["a", "b", "c", "x", "y", "z"]
    assert swapped.text_b == ["x", "y", "z", "a", "b", "c"]
    assert swapped.labels.tolist() == [0, 1, 0, 0, 1, 0]
    assert len(data) == 3
    assert _data(labels=None).with_swapped_pairs().labels is None
    with pytest.raises(ValueError, match="already contains swapped copies"):
        swapped.with_swapped_pairs()


def test_with_swapped_pairs_rejects_single_sentence_tasks(tmp_path):
    _write(tmp_path, "CoLA/train.tsv", "s\t1\t\tA sentence.\n")
    with pytest.raises(ValueError, match="single-sentence"):
        read_split(tmp_path, glue_task("CoLA"), "train").with_swapped_pairs()


def test_task_data_rejects_ragged_columns():
    with pytest.raises(ValueError, match="text_a has 2 entries but there are 3 ids"):
        TaskData(task=glue_task("CoLA"), split="train", ids=["a", "b", "c"], text_a=["x", "y"], text_b=None,
                 labels=None, official_index=["0", "1", "2"], source="test")


# ---- The real GLUE files ----

GLUE_DIR = os.environ.get("GLUE_DIR")
needs_glue = pytest.mark.skipif(not GLUE_DIR or not os.path.isdir(GLUE_DIR),
                                reason="set GLUE_DIR to an existing /path/to/glue_data to check the real files")

# Official sizes. MNLI, QQP and QNLI train are absent from our shared copy; they are checked when present.
_SIZES = [
    ("CoLA", "train", 8551), ("CoLA", "dev", 1043), ("CoLA", "test", 1063),
    ("SST-2", "train", 67349), ("SST-2", "dev", 872), ("SST-2", "test", 1821),
    ("MRPC", "train", 3668), ("MRPC", "dev", 408), ("MRPC", "test", 1725),
    ("STS-B", "train", 5749), ("STS-B", "dev", 1500), ("STS-B", "test", 1379),
    ("RTE", "train", 2490), ("RTE", "dev", 277), ("RTE", "test", 3000),
    ("WNLI", "train", 635), ("WNLI", "dev", 71), ("WNLI", "test", 146),
    ("QNLI", "train", 104743), ("QNLI", "dev", 5463), ("QNLI", "test", 5463),
    ("AX", "test", 1104),
    ("MNLI", "train", 392702), ("MNLI", "dev", 9815), ("MNLI", "test", 9796),
    ("MNLI-mm", "dev", 9832), ("MNLI-mm", "test", 9847),
    ("QQP", "train", 363846), ("QQP", "dev", 40430), ("QQP", "test", 390965),
]
_OPTIONAL = {"MNLI", "MNLI-mm", "QQP", ("QNLI", "train")}


@needs_glue
@pytest.mark.parametrize("name,split,size", _SIZES, ids=[f"{n}-{s}" for n, s, _ in _SIZES])
def test_real_row_counts(name, split, size):
    task = glue_task(name)
    path = os.path.join(GLUE_DIR, task.directory, task.splits[split].filename)
    if (name in _OPTIONAL or (name, split) in _OPTIONAL) and not os.path.exists(path):
        pytest.skip(f"{path} is not part of this GLUE copy")
    data = read_split(GLUE_DIR, task, split)
    assert len(data) == size
    assert len(set(data.ids)) == size and len(set(data.official_index)) == size
    assert (data.labels is None) == (split == "test")
    if task.is_regression and data.labels is not None:
        assert 0.0 <= data.labels.min() and data.labels.max() <= 5.0


@needs_glue
def test_real_first_and_last_rows():
    cola = read_split(GLUE_DIR, glue_task("CoLA"), "train")
    assert cola.text_a[0] == "Our friends won't buy this analysis, let alone the next one we propose."
    assert cola.labels[0] == 1
    cola_dev = read_split(GLUE_DIR, glue_task("CoLA"), "dev")  # no final newline
    assert cola_dev.text_a[-1] == "John talked to Bill about himself." and cola_dev.labels[-1] == 1
    cola_test = read_split(GLUE_DIR, glue_task("CoLA"), "test")
    assert cola_test.text_a[0] == "Bill whistled past the house." and cola_test.official_index[-1] == "1062"

    sst = read_split(GLUE_DIR, glue_task("SST-2"), "train", max_examples=2)
    assert sst.text_a == ["hide new secretions from the parental units ", "contains no wit , only labored gags "]
    assert sst.labels.tolist() == [0, 0]

    mrpc = read_split(GLUE_DIR, glue_task("MRPC"), "train", max_examples=1)  # file starts with a BOM
    assert mrpc.labels.tolist() == [1]
    assert mrpc.text_a[0].startswith("Amrozi accused his brother , whom he called \" the witness \"")
    assert mrpc.text_b[0].startswith("Referring to him as only \" the witness \"")

    stsb = read_split(GLUE_DIR, glue_task("STS-B"), "dev")
    assert stsb.text_a[0] == "A man with a hard hat is dancing."
    assert stsb.text_b[0] == "A man wearing a hard hat is dancing."
    np.testing.assert_allclose(stsb.labels[:2], [5.0, 4.75])

    rte = read_split(GLUE_DIR, glue_task("RTE"), "train", max_examples=1)
    assert rte.text_a == ["No Weapons of Mass Destruction Found in Iraq Yet."]
    assert rte.text_b == ["Weapons of Mass Destruction Found in Iraq."] and rte.labels.tolist() == [1]

    qnli = read_split(GLUE_DIR, glue_task("QNLI"), "dev", max_examples=2)
    assert qnli.text_a[0] == "What came into force after the new constitution was herald?"
    assert qnli.labels.tolist() == [0, 1]

    wnli = read_split(GLUE_DIR, glue_task("WNLI"), "dev", max_examples=2)
    assert wnli.text_b == ["The hair has to be cleaned.", "Susan did not answer."]
    assert wnli.labels.tolist() == [0, 1]

    ax = read_split(GLUE_DIR, glue_task("AX"), "test")  # no final newline either
    assert (ax.text_a[0], ax.text_b[0]) == ("The cat sat on the mat.", "The cat did not sit on the mat.")
    assert ax.official_index[0] == "0" and ax.official_index[-1] == "1103"


@needs_glue
def test_real_missing_qnli_train_lists_what_is_there():
    if os.path.exists(os.path.join(GLUE_DIR, "QNLI", "train.tsv")):
        pytest.skip("this GLUE copy has QNLI train")
    with pytest.raises(GlueDataError, match="files present: dev.tsv, test.tsv"):
        read_split(GLUE_DIR, glue_task("QNLI"), "train")


def test_every_task_has_a_row_count_entry():
    assert {(t.name, s) for t in TASKS.values() for s in t.splits} == {(n, s) for n, s, _ in _SIZES}
