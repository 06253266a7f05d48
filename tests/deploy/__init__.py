"""Deployment: compose, the image, Prometheus, Grafana, healthchecks, scale-out."""
