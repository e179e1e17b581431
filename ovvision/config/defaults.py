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
# Convolution weights in channels-last layout (their outputs follow): oneDNN's fast layout on CPU
# (bfloat16 convolutions run on AMX only in it) and the tensor cores' on GPU. Same results.
_C.MODEL.CHANNELS_LAST = True
_C.MODEL.WEIGHTS = ""  # checkpoint path loaded before training/evaluation ("" = random init)
# Keys of the checkpoint's model state that may be missing/unexpected when loading MODEL.WEIGHTS;
# anything else missing or unexpected is an error (strict loading).
_C.MODEL.WEIGHTS_ALLOWED_MISSING = []
_C.MODEL.WEIGHTS_ALLOWED_UNEXPECTED = []
_C.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]  # per-channel mean of RGB pixels in [0, 255]
_C.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]  # per-channel std of RGB pixels in [0, 255]

# ---------------------------------------------------------------------------------------------
# Model: OV-RCNN detector (ovvision.modeling: backbone, proposals, region_heads, classifiers,
# losses, clip_regions, mask_heads)
# ---------------------------------------------------------------------------------------------
_C.MODEL.MASK_ON = True  # predict class-agnostic instance masks (trained where gt_masks exist)
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "TimmFPNBackbone"  # TimmFPNBackbone or ClipImageBackbone (registry name)
_C.MODEL.BACKBONE.FREEZE_AT = 2  # timm: 0 none, 1 stem, k stem + first k-1 feature_info stages
_C.MODEL.TIMM = CN()
_C.MODEL.TIMM.NAME = "resnet50"  # timm model created with features_only=True
_C.MODEL.TIMM.PRETRAINED = ""  # "" random, "timm" = timm's pretrained weights, or a weights file
_C.MODEL.TIMM.OUT_INDICES = []  # feature_info levels to use; [] = one per stride, minus stride 2
_C.MODEL.TIMM.FROZEN_BN = True  # replace batch norms by frozen ones (small per-GPU batches)
_C.MODEL.TIMM.PYRAMID_SCALES = [4.0, 2.0, 1.0, 0.5]  # one-map models (plain ViT): scales vs map
# The ClipImageBackbone is the frozen image tower of MODEL.TEXT_ENCODER's CLIP model (F-VLM).
_C.MODEL.CLIP_BACKBONE = CN()
_C.MODEL.CLIP_BACKBONE.PYRAMID_SCALES = [4.0, 2.0, 1.0, 0.5]  # ViT towers: level scales vs tokens
_C.MODEL.FPN = CN()
_C.MODEL.FPN.OUT_CHANNELS = 256  # channels of every pyramid level
_C.MODEL.FPN.TOP_BLOCK = True  # add a level at twice the coarsest stride by max-pooling
_C.MODEL.ANCHOR_GENERATOR = CN()
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]  # anchor sizes per level (px)
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]  # h/w ratios, one list or one per level
_C.MODEL.PROPOSAL_GENERATOR = CN()
_C.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"  # PROPOSAL_GENERATOR_REGISTRY name
_C.MODEL.RPN = CN()
_C.MODEL.RPN.HEAD_CONV_DEPTH = 1  # 3x3 convolutions before the objectness/delta predictors
_C.MODEL.RPN.FG_IOU_THRESH = 0.7  # anchors with IoU >= this are positive
_C.MODEL.RPN.BG_IOU_THRESH = 0.3  # anchors with IoU < this are negative
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256  # anchors sampled per image for the RPN losses
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5  # at most this fraction of sampled anchors positive
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 2000  # proposals per level kept before NMS in training
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 1000  # proposals per level kept before NMS in inference
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 1000  # proposals per image kept after NMS in training
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000  # proposals per image kept after NMS in inference
_C.MODEL.RPN.NMS_THRESH = 0.7  # IoU threshold of the proposal NMS
_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.NAME = "OpenVocabROIHeads"  # ROI_HEADS_REGISTRY name
_C.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]  # levels pooled from ([] = all levels)
_C.MODEL.ROI_HEADS.IOU_THRESHOLD = 0.5  # proposals with IoU >= this with a gt box are foreground
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512  # regions sampled per image for the region losses
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25  # at most this fraction of sampled regions foreground
_C.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True  # add gt boxes to the proposals in training
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05  # drop detections scoring below this (LVIS: 0.0001)
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5  # IoU threshold of the per-class NMS at inference
_C.MODEL.ROI_HEADS.CLASSIFIER = "ZeroShotRegionClassifier"  # REGION_CLASSIFIER_REGISTRY name
_C.MODEL.ROI_HEADS.AUXILIARY_LOSSES = []  # AUXILIARY_LOSS_REGISTRY names, e.g. ViLDDistillationLoss
_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7  # side of the pooled region features
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0  # ROIAlign samples per bin side (0 = adaptive)
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 2  # fully connected layers of the region MLP
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024  # width of those layers
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = [10.0, 10.0, 5.0, 5.0]  # box coder weights (x, y, w, h)
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0  # smooth-L1 beta of the box loss (0 = L1)
# The zero-shot region classifier (modeling/classifiers): regions vs. class-name embeddings
_C.MODEL.ZERO_SHOT_CLASSIFIER = CN()
_C.MODEL.ZERO_SHOT_CLASSIFIER.EMBED_DIM = 512  # text-embedding dimension (= MODEL.TEXT_ENCODER's)
_C.MODEL.ZERO_SHOT_CLASSIFIER.TEMPERATURE = 50.0  # logits = TEMPERATURE * cos(region, class)
_C.MODEL.ZERO_SHOT_CLASSIFIER.LOSS = "softmax"  # "softmax" (with background) or "sigmoid"
_C.MODEL.ZERO_SHOT_CLASSIFIER.SIGMOID_PRIOR_PROB = 0.01  # initial class probability of "sigmoid"
_C.MODEL.ZERO_SHOT_CLASSIFIER.USE_FED_LOSS = False  # federated loss (LVIS); needs LOSS "sigmoid"
_C.MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_NUM_CLASSES = 50  # classes per step: annotated + sampled
_C.MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_FREQ_WEIGHT_POWER = 0.5  # negatives ~ image_count**this
_C.MODEL.ZERO_SHOT_CLASSIFIER.FED_LOSS_CLASS_FREQ = ""  # LVIS json or image counts ("" uniform)
# ViLD distillation (modeling/losses): L1 between region and CLIP embeddings of top proposals;
# enabled by listing "ViLDDistillationLoss" in MODEL.ROI_HEADS.AUXILIARY_LOSSES
_C.MODEL.VILD_DISTILLATION = CN()
_C.MODEL.VILD_DISTILLATION.WEIGHT = 1.0  # multiplier of the loss
_C.MODEL.VILD_DISTILLATION.REGIONS_PER_IMAGE = 32  # top proposals distilled per image
# Proxy-novel classwise mixup (ProxyDet, modeling/losses): enabled by listing
# "ProxyNovelMixupLoss" in MODEL.ROI_HEADS.AUXILIARY_LOSSES
_C.MODEL.PROXY_MIXUP = CN()
_C.MODEL.PROXY_MIXUP.WEIGHT = 1.0  # multiplier of the L1 loss between mixed prototypes and texts
_C.MODEL.PROXY_MIXUP.ALPHA = 1.0  # lambda ~ Beta(ALPHA, ALPHA), one per step
_C.MODEL.PROXY_MIXUP.PROTOTYPE_WEIGHTING = "objectness"  # "objectness" (softmax), "uniform", "iou"
_C.MODEL.PROXY_MIXUP.SEPARATE_HEAD = False  # train a copy of the embedding MLP with the loss only
_C.MODEL.PROXY_MIXUP.FUSION_WEIGHT_SEEN = 0.15  # separate head: its score exponent, seen classes
_C.MODEL.PROXY_MIXUP.FUSION_WEIGHT_UNSEEN = 0.35  # separate head: its score exponent, unseen ones
# A class counts as seen when its name is a trained base class or (if > 0) its text embedding's
# cosine with one of theirs exceeds this (ProxyDet: 0.9), so "stars" is the trained "star"
_C.MODEL.PROXY_MIXUP.SEEN_COSINE_THRESHOLD = 0.0
# Caption grounding (CGG, modeling/losses): the nouns of an image's caption attend over its top
# proposals; image-caption contrastive loss over the (gathered) batch. Enabled by listing
# "CaptionGroundingLoss" in MODEL.ROI_HEADS.AUXILIARY_LOSSES
_C.MODEL.CAPTION_GROUNDING = CN()
_C.MODEL.CAPTION_GROUNDING.WEIGHT = 1.0  # multiplier of the loss
_C.MODEL.CAPTION_GROUNDING.REGIONS_PER_IMAGE = 32  # top proposals (objectness order) per image
_C.MODEL.CAPTION_GROUNDING.TEMPERATURE = 10.0  # region-noun attention logits = cosine / this
_C.MODEL.CAPTION_GROUNDING.CONTRASTIVE_TEMPERATURE = 1.0  # image-caption logits = score / this
_C.MODEL.CAPTION_GROUNDING.OTHER_NOUNS = False  # also ground nouns that name no vocabulary class
# Caption generation (CGG, modeling/captioning): a transformer decoder over the region embeddings
# of the top proposals writes the caption. Enabled by listing "CaptionGenerationLoss" in
# MODEL.ROI_HEADS.AUXILIARY_LOSSES; Predictor.describe and tools/demo.py --describe use it
_C.MODEL.CAPTION_GENERATION = CN()
_C.MODEL.CAPTION_GENERATION.WEIGHT = 1.0  # multiplier of the teacher-forced cross-entropy
_C.MODEL.CAPTION_GENERATION.REGIONS_PER_IMAGE = 32  # top proposals whose embeddings are memory
_C.MODEL.CAPTION_GENERATION.NUM_LAYERS = 4  # decoder layers
_C.MODEL.CAPTION_GENERATION.HIDDEN_DIM = 256  # decoder width
_C.MODEL.CAPTION_GENERATION.NUM_HEADS = 8  # attention heads
_C.MODEL.CAPTION_GENERATION.MLP_RATIO = 4.0  # feed-forward width / HIDDEN_DIM
_C.MODEL.CAPTION_GENERATION.DROPOUT = 0.1  # dropout in the decoder layers
_C.MODEL.CAPTION_GENERATION.MAX_LENGTH = 32  # tokens per caption, start/end included
_C.MODEL.CAPTION_GENERATION.BEAM_SIZE = 1  # test-time decoding: 1 = greedy, > 1 = beam search
# CLIP image embeddings of boxes (modeling/clip_regions), read by score fusion and distillation
_C.MODEL.CLIP_BOX_EMBEDDER = CN()
_C.MODEL.CLIP_BOX_EMBEDDER.SOURCE = ""  # "" (none), "dense" (CLIP backbone's maps), "crops"
_C.MODEL.CLIP_BOX_EMBEDDER.CROP_SCALE = 1.0  # "crops": side of the square crop / longer box side
# CLIP score fusion at inference (modeling/clip_regions): p_det**(1-a) * p_clip**a
_C.MODEL.CLIP_SCORE_FUSION = CN()
_C.MODEL.CLIP_SCORE_FUSION.ENABLED = False  # fuse classifier and CLIP scores (geometric mean)
# CLIP score = softmax(TEMPERATURE * cos) over classes; <= 0: the CLIP model's own learnt logit
# scale (100 for OpenAI weights), the temperature its image-text similarities were trained with.
_C.MODEL.CLIP_SCORE_FUSION.TEMPERATURE = 0.0
_C.MODEL.CLIP_SCORE_FUSION.ALPHA_SEEN = 0.35  # CLIP score exponent for classes seen in training
_C.MODEL.CLIP_SCORE_FUSION.BETA_UNSEEN = 0.65  # CLIP score exponent for unseen classes
# "crops" source: CLIP scores only the first this many proposals per image, in the proposer's
# class-agnostic objectness order (0 = all)
_C.MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE = 100
_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.NAME = "ClassAgnosticMaskHead"  # ROI_MASK_HEAD_REGISTRY name
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14  # side of the pooled mask features (masks are 2x)
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0  # ROIAlign samples per bin side (0 = adaptive)
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 4  # 3x3 convolutions of the mask head
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256  # their channels
_C.MODEL.ROI_MASK_HEAD.MASK_THRESHOLD = 0.5  # pixels with mask probability above this are in
# OVGrounder (modeling/meta_arch/grounder.py): referring expressions on a frozen OV-RCNN (OV-VG)
_C.MODEL.GROUNDER = CN()
_C.MODEL.GROUNDER.DETECTOR_WEIGHTS = ""  # checkpoint of the trained OV-RCNN ("" = none/random)
_C.MODEL.GROUNDER.FREEZE_DETECTOR = True  # keep the detector (and CLIP) frozen
_C.MODEL.GROUNDER.NUM_QUERIES = 16  # query selection: regions most similar to the sentence kept
_C.MODEL.GROUNDER.SELECTION_NMS = 0.7  # selection skips regions overlapping a kept one (0: off)
_C.MODEL.GROUNDER.CLIP_WEIGHT = 0.5  # selection cosine = (1-w)*detector embedding + w*CLIP crop
# queries also read the detector's region embeddings (trained on base classes), not only CLIP's
_C.MODEL.GROUNDER.DETECTOR_FEATURES = True
_C.MODEL.GROUNDER.HIDDEN_DIM = 128  # width of the language-guided attention layers
_C.MODEL.GROUNDER.NUM_HEADS = 4  # attention heads
_C.MODEL.GROUNDER.NUM_LAYERS = 2  # layers of query self-attention + cross-attention to tokens
_C.MODEL.GROUNDER.DROPOUT = 0.0  # dropout inside the attention layers
_C.MODEL.GROUNDER.PRIOR_SCALE = 10.0  # initial weight of the selection similarity in the score
_C.MODEL.GROUNDER.SCORING = "learned"  # "learned" (head) or "cosine" (untrained baseline)
_C.MODEL.GROUNDER.POSITIVE_IOU = 0.5  # a query whose box reaches this IoU with the target is one
_C.MODEL.GROUNDER.BOX_LOSS_WEIGHT = 1.0  # weight of the box refinement (smooth L1) loss
_C.MODEL.GROUNDER.TOP_K_TEST = 10  # boxes returned per expression at inference (recall@10)
_C.MODEL.GROUNDER.TRUNCATE_TEXT = False  # cut expressions over the context length (else raise)
# OSMClassifier (modeling/meta_arch/osm.py): a causal LM names each mask (OSM, open-ended)
_C.MODEL.OSM = CN()
_C.MODEL.OSM.LANGUAGE_MODEL = ""  # folder of a transformers causal LM + tokenizer (by path)
_C.MODEL.OSM.TRUST_REMOTE_CODE = False  # let transformers run the LM folder's own Python code
_C.MODEL.OSM.TRAIN_LM_LAYERS = 0  # last LM transformer blocks trained with the MaskQ-Former
_C.MODEL.OSM.PROPOSALS = "detector"  # masks to name: "detector" (OV-RCNN) or "ground_truth"
_C.MODEL.OSM.DETECTOR_WEIGHTS = ""  # OV-RCNN checkpoint whose class-agnostic masks are proposals
_C.MODEL.OSM.MAX_PROPOSALS = 50  # detector proposals named per image (objectness order, NMS-ed)
_C.MODEL.OSM.PROPOSAL_NMS = 0.7  # IoU above which a lower-objectness proposal box is dropped
_C.MODEL.OSM.FEATURE_LEVELS = ["res4", "res5"]  # CLIP tower maps summed (upsampled) into the grid
_C.MODEL.OSM.CROP_TOKEN = True  # add the CLIP embedding of the mask's box crop as a visual token
_C.MODEL.OSM.HIDDEN_DIM = 128  # width of the MaskQ-Former
_C.MODEL.OSM.NUM_HEADS = 4  # attention heads of the MaskQ-Former
_C.MODEL.OSM.NUM_LAYERS = 2  # MaskQ-Former layers (self-attention, cross-attention, MLP)
_C.MODEL.OSM.NUM_MASK_QUERIES = 8  # queries attending inside the mask
_C.MODEL.OSM.NUM_CONTEXT_QUERIES = 4  # queries attending inside the enlarged box
_C.MODEL.OSM.CONTEXT_ENLARGE = 0.5  # the context box is the mask's box grown by this per side
_C.MODEL.OSM.MODES = ["any"]  # mode queries: "any" first, then one per dataset vocabulary
_C.MODEL.OSM.MODE = "any"  # the mode used at inference
_C.MODEL.OSM.DROPOUT = 0.0  # dropout in the MaskQ-Former
_C.MODEL.OSM.MAX_NAME_TOKENS = 6  # length limit of a generated name (end token excluded)
_C.MODEL.OSM.BEAM_SIZE = 1  # 1 = greedy decoding, > 1 = beam search
_C.MODEL.OSM.GENERATE_NAMES = True  # also write each detection's free-text name at inference
_C.MODEL.OSM.SCORE_END_TOKEN = True  # a name's probability includes the end token after it
_C.MODEL.OSM.CLASSES_PER_MASK = 1  # detections per proposal: its best-ranked classes
_C.MODEL.OSM.OBJECTNESS_WEIGHT = 1.0  # score = p(class) * objectness ** this (detector masks)
_C.MODEL.OSM.SCORE_THRESH_TEST = 0.0  # detections below this score are dropped
# tools/train_osm.py: (1) LM on caption text, (2) MaskQ-Former on crop-caption pairs, (3) naming
# stage 1: datasets whose captions are the LM's text
_C.MODEL.OSM.TEXT_DATASETS = ["ov_shapes_captions_train", "ov_shapes_pretrain_train"]
_C.MODEL.OSM.PAIR_DATASET = "ov_shapes_pretrain_train"  # stage 2: object crop boxes and captions
_C.MODEL.OSM.TINY_LM_DIM = 192  # stage 1 GPT-2 width
_C.MODEL.OSM.TINY_LM_LAYERS = 4  # stage 1 GPT-2 blocks
_C.MODEL.OSM.TINY_LM_HEADS = 4  # stage 1 GPT-2 attention heads
_C.MODEL.OSM.STAGE_ITERS = [600, 600, 600]  # iterations of stages 1, 2, 3
_C.MODEL.OSM.STAGE_BATCH = [64, 16, 16]  # captions (stage 1) or images (stages 2, 3) per step
_C.MODEL.OSM.STAGE_LR = [0.001, 0.0005, 0.0003]  # AdamW peak learning rate per stage (cosine)
_C.MODEL.OSM.REGIONS_PER_IMAGE = 4  # stages 2, 3: regions drawn per image and step (at most)
_C.MODEL.OSM.INSTRUCT_CAPTION_FRACTION = 0.5  # stage 3: share of regions given a caption task
# stage 3: share of those caption regions asked to name instead, answered with the caption's object
_C.MODEL.OSM.INSTRUCT_CAPTION_NAMING = 0.0
_C.MODEL.OSM.DATASET_MODE_FRACTION = 0.5  # stage 3: share of naming regions in the dataset mode

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
_C.SOLVER.AMP.ENABLED = False  # mixed precision: float16 + grad scaling (CUDA), bfloat16 (CPU)
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
_C.TEST.CAPTIONS = False  # also write and score each test image's caption (caption generator)
# Evaluation reports (ovvision.reports): report.md + PNG figures after each evaluation
_C.TEST.REPORT = False  # write a report (train_net.py --report DIR also turns it on)
_C.TEST.REPORT_DIR = ""  # its folder ("" = OUTPUT_DIR/report; a subfolder per dataset if several)
_C.TEST.REPORT_MIN_SCORE = 0.3  # lower-scoring detections find no object and confuse no class

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
# COCO-format datasets to register by name before TRAIN/TEST are read, one string per dataset:
# "name=my_train,json=train.json,images=imgs[,novel=lamp|cup][,captions=caps.json]" (novel: "|"
# separated, absent = the json's "split" fields); see docs/own_data.md
_C.DATASETS.REGISTER = ()
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
# CLIP pretraining (tools/train_clip.py, ovvision.clip_pretraining)
# ---------------------------------------------------------------------------------------------
_C.CLIP = CN()
_C.CLIP.SCENE_PAIRS = True  # also train on whole-image pairs (else single-object crops only)
_C.CLIP.AUGMENT = False  # jitter, flip and rotate object crops (scene pairs are never augmented)
_C.CLIP.CROP_JITTER = 0.1  # max shift/scale of an object crop, as a fraction of its side
_C.CLIP.MAX_LOGIT_SCALE = 100.0  # cap of the learned logit scale (inverse temperature)
_C.CLIP.ZERO_SHOT_CONTEXT = 0.15  # margin around instance boxes cropped for zero-shot testing
_C.CLIP.ZERO_SHOT_MAX_OBJECTS = 0  # test on at most this many objects, spread evenly (0 = all)

