"""Every configuration key of ovvision, with its default and a one-line comment.

A key exists only if it is declared here; YAML files and command-line overrides may change values
but never add keys (an unknown key is an error naming the key and the file).
"""

from .config import CfgNode as CN

_C = CN()
_C.VERSION = 1  # config format version

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.DEVICE = "cpu"  # "cpu" or "cuda"; "cuda" selects the local rank's GPU under DDP
_C.MODEL.META_ARCHITECTURE = ""  # name in META_ARCH_REGISTRY built by build_model(cfg)
_C.MODEL.WEIGHTS = ""  # checkpoint path loaded before training/evaluation ("" = random init)
# Keys of the checkpoint's model state that may be missing/unexpected when loading MODEL.WEIGHTS;
# anything else missing or unexpected is an error (strict loading).
_C.MODEL.WEIGHTS_ALLOWED_MISSING = []
_C.MODEL.WEIGHTS_ALLOWED_UNEXPECTED = []
_C.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]  # per-channel mean of RGB pixels in [0, 255]
_C.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]  # per-channel std of RGB pixels in [0, 255]

# ---------------------------------------------------------------------------------------------
# Solver
# ---------------------------------------------------------------------------------------------
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "SGD"  # "SGD" or "AdamW"
_C.SOLVER.BASE_LR = 0.02  # learning rate after warmup, for IMS_PER_BATCH images per step
_C.SOLVER.MOMENTUM = 0.9  # SGD momentum
_C.SOLVER.NESTEROV = False  # SGD Nesterov momentum
_C.SOLVER.BETAS = (0.9, 0.999)  # AdamW betas
_C.SOLVER.WEIGHT_DECAY = 0.0001  # weight decay of all parameters except norms and biases
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0  # weight decay of normalisation-layer parameters
_C.SOLVER.WEIGHT_DECAY_BIAS = None  # weight decay of biases (None = WEIGHT_DECAY)
_C.SOLVER.MAX_ITER = 1000  # number of training iterations
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"  # "WarmupMultiStepLR" or "WarmupCosineLR"
_C.SOLVER.STEPS = (700, 900)  # iterations at which a multistep schedule multiplies LR by GAMMA
_C.SOLVER.GAMMA = 0.1  # LR multiplier at each step of a multistep schedule
_C.SOLVER.COSINE_END_LR_FACTOR = 0.0  # final LR of the cosine schedule, as a factor of BASE_LR
_C.SOLVER.WARMUP_ITERS = 100  # iterations of linear/constant warmup
_C.SOLVER.WARMUP_FACTOR = 0.001  # LR factor at iteration 0 of warmup
_C.SOLVER.WARMUP_METHOD = "linear"  # "linear" or "constant"
_C.SOLVER.CHECKPOINT_PERIOD = 500  # save a checkpoint every this many iterations
_C.SOLVER.MAX_TO_KEEP = 0  # keep at most this many periodic checkpoints (0 = keep all)
_C.SOLVER.IMS_PER_BATCH = 16  # images per step summed over all processes
_C.SOLVER.AMP = CN()
_C.SOLVER.AMP.ENABLED = False  # mixed precision; autocast is applied on CUDA only
_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False  # clip gradients before each optimizer step
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"  # "norm" (total norm of all params) or "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0  # max norm or max absolute value
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0  # p of the p-norm for CLIP_TYPE "norm"

# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
_C.TEST = CN()
_C.TEST.EVAL_PERIOD = 0  # evaluate every this many iterations during training (0 = only at end)
# Evaluation of detections (ovvision.evaluation): caps and protocols
_C.TEST.DETECTIONS_PER_IMAGE = 100  # detections kept per image by model and evaluator (LVIS: 300)
_C.TEST.LVIS_FIXED_AP = False  # LVIS fixed AP: no per-image cap, 10,000 detections per class

