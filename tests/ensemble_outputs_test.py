"""bam_tf.experiments.ensemble_outputs: averaging seeds' teacher outputs example by example, and the seeds record."""

import json

import numpy as np
import pytest

from bam_tf.experiments.ensemble_outputs import (ENSEMBLE_SEEDS_FILE, check_ensemble_seeds, ensemble_seeds_record,
                                                 write_ensemble_outputs)
from bam_tf.experiments.results_file import ExperimentError
from bam_tf.teacher_outputs import TeacherOutputs, load_teacher_outputs, save_teacher_outputs


def _save(folder, ids, outputs, fingerprint="f"):
    save_teacher_outputs(str(folder / "RTE.npz"), TeacherOutputs("RTE", np.array(ids), np.array(outputs, np.float32),
                                                                 fingerprint))


def test_outputs_are_averaged_example_by_example_whatever_their_order(tmp_path):
    _save(tmp_path / "seed0", ["a", "b"], [[0.0, 2.0], [4.0, 6.0]])
    _save(tmp_path / "seed1", ["b", "a"], [[8.0, 10.0], [2.0, 0.0]])  # the same examples, other order
    write_ensemble_outputs([str(tmp_path / "seed0"), str(tmp_path / "seed1")], str(tmp_path / "mean"), ["RTE"])
    mean = load_teacher_outputs(str(tmp_path / "mean" / "RTE.npz"))
    assert mean.example_ids.tolist() == ["a", "b"] and mean.data_fingerprint == "f"
    np.testing.assert_allclose(mean.outputs, [[1.0, 1.0], [6.0, 8.0]])  # a: (0+2)/2, (2+0)/2; b: (4+8)/2, (6+10)/2
    _save(tmp_path / "seed2", ["a", "b"], [[0.0, 0.0], [0.0, 0.0]], fingerprint="other data")
    with pytest.raises(ExperimentError, match=r"seed2/RTE.npz: computed on other RTE data than .*seed0/RTE.npz"):
        write_ensemble_outputs([str(tmp_path / "seed0"), str(tmp_path / "seed2")], str(tmp_path / "x"), ["RTE"])


def test_the_seeds_record_refuses_other_seeds_and_unrecorded_outputs(tmp_path):
    check_ensemble_seeds([1, 0], [0, 1], "here")  # the same seeds in another order
    with pytest.raises(ExperimentError, match=r"here, an ensemble of the teachers of seeds 0, 1; --seeds is now 0, 1, 2"):
        check_ensemble_seeds([0, 1], [0, 1, 2], "here")
    folder = tmp_path / "bam_ensemble_outputs"
    assert ensemble_seeds_record(str(folder), [0, 1], ["RTE"]) == str(folder / ENSEMBLE_SEEDS_FILE)  # nothing yet
    _save(folder, ["a"], [[0.0, 1.0]])
    with pytest.raises(ExperimentError, match="holds outputs averaged before bam_tf recorded which seeds"):
        ensemble_seeds_record(str(folder), [0, 1], ["RTE"])
    (folder / ENSEMBLE_SEEDS_FILE).write_text(json.dumps({"seeds": [0, 1]}))
    ensemble_seeds_record(str(folder), [1, 0], ["RTE"])
    with pytest.raises(ExperimentError, match="--seeds is now 0, 1, 2"):
        ensemble_seeds_record(str(folder), [0, 1, 2], ["RTE"])
