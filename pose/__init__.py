"""Single-person pose: keypoint schema, crop geometry, heatmap codec, network and top-down inference."""
