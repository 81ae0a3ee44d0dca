"""Zombie scanning: detectors, the scan engine, findings and their dollar figures."""
