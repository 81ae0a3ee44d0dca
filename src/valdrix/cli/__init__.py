"""The ``valdrix`` command line."""
