"""Tracking people across video frames: box Kalman filters, IoU/OKS matching, camera motion, smoothing, video I/O."""
