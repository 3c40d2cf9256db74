"""The Pix2Seq-D network (see pix2seqd.py) and its parts."""

from .pix2seqd import Pix2SeqD, build_model, count_config_parameters, count_parameters, load_pretrained_backbone

__all__ = ["Pix2SeqD", "build_model", "count_config_parameters", "count_parameters", "load_pretrained_backbone"]