# ---------------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------------
_C.OUTPUT_DIR = "./output"  # where logs, config.yaml, metrics.jsonl and checkpoints go
_C.SEED = -1  # global seed; negative = a random seed, logged; each rank adds its rank
_C.CUDNN_BENCHMARK = False  # torch.backends.cudnn.benchmark
_C.DETERMINISTIC = False  # torch.use_deterministic_algorithms(True)
_C.LOG_PERIOD = 20  # iterations between console/metrics.jsonl/TensorBoard writes
_C.TENSORBOARD = False  # also write TensorBoard event files to OUTPUT_DIR

# Keys that were renamed: a config still using one gets an error naming the new key.
_RENAMED_KEYS = {
    "MODEL.CLIP_REGION_HEAD": "MODEL.ZERO_SHOT_CLASSIFIER",
    "MODEL.CLIP_REGION_HEAD.DISTILL_WEIGHT": (
        "MODEL.VILD_DISTILLATION.WEIGHT (and list 'ViLDDistillationLoss' in "
        "MODEL.ROI_HEADS.AUXILIARY_LOSSES)"
    ),
    "MODEL.CLIP_REGION_HEAD.DISTILL_REGIONS_PER_IMAGE": "MODEL.VILD_DISTILLATION.REGIONS_PER_IMAGE",
    "MODEL.REGION_CLIP": "MODEL.CLIP_BOX_EMBEDDER (SOURCE, CROP_SCALE) and MODEL.CLIP_SCORE_FUSION",
    "MODEL.REGION_CLIP.SOURCE": "MODEL.CLIP_BOX_EMBEDDER.SOURCE",
    "MODEL.REGION_CLIP.CROP_SCALE": "MODEL.CLIP_BOX_EMBEDDER.CROP_SCALE",
    "MODEL.REGION_CLIP.FUSION": "MODEL.CLIP_SCORE_FUSION.ENABLED",
    "MODEL.REGION_CLIP.TEMPERATURE": "MODEL.CLIP_SCORE_FUSION.TEMPERATURE",
    "MODEL.REGION_CLIP.ALPHA_SEEN": "MODEL.CLIP_SCORE_FUSION.ALPHA_SEEN",
    "MODEL.REGION_CLIP.BETA_UNSEEN": "MODEL.CLIP_SCORE_FUSION.BETA_UNSEEN",
    "MODEL.REGION_CLIP.MAX_CROPS_PER_IMAGE": "MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE",
}
for _old, _new in _RENAMED_KEYS.items():
    _C.register_renamed_key(_old, _new)
