"""Study-level functions the notebooks call: each trains or reuses what it needs, measures,
and writes its tables and figures under ``reports/<profile>/<notebook>/``.

======================================  ==============================================
notebook                                functions
======================================  ==============================================
00 quickstart                           :func:`eval_images`, :func:`train_grid`
01 architecture (Figs. 1-4)             :class:`AlternatingTrace`, :func:`layer_shapes`
02 pretrained proxy (Sec. III-C)        :func:`pretrained_proxy`, :func:`image_proxy_score`
03 alternating training (Fig. 3)        :func:`grid_specs`, :func:`train_grid`
04 rate-distortion (Tables I, II)       :func:`evaluate_codecs`, :func:`bd_study`
05 limitations (Table IV)               :func:`table_iv`
06 training steps (Fig. 11)             :func:`training_steps_study`
07 α/λ explorer                         :func:`explorer_grid`
08 runtime (Table V, Fig. 12)           :func:`time_codec`, :func:`runtime_table`
======================================  ==============================================
"""

from proxiqa_lab.studies.adversarial import (decoded_scores, fooling_specs, image_proxy_score, pretrained_proxy,
                                             pretrained_proxy_path, proxy_true_gap, tile_batch)
from proxiqa_lab.studies.architecture import AlternatingTrace, layer_shapes, model_summary, parameter_count
from proxiqa_lab.studies.explorer import explorer_grid, explorer_specs
from proxiqa_lab.studies.grid import (
    OBJECTIVE_LABELS,
    RunSpec,
    checkpoint_at,
    grid_specs,
    learned_codec,
    objective_label,
    source_summary,
    train_chains,
    train_grid,
    training_logs,
)
from proxiqa_lab.studies.images import SampleImagesWarning, crop, eval_image, eval_images, roundtrip
from proxiqa_lab.studies.rd import (
    CONTROL,
    RDStudy,
    bd_study,
    classical_codecs,
    equal_steps_study,
    evaluate_codecs,
    matched_crops,
    matched_point,
    rd_learned_codecs,
    rd_records,
    rd_study,
    save_study,
    summary_records,
    table_i,
    table_iv,
)
from proxiqa_lab.studies.results import load_results, record_results, save_table, to_jsonable
from proxiqa_lab.studies.runtime import (
    normalised_encode_times,
    paper_width_codec,
    runtime_study,
    runtime_table,
    time_codec,
)
from proxiqa_lab.studies.setup import data_status, environment, ffmpeg_info, start_session
from proxiqa_lab.studies.science import Arm, load_summary, science_table
from proxiqa_lab.studies.settings import SETTINGS, StepsPlan, StudySettings, settings_for
from proxiqa_lab.studies.steps import training_steps_study

__all__ = [
    "CONTROL",
    "OBJECTIVE_LABELS",
    "SETTINGS",
    "AlternatingTrace",
    "Arm",
    "RDStudy",
    "RunSpec",
    "SampleImagesWarning",
    "StepsPlan",
    "StudySettings",
    "bd_study",
    "checkpoint_at",
    "classical_codecs",
    "crop",
    "data_status",
    "decoded_scores",
    "environment",
    "equal_steps_study",
    "eval_image",
    "eval_images",
    "evaluate_codecs",
    "explorer_grid",
    "explorer_specs",
    "fooling_specs",
    "ffmpeg_info",
    "grid_specs",
    "image_proxy_score",
    "layer_shapes",
    "learned_codec",
    "load_results",
    "load_summary",
    "matched_crops",
    "matched_point",
    "model_summary",
    "normalised_encode_times",
    "objective_label",
    "paper_width_codec",
    "parameter_count",
    "pretrained_proxy",
    "pretrained_proxy_path",
    "proxy_true_gap",
    "rd_learned_codecs",
    "rd_records",
    "rd_study",
    "record_results",
    "roundtrip",
    "runtime_study",
    "runtime_table",
    "save_study",
    "save_table",
    "science_table",
    "settings_for",
    "source_summary",
    "start_session",
    "summary_records",
    "table_i",
    "table_iv",
    "tile_batch",
    "time_codec",
    "to_jsonable",
    "train_chains",
    "train_grid",
    "training_logs",
    "training_steps_study",
]
