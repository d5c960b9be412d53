"""Composition root: builds the FastAPI application and the process roles from the services."""
