"""Where training runs (a tf.distribute strategy) and in which precision.

`--strategy`: default (one device), mirrored (all local GPUs, or `--cpu_replicas` logical CPUs),
multi_worker_mirrored (hosts described by $TF_CONFIG), tpu (`--tpu` address). `--precision=auto` picks
mixed_bfloat16 on TPUs, bf16-capable GPUs and CPUs with AMX/AVX512-BF16 (where oneDNN is on and its
$ONEDNN_MAX_CPU_ISA not below them), float16 on older GPUs, else float32.
"""

import json
import os

import keras
import tensorflow as tf

from bam_tf.user_errors import InputError

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored", "tpu")


def create_strategy(name: str, tpu_address: str = "", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    if cpu_replicas > 1:
        # Must run before TensorFlow touches its devices; lets mirrored runs be tested on one CPU.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = None
        if cpu_replicas > 1 or not tf.config.list_physical_devices("GPU"):
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise InputError("--strategy=multi_worker_mirrored needs $TF_CONFIG describing the cluster")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise InputError(f"unknown --strategy={name}; choose one of {STRATEGIES}")


def is_chief() -> bool:
    """Whether this process writes the run's files (other workers write to a scratch dir).

    As in Keras: the "chief" task if the cluster has one, else worker 0; a process without TF_CONFIG.
    """
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task")
    if not task:
        return True
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def cpu_bf16_flags() -> list[str]:
    """The /proc/cpuinfo flags that give a CPU bfloat16 matmuls in hardware (none: bf16 is emulated)."""
    flags = set(_cpuinfo().split())
    return [flag for flag in ("amx_bf16", "avx512_bf16") if flag in flags]


# oneDNN's instruction-set cap (its names, case-insensitive; unknown names it ignores, and so do we), grouped
# by what it leaves of bfloat16 matmuls. Measured with TensorFlow's oneDNN on a CPU with AMX-BF16: below
# AVX512_CORE a bfloat16 matmul aborts the process ("could not create a primitive descriptor for the matmul
# primitive"); at AVX512_CORE(_VNNI) it is emulated, ~4x slower than float32; AVX512_CORE_BF16 and its
# successors without AMX keep avx512_bf16 but not AMX.
_ISAS_WITHOUT_BF16_MATMUL = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2"})
_ISAS_EMULATING_BF16 = frozenset({"AVX512_CORE", "AVX512_CORE_VNNI"})
_ISAS_WITHOUT_AMX = frozenset({"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512"})


def onednn_isa_cap() -> str:
    """The instruction-set cap oneDNN runs under: $ONEDNN_MAX_CPU_ISA, else its older name $DNNL_MAX_CPU_ISA
    (the order oneDNN reads them in), upper-cased; "" when neither is set."""
    return (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()


def onednn_disabled() -> bool:
    """TF_ENABLE_ONEDNN_OPTS=0 turns TensorFlow's oneDNN kernels off: its Eigen kernels then compute a bfloat16
    matmul no faster than a float32 one (measured on a CPU with AMX-BF16), so bfloat16 would only round."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip().lower() in ("0", "false")


def usable_bf16_flags() -> list[str]:
    """cpu_bf16_flags() that oneDNN may use: none without oneDNN, else those under its instruction-set cap."""
    cap = onednn_isa_cap()
    if onednn_disabled() or cap in _ISAS_WITHOUT_BF16_MATMUL or cap in _ISAS_EMULATING_BF16:
        return []
    return [flag for flag in cpu_bf16_flags() if not (cap in _ISAS_WITHOUT_AMX and flag == "amx_bf16")]


def _computes_on_cpu(strategy: tf.distribute.Strategy | None) -> bool:
    return not isinstance(strategy, tf.distribute.TPUStrategy) and not tf.config.list_physical_devices("GPU")


def device_description(strategy: tf.distribute.Strategy) -> str:
    """What computes, in words, for a run's records: CPUs differ in speed and in their bfloat16 kernels
    (AMX, AVX512-BF16 or none), so a grid spread over machines says which ran what."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return f"TPU, {strategy.num_replicas_in_sync} cores"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
        return f"{len(gpus)} × GPU {name}"
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo().splitlines()
                  if line.startswith("model name")), "(model unknown)")
    cap = f", oneDNN capped at {onednn_isa_cap()}" if onednn_isa_cap() else ""
    return f"CPU {model}, {os.cpu_count()} cores, bfloat16 in hardware: {', '.join(cpu_bf16_flags()) or 'none'}{cap}"