# ---------------------------------------------------------------------------------------------
# Text encoders and vocabularies (ovvision.modeling.text, ovvision.structures.Vocabulary)
# ---------------------------------------------------------------------------------------------
_C.MODEL.TEXT_ENCODER = CN()
_C.MODEL.TEXT_ENCODER.NAME = "OVShapes-CLIP-Tiny"  # open_clip architecture or ovvision model config
_C.MODEL.TEXT_ENCODER.PRETRAINED = ""  # open_clip tag ("openai", ...) or checkpoint; "" = random
_C.VOCABULARY = CN()
_C.VOCABULARY.NAME = "ov_shapes"  # built-in vocabulary: coco, coco_ov, lvis, ov_shapes, custom
_C.VOCABULARY.CUSTOM = ""  # for "custom": "a,b|synonym_of_b" or a text file, one class per line
_C.VOCABULARY.ANNOTATION_JSON = ""  # for "lvis"/"ov_shapes": the annotation json with categories
_C.VOCABULARY.TEMPLATES = "openai_imagenet"  # prompts: openai_imagenet, simple_imagenet, identity
_C.VOCABULARY.CUSTOM_TEMPLATES = []  # format strings with one "{}"; when given, replace TEMPLATES
_C.VOCABULARY.EMBEDDINGS = ""  # precomputed [C, D] .npy (dump_text_embeddings.py); no encoder
_C.VOCABULARY.CACHE_DIR = ""  # text-embedding cache; "" = $OVVISION_CACHE/text_embeddings

# ---------------------------------------------------------------------------------------------
# Data: datasets, loaders, input pipeline (ovvision.data)
# ---------------------------------------------------------------------------------------------
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()  # registered dataset names to train on (they must share thing_classes)
_C.DATASETS.TEST = ()  # registered dataset names to evaluate on, each evaluated separately
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2  # worker processes per loader (0 = load in the main process)
_C.DATALOADER.ASPECT_RATIO_GROUPING = True  # batch landscape and portrait images separately
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"  # or "RepeatFactorTrainingSampler" (LVIS)
_C.DATALOADER.REPEAT_THRESHOLD = 0.001  # repeat-factor sampling: classes rarer than this repeat
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True  # drop training images without a usable annotation
_C.DATALOADER.SKIP_UNREADABLE_IMAGES = True  # skip (log, count) unreadable images; False = raise
_C.INPUT = CN()
_C.INPUT.MIN_SIZE_TRAIN = (800,)  # shortest-edge sizes sampled in training
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"  # "choice" of MIN_SIZE_TRAIN or "range" (min, max)
_C.INPUT.MAX_SIZE_TRAIN = 1333  # cap on the longer edge after the training resize
_C.INPUT.MIN_SIZE_TEST = 800  # shortest edge at test time (0 = no resize)
_C.INPUT.MAX_SIZE_TEST = 1333  # cap on the longer edge at test time
_C.INPUT.RANDOM_FLIP = "horizontal"  # "horizontal" (p=0.5, training only) or "none"
_C.INPUT.MAX_IMAGE_PIXELS = 89_478_485  # read_image refuses larger images (0 = no cap)
_C.INPUT.LSJ = CN()
_C.INPUT.LSJ.ENABLED = False  # large-scale jitter instead of the shortest-edge resize (training)
_C.INPUT.LSJ.IMAGE_SIZE = 1024  # side of the square canvas LSJ scales into and crops/pads to
_C.INPUT.LSJ.MIN_SCALE = 0.1  # smallest scale of the image relative to the canvas
_C.INPUT.LSJ.MAX_SCALE = 2.0  # largest scale of the image relative to the canvas

# ---------------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------------
_C.OUTPUT_DIR = "./output"  # where logs, config.yaml, metrics.jsonl and checkpoints go
_C.SEED = -1  # global seed; negative = a random seed, logged; each rank adds its rank
_C.CUDNN_BENCHMARK = False  # torch.backends.cudnn.benchmark
_C.DETERMINISTIC = False  # torch.use_deterministic_algorithms(True)
_C.LOG_PERIOD = 20  # iterations between console/metrics.jsonl/TensorBoard writes
_C.TENSORBOARD = False  # also write TensorBoard event files to OUTPUT_DIR
