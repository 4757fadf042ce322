"""Motion analysis of tracked people: joint angles, angular velocities, keypoint speeds and range of motion over time.

    python -m tracking.kinematics results.json -o report/

``motion`` computes (the angle definitions, the body-height scale and the gaps are in its docstring),
``tracks`` reads a tracked results file, ``report`` writes the CSV files and the plots; callers that
hold the entries in memory use :func:`write_report`.
"""

from toppose.tracking.kinematics.report import KinematicsOptions, KinematicsSummary, write_report

__all__ = ["KinematicsOptions", "KinematicsSummary", "write_report"]
