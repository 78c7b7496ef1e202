"""One config object for a bam_tf run; the absl flags are generated from it, so there is one list.

The resolved config is written to the run's model dir (`flags.txt`, re-usable as a --flagfile, and
`config.json`); `from_dict` rejects unknown keys so a typo never silently falls back to a default.
"""

import dataclasses
import json
import math
import os
from collections.abc import Set as AbstractSet
from typing import Any

from absl import flags

from bam_tf.backbone_spec import DEFAULT_BACKBONE, recorded_backbone
from bam_tf.task_loss_weights import parse_task_loss_weights
from bam_tf.task_set import GLUE, task_list_key
from bam_tf.user_errors import InputError

# Flags whose default differs from what bam_tf did before they existed: a recorded config without them
# ran with these values.
VALUES_BEFORE_THE_FLAG_EXISTED = {"dataset_multiples": False}
MODES = ("all", "teachers", "predict", "student", "evaluate")
# Flags that change nothing a run has written, so a model_dir may be revisited (and an experiment's
# results file extended) with other values. Data location may move too: teacher outputs carry a
# fingerprint of the data they were computed on.
FLAGS_FREE_TO_CHANGE = frozenset({"mode", "log_every", "eval_batch_size", "checkpoint_every", "keep_checkpoints",
                                  "eval_every", "glue_dir", "tfds_data_dir", "tfds_download",
                                  "length_group_size", "length_multiple",  # the same update, other shapes
                                  "jit_compile",  # the same computation, compiled by XLA or not
                                  "task_defs",  # the definitions themselves are compared through task_defs.json
                                  "model_dir"})  # a run folder moved or copied elsewhere holds the same run
# Flags a single-task run never uses (the original, too, turns dataset multiples off for one task; a task's
# loss weight has nothing to balance alone).
MULTI_TASK_ONLY_FLAGS = frozenset({"dataset_multiples", "task_loss_weights"})
# Flags the single-task teachers never read (they train with --teacher_learning_rate, --teacher_batch_size and
# --teacher_epochs on gold labels alone, and one task leaves nothing to sample or mix): a run's teachers and
# teacher outputs (and an experiment store's) serve a student that changes only these.
STUDENT_ONLY_FLAGS = MULTI_TASK_ONLY_FLAGS | {"learning_rate", "train_batch_size", "num_train_epochs", "temperature",
                                              "teacher_annealing", "distill_weight", "task_weight_exponent",
                                              "task_mixing"}
# Paths free to change: flags.txt writes them absolute, so it works as a --flagfile from any folder.
PATH_FLAGS = ("model_dir", "glue_dir", "tfds_data_dir", "task_defs")


# A flag that is "auto" or a boolean: --name=auto, --name (true) and --noname (false) all parse.
AUTO_BOOL = ("auto", "true", "false")
SEEDS = range(2**32)  # what numpy's and Keras' global seeding accept


def _field(default, help_text: str, choices: tuple[str, ...] | None = None):
    return dataclasses.field(default=default, metadata={"help": help_text, "choices": choices})


