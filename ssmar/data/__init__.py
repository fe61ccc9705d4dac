"""Skeleton data: canonical pickle format, layouts, preprocessing, splits, datasets."""
