"""Shared building blocks: database, crypto, repositories, pagination."""
