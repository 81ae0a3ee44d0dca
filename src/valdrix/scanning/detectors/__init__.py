"""Detector plugins, one package per provider."""