@dataclasses.dataclass
class BamConfig:
    mode: str = _field("all", "Stage to run: teachers (fine-tune one model per task), predict (teacher "
                       "outputs on train), student (multi-task BAM training), evaluate (dev scores), or all "
                       "of them in that order.", MODES)
    model_dir: str = _field("", "Directory for everything a run writes (required).")
    glue_dir: str = _field("", "GLUE data in the download_glue_data.py layout (default: $GLUE_DIR).")
    data_source: str = _field("tsv", "Read GLUE from TSV files in --glue_dir, or from tensorflow_datasets "
                              "(glue/<config>; prepared beforehand, or downloaded with --tfds_download).",
                              ("tsv", "tfds"))
    tfds_download: bool = _field(False, "With --data_source=tfds: download and prepare a missing glue/<config> "
                                 "dataset (needs the network; `make demo` without GLUE_DIR turns it on).")
    tfds_data_dir: str = _field("", "tensorflow_datasets data_dir for --data_source=tfds (default: TFDS's own).")
    tasks: str = _field("CoLA,SST-2,MRPC,STS-B,QQP,MNLI,QNLI,RTE", "Comma-separated GLUE tasks (or tasks of "
                        "--task_defs) to train. MNLI is also scored on dev-mismatched.")
    task_defs: str = _field("", "JSON or YAML (.yaml/.yml) file defining tasks of your own, then usable in --tasks: "
                            "{tasks: [{name, files: {train, dev, test?}, text_a, text_b?, label, labels: [...] or "
                            "regression: {min, max}, metrics: [...], id?, symmetric?}]}; files are TSV, CSV or JSON "
                            "lines (paths relative to the definition file), columns are header names / JSON keys "
                            "or 0-based indices. See BUILD.md, 'Adding a task'.")
    backbone: str = _field(DEFAULT_BACKBONE, "keras-hub preset name, local keras-hub preset dir, local "
                           "Hugging Face BERT folder, 'all-MiniLM-L6-v2' (from the pip package) or "
                           "'random:layers=2,hidden=32,heads=2,intermediate=64'.")
    max_seq_length: int = _field(128, "Longest packed input; longer pairs are truncated longest-first.")
    max_train_examples: int = _field(0, "Use only the first N training examples of each task (0: all); rows after "
                                           "them are not read, so not checked either.")
    max_eval_examples: int = _field(0, "Use only the first N dev examples of each task (0: all).")
    swap_pair_order: bool = _field(True, "Also train MRPC and STS-B on each pair with the sentences swapped.")

    teacher_learning_rate: float = _field(5e-5, "Peak learning rate of the single-task teachers.")
    teacher_batch_size: int = _field(32, "Batch size of the single-task teachers.")
    teacher_epochs: float = _field(3.0, "Epochs of single-task teacher training.")
    learning_rate: float = _field(1e-4, "Peak learning rate of the multi-task student.")
    train_batch_size: int = _field(128, "Global batch size of the multi-task student.")
    num_train_epochs: float = _field(6.0, "Epochs of student training, over all tasks' examples together (each task's "
                                     "counted --dataset_multiples times).")
    dataset_multiples: bool = _field(True, "Count an epoch of a multi-task student as the original BAM code does: "
                                     "each training set copied round((size_ref/size)^(1-exponent)) times (its "
                                     "GLUE table, MNLI as reference: CoLA 3, SST-2 2, MRPC 3, STS-B 2, RTE 4; "
                                     "WNLI 5; tasks of --task_defs against the larger of MNLI's size and the run's "
                                     "largest set if a GLUE task is in the run, else the run's largest set). Only "
                                     "the number of steps changes; tasks are still sampled ∝ size^exponent. "
                                     "False: an epoch is "
                                     "the plain sum of the training sets (bam_tf before this flag).")
    max_train_steps: int = _field(0, "Stop every training run after at most N steps (0: no cap). Schedules "
                                  "(warmup, decay, annealing) are laid out over the capped length.")

    distill: bool = _field(True, "Train the student on teacher outputs (BAM). False: plain multi-task training.")
    teacher_annealing: bool = _field(True, "Anneal λ (weight of the gold label) linearly from 0 to 1.")
    distill_weight: float = _field(0.5, "Fixed weight of the teacher when --noteacher_annealing.")
    temperature: float = _field(1.0, "Softmax temperature applied to the teacher's logits only, as in the "
                                "original (the student keeps its plain softmax; no T² factor).")
    task_weight_exponent: float = _field(0.75, "Tasks are sampled with probability ∝ size^exponent.")
    task_mixing: str = _field("mixed", "mixed: tasks mixed inside each batch (original BAM); per_task: each "
                              "batch from one task.", ("mixed", "per_task"))
    task_loss_weights: str = _field("", "Comma-separated TASK=WEIGHT: that task's summed loss counts WEIGHT times in "
                                    "the multi-task student's update (e.g. STS-B=25); other tasks 1, as in the "
                                    "original. Teachers ignore it. tools/gradient_shares.py shows each task's share "
                                    "of the update.")

    warmup_fraction: float = _field(0.1, "Fraction of steps with linear learning-rate warmup.")
    weight_decay: float = _field(0.01, "AdamW decoupled weight decay (not on LayerNorm or biases).")
    layerwise_lr_decay: float = _field(0.9, "Learning-rate factor per layer below the top (1: off).")
    clip_global_norm: float = _field(1.0, "Clip the summed gradient to this global norm (0: off).")
    loss_reduction: str = _field("sum", "sum: the loss is the sum of the per-example losses over the batch, as in "
                                 "the original, so the clip at --clip_global_norm acts on nearly every step; "
                                 "mean: divided by the global batch size (the clip then only catches large "
                                 "gradients).", ("sum", "mean"))
    adam_bias_correction: bool = _field(False, "Use Adam's bias correction (Keras' Adam). Off: the original BERT/BAM "
                                        "optimizer, whose first updates are up to ~6x lr until the moments warm up.")
    head_dropout: float = _field(0.1, "Dropout on the pooled output before each task head.")
    precision: str = _field("auto", "Compute dtype policy; losses and targets stay float32. auto: mixed_bfloat16 "
                            "on TPU, bf16-capable GPUs and CPUs with AMX/AVX512-BF16 (unless oneDNN is off or its "
                            "$ONEDNN_MAX_CPU_ISA is below them); mixed_float16 (with loss scaling) on older GPUs; "
                            "else float32.",
                            ("auto", "float32", "mixed_bfloat16", "mixed_float16"))
    strategy: str = _field("default", "tf.distribute strategy: default (one device), mirrored (local GPUs, or "
                           "--cpu_replicas logical CPUs), multi_worker_mirrored (cluster in $TF_CONFIG), tpu.",
                           ("default", "mirrored", "multi_worker_mirrored", "tpu"))
    tpu: str = _field("", "TPU name or grpc:// address for --strategy=tpu (empty: the local TPU VM).")
    cpu_replicas: int = _field(0, "Split the CPU into N logical devices (to exercise --strategy=mirrored "
                               "without accelerators; 0: off).")
    jit_compile: str = _field("auto", "XLA-compile each length group's forward and backward pass (one program per "
                              "padded shape). auto: off on CPU, where it measured slower in bfloat16 and float32 "
                              "(results/benchmark.md), and on GPU (not measured); TPUs compile with XLA anyway. "
                              "--jit_compile / --nojit_compile force it.", AUTO_BOOL)
    length_bucketing_window: int = _field(0, "Group examples of similar length into batches, within windows "
                                          "of N batches, each batch keeping its task mix: fewer padded tokens, "
                                          "but batches unlike the original's shuffled ones (0 or 1: off, the "
                                          "original's; the log says what 32 would save). Batches are always "
                                          "padded only to their own longest example.")
    length_group_size: int = _field(16, "Cut each replica's slice of a training batch into groups of about N "
                                    "examples of similar length, each padded to its own longest example; their "
                                    "summed losses and gradients make the batch's one update (the same update; "
                                    "dropout draws its masks per group). "
                                    "Used in a stage only where it saves >= 15% of padded tokens (mixed batches, "
                                    "not bucketed single-task ones); the log says. 0: never.")
    length_multiple: int = _field(0, "Round padded lengths up to a multiple of N, so a run meets few distinct shapes "
                                  "(XLA compiles one program per shape). 0: auto, 16 with XLA, else 1 (exact).")
    eval_batch_size: int = _field(128, "Batch size for dev evaluation and teacher predictions.")
    seed: int = _field(0, "Seed for weights, dropout and task/example sampling.")
    log_every: int = _field(50, "Log training losses (and write TensorBoard summaries) every N steps.")
    checkpoint_every: int = _field(200, "Checkpoint every N steps; a re-run resumes from the latest checkpoint.")
    keep_checkpoints: int = _field(2, "Keep the last N checkpoints of a stage while it trains (removed when "
                                   "the stage has saved its final model).")
    eval_every: int = _field(0, "Also score dev every N steps and keep the best checkpoint per task "
                             "(0: score only at the end of each stage).")

    @classmethod
    def from_dict(cls, values: dict) -> "BamConfig":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise InputError(f"unknown config keys {unknown}; valid keys: {sorted(fields)}")
        # auto/boolean flags were plain booleans in configs recorded before they had "auto"
        values = {k: (str(v).lower() if fields[k].metadata["choices"] == AUTO_BOOL and isinstance(v, bool) else v)
                  for k, v in values.items()}
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str) -> "BamConfig":
        """A config a run recorded; keys it predates take the value that behaved as it did then."""
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_dict({**VALUES_BEFORE_THE_FLAG_EXISTED, **json.load(f)})
            except ValueError as error:
                raise InputError(f"{path}: {error}") from error

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_flagfile_text(self) -> str:
        lines = []
        for key, value in self.to_dict().items():
            lines.append(f"--{key}" if value is True else f"--no{key}" if value is False else f"--{key}={value}")
        return "\n".join(lines) + "\n"

    def to_rerun_flagfile_text(self) -> str:
        """flags.txt: a --flagfile that continues this run from any folder, whichever stage this invocation ran."""
        absolute = {key: os.path.abspath(getattr(self, key)) for key in PATH_FLAGS if getattr(self, key)}
        return ("# bam-train --flagfile=<this file> continues this run: every stage, finished ones kept\n"
                + dataclasses.replace(self, mode="all", **absolute).to_flagfile_text())

    def validate(self) -> None:
        """Fail fast on values that cannot work together, before anything is loaded."""
        problems = []
        # Compared with defaults rather than "given on the command line", so a complete flags.txt
        # written by an earlier run is accepted back.
        changed = {f.name for f in dataclasses.fields(self) if getattr(self, f.name) != f.default}
        if not self.model_dir:
            problems.append("--model_dir is required")
        if self.data_source == "tsv" and not self.glue_dir and not self.task_defs:  # user tasks need no GLUE
            # A task of the user's own named without --task_defs: say that, and ask for GLUE data only if a GLUE
            # task is named too.
            names = [name.strip() for name in self.tasks.split(",") if name.strip()]
            unknown = []
            for name in names:
                try:
                    GLUE.get(name)
                except InputError as error:
                    unknown.append(f"--tasks: {error}")
            problems += unknown
            if len(unknown) < len(names) or not names:
                problems.append("--glue_dir (or $GLUE_DIR) is required with --data_source=tsv")
        if self.data_source == "tsv" and not self.glue_dir and self.task_defs and "tasks" not in changed:
            problems.append(f"--tasks is left at its default ({self.tasks}: GLUE tasks, which need --glue_dir): "
                            f"name the tasks to train, e.g. --tasks=<a task of {self.task_defs}>")
        if self.teacher_annealing and "distill_weight" in changed:
            problems.append("--distill_weight only applies with --noteacher_annealing")
        if not self.distill and changed & {"teacher_annealing", "distill_weight", "temperature"}:
            problems.append("--teacher_annealing/--distill_weight/--temperature need --distill")
        if not self.distill and self.mode == "predict":
            problems.append("--mode=predict writes teacher outputs, which --nodistill never uses")
        for name in ("max_seq_length", "teacher_batch_size", "train_batch_size", "eval_batch_size", "log_every",
                     "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                problems.append(f"--{name} must be positive")
        for name in ("max_train_examples", "max_eval_examples", "max_train_steps", "eval_every", "cpu_replicas",
                     "length_bucketing_window", "length_group_size", "length_multiple"):
            if getattr(self, name) < 0:
                problems.append(f"--{name} must be 0 (no cap) or positive")
        for name in ("teacher_learning_rate", "learning_rate", "teacher_epochs", "num_train_epochs", "temperature"):
            if not 0 < getattr(self, name) < math.inf:
                problems.append(f"--{name} must be positive and finite")
        for name in ("weight_decay", "clip_global_norm"):
            if not 0 <= getattr(self, name) < math.inf:
                problems.append(f"--{name} must be 0 (off) or positive and finite")
        if self.seed not in SEEDS:
            problems.append(f"--seed must be in [0, 2^32), got {self.seed}")
        # Negative: small tasks sampled more than large ones, and their dataset multiples explode.
        if not 0 <= self.task_weight_exponent < math.inf:
            problems.append("--task_weight_exponent must be 0 (uniform over tasks) or positive and finite")
        for name in ("distill_weight", "warmup_fraction", "head_dropout"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"--{name} must be in [0, 1]")
        try:
            parse_task_loss_weights(self.task_loss_weights)
        except InputError as error:
            problems.append(str(error))
        if self.tpu and self.strategy != "tpu":
            problems.append("--tpu only applies with --strategy=tpu")
        for f in dataclasses.fields(self):
            if f.metadata["choices"] and getattr(self, f.name) not in f.metadata["choices"]:
                problems.append(f"--{f.name} must be one of {', '.join(f.metadata['choices'])}, "
                                f"got {getattr(self, f.name)!r}")
        if self.jit_compile == "true" and self.strategy in ("mirrored", "multi_worker_mirrored"):
            problems.append("--jit_compile=true is supported with --strategy=default or tpu only (XLA inside "
                            "mirrored replicas is untested here)")
        if self.cpu_replicas and self.strategy != "mirrored":
            problems.append("--cpu_replicas only applies with --strategy=mirrored")
        if not 0 < self.layerwise_lr_decay <= 1:
            problems.append("--layerwise_lr_decay must be in (0, 1]")
        if problems:
            raise InputError("invalid flags:\n  " + "\n  ".join(problems))


def changed_flag_names(recorded: dict, current: dict, ignored: AbstractSet[str] = frozenset()) -> list[str]:
    """The flags set on both sides, not in `ignored`, whose values differ (sorted). A local backbone folder
    recorded as a relative path counts as the same folder given absolute; task lists compare as the tasks they
    name ("rte,sts-b" is "RTE,STS-B")."""
    def comparable(key, value):
        if key == "backbone" and isinstance(value, str):
            return recorded_backbone(value)
        if key == "tasks" and isinstance(value, str):
            return task_list_key(value)
        return value
    return sorted(k for k in current if k in recorded and k not in ignored
                  and comparable(k, recorded[k]) != comparable(k, current[k]))


def describe_flag_changes(recorded: dict, current: dict, names: list[str], notes: dict[str, str] | None = None) -> str:
    """'--name: recorded → current, ...' for `names`, each followed by its note if any."""
    return ", ".join(f"--{k}: {recorded[k]!r} → {current[k]!r}{(notes or {}).get(k, '')}" for k in names)


def define_flags(flag_values=flags.FLAGS) -> None:
    for field in dataclasses.fields(BamConfig):
        default, help_text, choices = field.default, field.metadata["help"], field.metadata["choices"]
        if choices == AUTO_BOOL:
            flags.DEFINE_flag(flags.Flag(_AutoBoolParser(), flags.ArgumentSerializer(), field.name, default, help_text,
                                         boolean=True), flag_values=flag_values)
        elif choices:
            flags.DEFINE_enum(field.name, default, list(choices), help_text, flag_values=flag_values)
        elif isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


class _AutoBoolParser(flags.ArgumentParser):
    """Parses auto, or a boolean in absl's spellings (--name gives "true", --noname "false")."""

    def parse(self, argument):
        text = str(argument).strip().lower()
        if text == "auto":
            return "auto"
        if text in ("true", "t", "1", "yes"):
            return "true"
        if text in ("false", "f", "0", "no"):
            return "false"
        raise ValueError(f"expected auto, true or false, got {argument!r}")

    def flag_type(self):
        return "auto|bool"


def config_values_from_flags(flag_values=flags.FLAGS) -> dict[str, Any]:
    """Every BamConfig field's flag value, $GLUE_DIR standing in for an empty --glue_dir, and a leading ~ of the
    path flags expanded (a shell expands ~ on its command line, but not in a flagfile)."""
    values = {field.name: flag_values[field.name].value for field in dataclasses.fields(BamConfig)}
    if not values["glue_dir"]:
        values["glue_dir"] = os.environ.get("GLUE_DIR", "")
    for key in PATH_FLAGS:
        values[key] = os.path.expanduser(values[key])
    values["backbone"] = recorded_backbone(values["backbone"])
    return values


def config_from_flags(flag_values=flags.FLAGS) -> BamConfig:
    config = BamConfig.from_dict(config_values_from_flags(flag_values))
    config.validate()
    return config
