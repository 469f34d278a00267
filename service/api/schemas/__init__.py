"""Pydantic request/response models with OpenAPI examples, one module per router."""
