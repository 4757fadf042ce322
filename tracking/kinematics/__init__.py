"""Motion analysis of tracked people: angles, rates, speeds, metres, repetitions, gait, OpenSim and C3D files.

    toppose kinematics results.json -o report/

``motion`` runs one track through the steps (``swaps``, ``cleaning``, ``filters``, ``scale``, ``angles``,
``repetitions``, ``gait``), ``tracks`` reads a tracked results file (``keypoint_sets``: COCO-17, Halpe-26,
COCO-WholeBody-133), ``report`` writes the files (``opensim_files``, ``c3d_file``, ``charts``,
``html_report``); callers that hold the entries in memory use :func:`write_report`. The definitions are in
docs/motion-analysis.md.
"""

from toppose.tracking.kinematics.motion import TrackKinematics
from toppose.tracking.kinematics.options import KinematicsOptions
from toppose.tracking.kinematics.report import KinematicsSummary, write_report

__all__ = ["KinematicsOptions", "KinematicsSummary", "TrackKinematics", "write_report"]
