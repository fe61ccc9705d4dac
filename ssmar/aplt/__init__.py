"""APLT offline phase: feature bank, semi-supervised k-means, thresholds, prototypes, losses."""
