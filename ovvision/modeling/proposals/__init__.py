"""Class-agnostic proposal generators."""

from .build import PROPOSAL_GENERATOR_REGISTRY, build_proposal_generator
from .rpn import RPN

__all__ = ["PROPOSAL_GENERATOR_REGISTRY", "RPN", "build_proposal_generator"]
