"""Pose networks, one module per family (trunk and head together, named as the published source names
them so public checkpoints load exactly), each with its family's description (``FAMILY``, a
:class:`FamilySpec`); the families registered here are the ones configs may name, :func:`build_network`
builds and the checkpoint loader recognises."""

from __future__ import annotations

from toppose.pose.models import hrnet, rtmpose, rtmw, simplebaseline, vitpose
from toppose.pose.models.family import (
    FAMILIES,
    FamilySpec,
    build_network,
    check_model_config,
    family_of_keys,
    register_family,
)
from toppose.pose.models.hrnet import HRNet
from toppose.pose.models.rtmpose import RTMPose
from toppose.pose.models.rtmw import RTMW
from toppose.pose.models.simplebaseline import SimpleBaseline
from toppose.pose.models.vitpose import ViTPose

for _module in (simplebaseline, hrnet, vitpose, rtmpose, rtmw):  # in the order configs list them
    register_family(_module.FAMILY)

__all__ = [
    "FAMILIES",
    "FamilySpec",
    "HRNet",
    "RTMPose",
    "RTMW",
    "SimpleBaseline",
    "ViTPose",
    "build_network",
    "check_model_config",
    "family_of_keys",
    "register_family",
]
