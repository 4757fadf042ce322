"""Tracking people across video frames: box Kalman filters, IoU/OKS matching, keypoint smoothing, video I/O."""
