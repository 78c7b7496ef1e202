"""One training stage's model: backbone, heads and optimizer exactly as a run's flags describe them.

The pipeline (teachers and student) and the benchmark build their models here, so a stage the
benchmark times is the stage the pipeline trains.
"""

from bam_tf.backbone import load_backbone
from bam_tf.config import BamConfig
from bam_tf.distribution import wrap_for_precision
from bam_tf.task import Task
from bam_tf.model import DistillationSettings, MultiTaskBert
from bam_tf.optimizer import create_optimizer
from bam_tf.trained_model import build_model

def compiled_stage_model(config: BamConfig, tasks: list[Task], *, learning_rate: float, total_steps: int,
                         precision: str, compile_model: bool = True,
                         task_loss_weights: dict[str, float] | None = None) -> MultiTaskBert:
    """A fresh MultiTaskBert for `tasks`, compiled with the run's optimizer; call inside strategy.scope().

    `task_loss_weights`: the resolved --task_loss_weights (task name -> weight), for a multi-task stage."""
    c = config
    loaded = load_backbone(c.backbone)
    model = MultiTaskBert(loaded.backbone, tasks, DistillationSettings(
        total_steps=total_steps, teacher_annealing=c.teacher_annealing, distill_weight=c.distill_weight,
        temperature=c.temperature), head_dropout=c.head_dropout, loss_reduction=c.loss_reduction,
        task_loss_weights=task_loss_weights)
    build_model(model)
    if compile_model:
        model.compile(optimizer=wrap_for_precision(create_optimizer(
            peak_learning_rate=learning_rate, total_steps=total_steps, warmup_fraction=c.warmup_fraction,
            weight_decay=c.weight_decay, layerwise_lr_decay=c.layerwise_lr_decay,
            num_layers=loaded.backbone.num_layers, clip_global_norm=c.clip_global_norm or None,
            adam_bias_correction=c.adam_bias_correction, schedule_step=model.batches_done), precision))
    return model