def choose_precision(precision: str, strategy: tf.distribute.Strategy) -> tuple[str, str]:
    """(policy, why): the policy `--precision` resolves to on this machine, and the reason, for the log."""
    if precision != "auto":
        cap = onednn_isa_cap()
        # TensorFlow hands bfloat16 matmuls to oneDNN on AVX-512 CPUs only: there the cap makes oneDNN refuse.
        if (precision == "mixed_bfloat16" and cap in _ISAS_WITHOUT_BF16_MATMUL and not onednn_disabled()
                and "avx512f" in _cpuinfo().split() and _computes_on_cpu(strategy)):
            raise InputError(f"--precision=mixed_bfloat16 on CPU under ONEDNN_MAX_CPU_ISA={cap}: oneDNN has no "
                             "bfloat16 matmul below AVX512_CORE, and TensorFlow aborts at the first one; use "
                             "--precision=float32 (or auto), or lift the cap")
        return precision, f"--precision={precision}"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16", "auto: TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if capability >= (8, 0):
            return "mixed_bfloat16", f"auto: GPU of compute capability {capability[0]}.{capability[1]} (≥ 8.0)"
        return "mixed_float16", (f"auto: GPU of compute capability {capability[0]}.{capability[1]} (< 8.0: no "
                                 "bfloat16), float16 with loss scaling")
    flags, usable = cpu_bf16_flags(), usable_bf16_flags()
    if usable:
        return "mixed_bfloat16", f"auto: CPU without GPU, bfloat16 in hardware ({', '.join(usable)})"
    if flags and onednn_disabled():
        return "float32", (f"auto: CPU without GPU; TF_ENABLE_ONEDNN_OPTS=0 leaves its bfloat16 instructions "
                           f"({', '.join(flags)}) unused, and bfloat16 would be no faster than float32")
    if flags:
        return "float32", (f"auto: CPU without GPU; its bfloat16 instructions ({', '.join(flags)}) are above "
                           f"ONEDNN_MAX_CPU_ISA={onednn_isa_cap()}, under which bfloat16 matmuls are emulated "
                           "(~4x slower than float32) or, below AVX512_CORE, abort")
    return "float32", ("auto: CPU without GPU and without amx_bf16/avx512_bf16, where bfloat16 would be "
                       "emulated (several times slower than float32)")


def choose_jit_compile(setting: str, strategy: tf.distribute.Strategy) -> tuple[bool, str]:
    """(whether to XLA-compile each length group's step, why), for the log: what --jit_compile resolves to.

    On CPU, XLA was measured slower for the grouped MiniLM student (results/benchmark.md; EPYC with
    AVX512-BF16: the student 1.95x and the teachers 1.8x slower in bfloat16, the student 1.13x in float32,
    besides 30-60 s of compiling per padded shape);
    a probe on a 2-core AVX2-only CPU gained 1.2x at length 64 and lost at 128, less than the compiles
    cost over a stage. On GPU it is not measured, so not assumed; a TPU compiles the whole step anyway.
    """
    setting = str(setting).lower()  # a boolean, from a config built without from_dict
    if setting != "auto":
        return setting == "true", f"--jit_compile={setting}"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return False, "auto: off, the TPU strategy compiles the whole step with XLA anyway"
    if tf.config.list_physical_devices("GPU"):
        return False, "auto: off on GPU, where it is not measured (--jit_compile to try it)"
    return False, ("auto: off on CPU, where XLA measured slower than TensorFlow's oneDNN kernels for this step "
                   "in bfloat16 and float32, before 30-60 s of compiling per padded shape (results/benchmark.md)")


def resolve_precision(precision: str, strategy: tf.distribute.Strategy) -> str:
    return choose_precision(precision, strategy)[0]


def wrap_for_precision(optimizer: keras.optimizers.Optimizer, precision: str) -> keras.optimizers.Optimizer:
    """float16 needs dynamic loss scaling to keep small gradients from underflowing; bfloat16 does not."""
    if precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
