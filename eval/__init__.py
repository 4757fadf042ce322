"""Evaluation: COCO OKS mAP with pycocotools, the decoder-ceiling oracle, benchmarks."""
